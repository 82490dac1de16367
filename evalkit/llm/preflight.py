"""The model pre-flight: check every configured model once, before the first conversation.

Without it, a missing API key, a mistyped base URL or an unknown model name ran every
conversation into its retries and the run still "completed". Each distinct model
(name, endpoint, key) is checked once:

1. no API key and no ``--base-url`` (so the hosted OpenAI API): refused at once, no call;
2. ``GET /models`` (the ``openai`` client's ``models.list()``): the endpoint answers, the key
   is accepted, and the model is listed (``NAME`` or Ollama's ``NAME:latest``);
3. only when the list is missing or does not name the model: one chat call of one token.
   Servers that serve whatever is loaded under any name (llama.cpp) and proxies with
   aliases pass here; a 404, or a 400 that names the model, means the model is unknown.

A failure raises :class:`ModelPreflightError` (a :class:`~evalkit.core.errors.ConfigError`: the
CLI prints one line and exits 2). Rate limiting (429) is not a failure: the model exists.
Uses the ``openai`` client's public API directly, so no response is cached or counted in
the run's usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import openai

from evalkit.core.errors import ConfigError
from evalkit.llm.client import tls_context
from evalkit.llm.errors import scrub
from evalkit.llm.settings import ModelSettings

__all__ = ["ModelPreflightError", "ModelCheck", "check_models"]

# A pre-flight must answer fast: a dead endpoint should fail in seconds, not minutes.
_TIMEOUT_S = 15.0
_RETRIES = 1
_MAX_LISTED = 8  # model names shown when the one asked for is unknown


class ModelPreflightError(ConfigError):
    """A configured model cannot be used: no key, endpoint unreachable, key refused, unknown model."""


@dataclass(frozen=True)
class ModelCheck:
    """One model to check and the roles that use it (``judge``, ``simulator``, ``agent``...)."""

    settings: ModelSettings
    roles: tuple[str, ...]

    @property
    def who(self) -> str:
        """``simulator, judge and agent model 'x'`` for messages."""
        roles = list(self.roles)
        named = roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} and {roles[-1]}"
        return f"{named} model '{self.settings.model}'"

    @property
    def where(self) -> str:
        return self.settings.base_url or "the OpenAI API"

    def key_hint(self) -> str:
        role_vars = " / ".join(f"EVALKIT_{r.upper()}_API_KEY" for r in self.roles)
        return f"set OPENAI_API_KEY (or {role_vars})"


def _group(models: Iterable[tuple[str, ModelSettings]]) -> list[ModelCheck]:
    groups: dict[tuple[str, str | None, str], list[str]] = {}
    first: dict[tuple[str, str | None, str], ModelSettings] = {}
    for role, s in models:
        key = (s.model, s.base_url, s.key())
        if role not in groups.setdefault(key, []):
            groups[key].append(role)
        first.setdefault(key, s)
    return [ModelCheck(first[k], tuple(roles)) for k, roles in groups.items()]


def _listed(name: str, ids: Sequence[str]) -> bool:
    return name in ids or f"{name}:latest" in ids


async def _check(check: ModelCheck) -> None:
    s = check.settings
    if s.api_key is None and s.base_url is None:
        raise ModelPreflightError(
            f"no API key for the {check.who}: {check.key_hint()}, or point --base-url at a local server"
        )
    secret = s.api_key.get_secret_value() if s.api_key is not None else None

    def fail(problem: str) -> ModelPreflightError:
        return ModelPreflightError(scrub(problem, secret))

    client = openai.AsyncOpenAI(
        api_key=s.key(), base_url=s.base_url, timeout=min(s.timeout, _TIMEOUT_S), max_retries=_RETRIES,
        http_client=openai.DefaultAsyncHttpxClient(verify=tls_context()),  # closed with the client
    )
    try:
        ids: list[str] | None = None
        try:
            page = await client.models.list()
            ids = [m.id for m in page.data]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise fail(f"{check.where} refused the API key for the {check.who} (HTTP {exc.status_code}): "
                       f"{check.key_hint()}") from None
        except openai.APIConnectionError as exc:
            raise fail(_unreachable(check, exc)) from None
        except openai.APIStatusError:
            ids = None  # no usable model list here: ask the model itself
        if ids is not None and _listed(s.model, ids):
            return
        try:
            await client.chat.completions.create(
                model=s.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
            )
        except openai.RateLimitError:
            return  # the model exists; the run's own client paces itself
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise fail(f"{check.where} refused the API key for the {check.who} (HTTP {exc.status_code}): "
                       f"{check.key_hint()}") from None
        except openai.APIConnectionError as exc:
            raise fail(_unreachable(check, exc)) from None
        except openai.APIStatusError as exc:
            detail = getattr(exc, "message", "") or str(exc)
            if exc.status_code == 404 or (exc.status_code == 400 and "model" in detail.lower()):
                listed = f" (it lists: {', '.join(ids[:_MAX_LISTED])}{', ...' if len(ids) > _MAX_LISTED else ''})" \
                    if ids else ""
                raise fail(f"unknown {check.who} at {check.where}{listed}") from None
            if exc.status_code >= 500:
                raise fail(f"{check.where} failed the check of the {check.who}: HTTP {exc.status_code}: "
                           f"{detail}") from None
            # Another 400 (e.g. a parameter this model does not take): it answered, so it exists.
    finally:
        await client.close()


def _unreachable(check: ModelCheck, exc: openai.APIConnectionError) -> str:
    cause = exc.__cause__ or exc
    what = "no answer" if isinstance(exc, openai.APITimeoutError) else f"{type(cause).__name__}: {cause}"
    return f"cannot reach {check.where} for the {check.who} ({what}); check --base-url and that the server is running"


async def check_models(models: Iterable[tuple[str, ModelSettings]]) -> None:
    """Check each distinct ``(role, settings)`` model once, concurrently; raise the first
    :class:`ModelPreflightError` (in the order given)."""
    checks = _group(models)
    results = await asyncio.gather(*(_check(c) for c in checks), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
