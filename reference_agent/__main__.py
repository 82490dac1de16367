"""``python -m reference_agent serve``: run the reference agent as an HTTP service."""

from __future__ import annotations

import sys

import click

__all__ = ["main"]

SERVICE_PACKAGES = ("fastapi", "starlette", "uvicorn")  # the ``service`` extra


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """The evalkit reference support agent (AcmeCorp)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--engine", default="rules", show_default=True,
              help="Dialog engine: 'rules' (offline) or 'llm' (needs REFERENCE_AGENT_MODEL and an "
                   "OpenAI-compatible endpoint, see docs/reference-agent.md).")
@click.option(
    "--faults",
    default="",
    help="Comma-separated seeded faults to switch on (for testing evalkit itself).",
)
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Append the agent's one-JSON-line-per-turn analytics log to this file.")
@click.option("--shared-profiles", is_flag=True,
              help="Keep long-term customer profiles across sessions (a returning customer is "
                   "recognised in a new chat). Off by default so every session starts from the fixtures.")
@click.option("--max-sessions", default=1000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Live sessions kept; when full, new sessions get 503 with Retry-After (a live one is never dropped).")
@click.option("--idle-timeout", default=3600.0, show_default=True, type=click.FloatRange(min=1.0),
              help="Seconds after which an idle session is forgotten.")
@click.option("--max-body", default=64 * 1024, show_default=True, type=click.IntRange(256, 16 * 1024 * 1024),
              help="Largest accepted request body in bytes (larger: 413).")
@click.option("--identity-key", envvar="REFERENCE_AGENT_IDENTITY_KEY", default=None, show_envvar=True,
              help="Requests carrying this key (Authorization: Bearer KEY, or http://user:KEY@host) come from a front "
                   "end that signed the customer in: their 'customer' is trusted. Everyone else proves an order "
                   "(id + postcode) before the agent shows or changes anything.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Host header value to accept (repeatable; '*' for any). Default: localhost, 127.0.0.1, [::1] "
                   "and --host.")
def serve(
    host: str,
    port: int,
    engine: str,
    faults: str,
    log_file: str | None,
    shared_profiles: bool,
    max_sessions: int,
    idle_timeout: float,
    max_body: int,
    identity_key: str | None,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the agent over evalkit's HTTP agent protocol, with a web chat page at /."""
    try:
        import uvicorn

        from reference_agent.service import DEFAULT_ALLOWED_HOSTS, create_app
    except ModuleNotFoundError as exc:
        if exc.name not in SERVICE_PACKAGES:
            raise
        raise click.UsageError(f"the HTTP service needs {exc.name}: pip install 'evalkit-support[service]'") from None
    from reference_agent.engine import EngineUnavailableError, make_engine
    from reference_agent.faults import UnknownFaultError, parse_faults

    fault_names = tuple(f.strip() for f in faults.split(",") if f.strip())
    try:
        parse_faults(fault_names)  # refuse unknown names now, not on the first message
    except UnknownFaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    try:
        make_engine(engine)  # e.g. the llm engine without a model configured: say so now
    except EngineUnavailableError as exc:
        raise click.BadParameter(str(exc), param_hint="--engine") from None
    app = create_app(
        engine=engine,
        faults=fault_names,
        max_sessions=max_sessions,
        idle_timeout_s=idle_timeout,
        max_body_bytes=max_body,
        log_file=log_file,
        shared_profiles=shared_profiles,
        identity_key=identity_key or None,
        allowed_hosts=allowed_hosts or _default_hosts(host, DEFAULT_ALLOWED_HOSTS),
    )
    click.echo(f"AcmeCorp support agent on http://{host}:{port}/  (engine={engine}"
               f"{', faults=' + ','.join(fault_names) if fault_names else ''})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _default_hosts(host: str, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """The default Host allow-list plus the bind address (a wildcard bind names no host)."""
    if host in ("0.0.0.0", "::", ""):
        return defaults
    name = f"[{host}]" if ":" in host else host
    return (*defaults, name.lower()) if name.lower() not in defaults else defaults


if __name__ == "__main__":
    sys.exit(main())
