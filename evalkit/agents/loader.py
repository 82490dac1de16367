"""Turn an ``--agent`` spec into an :class:`~evalkit.agents.base.AgentProvider`.

* ``http://HOST:PORT[/prefix]`` / ``https://...``: the HTTP protocol adapter.
* ``SCHEME:rest`` for a scheme in :data:`SCHEMES` (e.g. ``openai-chat:gpt-4o-mini``; plugins
  add schemes through the ``evalkit.agents`` entry-point group): the adapter registered for
  that scheme, imported only when used.
* ``module:factory[?key=value&...]``: a Python factory, called once per conversation.

``config`` (an :class:`~evalkit.agents.base.AgentConfig`: the run's model settings for the
agent) goes to the Python and scheme adapters; an HTTP agent configures itself.
"""

from __future__ import annotations

from evalkit.agents.base import AgentConfig, AgentProvider
from evalkit.core.errors import AgentSpecError
from evalkit.core.registry import PluginLoadError, Registry

__all__ = ["SCHEMES", "load_agent"]

# scheme -> "module:ProviderClass"; the class is built as Class(spec, config=...) with the full
# spec. Imported lazily so an unused adapter costs nothing.
SCHEMES = Registry("agent adapter", "evalkit.agents", {
    "openai-chat": "evalkit.agents.openai_chat:OpenAIChatProvider",
})


def load_agent(spec: str, config: AgentConfig | None = None) -> AgentProvider:
    """The provider for ``spec`` (raises :class:`AgentSpecError`, one line, when it is wrong)."""
    spec = (spec or "").strip()
    if not spec:
        raise AgentSpecError("no agent given (use --agent SPEC or 'agent:' in suite.yaml)")
    scheme = spec.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        from evalkit.agents.http import HttpAgentProvider

        return HttpAgentProvider(spec)
    if scheme in SCHEMES:
        try:
            cls = SCHEMES.load(scheme)
        except PluginLoadError:
            raise AgentSpecError(
                f"the '{scheme}:' agent adapter ({SCHEMES.ref(scheme)}) is not available in this installation",
                field=spec,
            ) from None
        return cls(spec, config=config)  # type: ignore[no-any-return]
    from evalkit.agents.python import PythonAgentProvider

    return PythonAgentProvider(spec, config=config)
