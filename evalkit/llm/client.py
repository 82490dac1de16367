"""The one model client: every model call in evalkit goes through :class:`LLMClient`.

It wraps :class:`openai.AsyncOpenAI` (any OpenAI-compatible endpoint) with the openai
client's own retries turned off and these on instead:

- retries with exponential backoff and full jitter on 429, 5xx, timeouts, dropped
  connections and unparseable responses, honouring ``Retry-After``, bounded by
  ``max_retries``;
- client-side limits on concurrent requests (an :class:`asyncio.Semaphore`), requests per
  minute and tokens per minute (:mod:`evalkit.llm._limits`, on aiolimiter);
- token usage and cost per call (:mod:`evalkit.core.pricing`), totalled per client;
- streaming with time-to-first-token when the caller asks for it;
- structured output (``response_format`` JSON schema) validated against a pydantic model,
  with malformed answers re-asked and never cached;
- the on-disk response cache (:mod:`evalkit.llm.cache`), which agent calls bypass unless
  replay is asked for.

A call that fails for good raises :class:`~evalkit.llm.errors.ModelCallError` with one
scrubbed line; callers record it as data.

HTTP is the SDK's own, used as shipped and through its public API only: by default each event
loop gets an ``openai.AsyncOpenAI`` built from the settings, on the SDK's own aiohttp client
(``openai.DefaultAioHttpClient``). A caller that needs something else (a proxy, custom TLS, Azure, another transport)
passes its own ``openai_client`` (an ``AsyncOpenAI`` or ``AsyncAzureOpenAI``) or its own
``http_client`` (an ``httpx2.AsyncClient``, e.g. ``openai.DefaultAioHttpClient()``); those
belong to the caller, who closes them, and are used on the event loop that uses them.

CPU per call (docs/benchmarks.md, benchmarks 1-2). At zero model latency the SDK's request path
is most of the harness's CPU per model call, so a call takes the SDK's leanest public route
(bare SDK, 0 ms, 32 in flight: ``chat.completions.create`` 1.54 ms of CPU per call,
``with_raw_response.create`` 1.23 ms, ``client.post`` 0.70 ms):

- ``client.post(url, body=..., cast_to=httpx2.Response)`` (the README's "undocumented
  endpoints" call): the request is already plain JSON (no TypedDict transform) and the body
  is read once with ``json.loads`` into the few fields evalkit keeps (no pydantic
  ``ChatCompletion``); a body that is not a chat completion is an ``invalid_response`` and
  retried like a dropped connection;
- streamed, ``stream_cls=openai.AsyncStream[object]``: the SDK's SSE decoding, error events
  and connection handling, each chunk as plain JSON instead of a pydantic
  ``ChatCompletionChunk`` (half the CPU of a streamed call);
- the SDK's telemetry headers (``X-Stainless-*``: OS, architecture, runtime, retry count, read
  timeout) are removed per request with the SDK's public ``omit``: nine fewer headers, each
  of which httpx2 and aiohttp normalise several times per request; no server needs them;
- on the clients evalkit builds: the chat URL is merged with the base URL once per event
  loop (``httpx2.URL.copy_with``, as the SDK merges it) instead of on every call (a caller's
  ``openai_client`` keeps the relative path, which ``AsyncAzureOpenAI`` rewrites per
  deployment); the timeout is an ``httpx2.Timeout``; one TLS context is shared.

Together ~25 % less CPU per ``LLMClient.chat`` call than before them (~50 % streamed). What is
left is the SDK's per-request options, header and URL objects, httpx2's request/response
and aiohttp's, none of which the public API reaches.

Transport, measured again (2,000 ``LLMClient.chat`` calls, 32 in flight, 0 ms, median of 3
runs): the SDK's aiohttp client 0.49 ms of CPU per call, its default httpx2 client 0.82 ms,
so aiohttp stays the default; a base URL with ``user:pass@`` takes the httpx2 client, because
aiohttp refuses credentials in the URL beside the key's header.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import os
import random
import ssl
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import openai
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from evalkit.core.errors import ConfigError
from evalkit.core.pricing import PriceTable
from evalkit.core.transcript import Usage
from evalkit.llm._limits import RateLimits
from evalkit.llm.cache import ResponseCache, request_key
from evalkit.llm.errors import ModelCallError, scrub
from evalkit.llm.settings import ModelSettings

__all__ = ["ChatResult", "UsageTotals", "LLMClient", "strict_schema"]

M = TypeVar("M", bound=BaseModel)

_RETRYABLE_STATUS = {408, 409, 425, 429}

_CHAT_PATH = "/chat/completions"
# The SDK's telemetry headers, removed per request with its public ``omit`` (see the module
# docstring); request headers override a client's, so this holds for a caller's client too.
_NO_TELEMETRY: dict[str, str | openai.Omit] = {h: openai.omit for h in (
    "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
    "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Async",
    "X-Stainless-Retry-Count", "X-Stainless-Read-Timeout",
)}


def _request_options() -> openai.RequestOptions:
    # A fresh dict per request: the SDK owns what it is given (and could add to it).
    return {"headers": dict(_NO_TELEMETRY)}


class ChatResult(BaseModel):
    """One model answer with its cost; this is also what the cache stores."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = None
    # OpenAI message shape: {"id", "type": "function", "function": {"name", "arguments": str}}
    tool_calls: list[dict[str, JsonValue]] = Field(default_factory=list)
    finish_reason: str | None = None
    # The model declined to answer (OpenAI's ``message.refusal``, e.g. under structured outputs).
    refusal: str | None = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: float | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempts: int = 1
    cached: bool = False
    # Set by structured(): the validated answer as plain JSON.
    parsed: JsonValue = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> Usage:
        """Tokens and cost as the transcript records them (a cache hit costs nothing)."""
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=0.0 if self.cached else self.cost_usd,
        )

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation sent back to the model."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg

    def parsed_tool_calls(self) -> list[tuple[str, str, dict[str, Any] | None, str | None]]:
        """``(id, name, arguments, error)`` per tool call; ``arguments`` is None when not JSON."""
        out: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        for i, tc in enumerate(self.tool_calls):
            fn = tc.get("function") or {}
            assert isinstance(fn, dict)
            raw = fn.get("arguments") or "{}"
            try:
                args = json.loads(raw) if isinstance(raw, str) else raw
                err = None if isinstance(args, dict) else "tool arguments are not a JSON object"
            except ValueError as exc:
                args, err = None, f"tool arguments are not valid JSON: {exc}"
            out.append((str(tc.get("id") or f"call_{i}"), str(fn.get("name") or ""),
                        args if isinstance(args, dict) else None, err))
        return out


@dataclass
class UsageTotals:
    """Running totals of one client's calls (for the manifest and cost roll-ups)."""

    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    invalid_outputs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def record(self, r: ChatResult) -> None:
        self.calls += 1
        self.retries += r.attempts - 1
        if r.cached:
            self.cached_calls += 1
            return
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        if r.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += r.cost_usd

    def as_dict(self) -> dict[str, int | float]:
        return {
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "failed_calls": self.failed_calls,
            "retries": self.retries,
            "invalid_outputs": self.invalid_outputs,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "unpriced_calls": self.unpriced_calls,
        }


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON schema for ``model`` usable with ``strict: true`` (every property required,
    no additional properties, ``$defs`` inlined is not needed for flat answer models)."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: fix(v) for k, v in node.items() if k not in ("title", "default")}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return fix(model.model_json_schema())


def _strict_compatible(node: Any) -> bool:
    """False when the schema has a free-form object (``additionalProperties`` as a schema)."""
    if isinstance(node, dict):
        if isinstance(node.get("additionalProperties"), dict):
            return False
        if node.get("type") == "object" and "properties" not in node and "$ref" not in node:
            return False
        return all(_strict_compatible(v) for v in node.values())
    if isinstance(node, list):
        return all(_strict_compatible(v) for v in node)
    return True


@functools.lru_cache(maxsize=256)
def _answer_schema(model: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    """``strict_schema(model)`` and whether strict mode can express it, built once per model
    (pydantic's JSON-schema generation costs milliseconds; simulators ask every turn)."""
    schema = strict_schema(model)
    return schema, _strict_compatible(schema)


def _estimate_tokens(payload: Any) -> int:
    # ~4 characters a token: only used for client-side TPM budgeting and servers without usage.
    return max(1, len(json.dumps(payload, ensure_ascii=False, default=str)) // 4)


class _NoAnswer(Exception):
    """A structured answer that will not come by asking again: ``refused`` or ``truncated``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _parse_completion(
    body: bytes,
) -> tuple[str | None, list[dict[str, Any]], str | None, int | None, int | None, str | None]:
    """``(content, tool_calls, finish_reason, prompt_tokens, completion_tokens, refusal)`` of a
    chat completion body; ``ValueError`` when it is not one (retried as ``invalid_response``)."""
    data = json.loads(body)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ValueError("response has no choices")
    choice = choices[0]
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise ValueError("response choice has no message")
    content = msg.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("message content is not a string")
    raw_calls = msg.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ValueError("message tool_calls is not a list")
    tool_calls: list[dict[str, Any]] = []
    for tc in raw_calls:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError("malformed tool call in response")
        # The shape the SDK model dump gave: None-valued keys dropped.
        tool_calls.append({k: ({fk: fv for fk, fv in v.items() if fv is not None} if isinstance(v, dict) else v)
                           for k, v in tc.items() if v is not None})
    finish = choice.get("finish_reason")
    usage = data.get("usage")
    prompt_tokens = completion_tokens = None
    if isinstance(usage, dict):
        p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(p, int) and isinstance(c, int):
            prompt_tokens, completion_tokens = p, c
    refusal = msg.get("refusal")
    return (content, tool_calls, finish if isinstance(finish, str) else None, prompt_tokens, completion_tokens,
            refusal if isinstance(refusal, str) and refusal.strip() else None)


@dataclass
class _StreamedAnswer:
    """A streamed chat completion put together from its chunks (plain JSON objects);
    ``ValueError`` on a chunk that is not one (retried as ``invalid_response``)."""

    parts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: str | None = None
    refusal: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def add(self, chunk: object) -> bool:
        """Take one chunk; True when it carried answer text or a tool call (the first token)."""
        if not isinstance(chunk, dict):
            raise ValueError("stream chunk is not a JSON object")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(p, int) and isinstance(c, int):
                self.prompt_tokens, self.completion_tokens = p, c
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise ValueError("stream chunk choices is not a list")
        first = False
        for ch in choices:
            if not isinstance(ch, dict):
                raise ValueError("malformed stream choice")
            delta = ch.get("delta") or {}
            if not isinstance(delta, dict):
                raise ValueError("stream delta is not an object")
            text, calls = delta.get("content"), delta.get("tool_calls")
            if text:
                if not isinstance(text, str):
                    raise ValueError("stream delta content is not a string")
                self.parts.append(text)
            if calls:
                if not isinstance(calls, list):
                    raise ValueError("stream delta tool_calls is not a list")
                for tc in calls:
                    self._add_call(tc)
            first = first or bool(text or calls)
            refusal = delta.get("refusal")
            if refusal:
                self.refusal = (self.refusal or "") + str(refusal)
            finish = ch.get("finish_reason")
            if isinstance(finish, str) and finish:
                self.finish = finish
        return first

    def _add_call(self, tc: object) -> None:
        index = tc.get("index", 0) if isinstance(tc, dict) else None
        if not isinstance(tc, dict) or not isinstance(index, int):
            raise ValueError("malformed tool call in stream")
        slot = self.calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        if tc.get("id"):
            slot["id"] = tc["id"]
        fn = tc.get("function")
        if isinstance(fn, dict):
            slot["function"]["name"] += fn.get("name") or ""
            slot["function"]["arguments"] += fn.get("arguments") or ""

    def content(self) -> str | None:
        return "".join(self.parts) if self.parts or not self.calls else None

    def tool_calls(self) -> list[dict[str, Any]]:
        return [self.calls[i] for i in sorted(self.calls)]


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - time.time())


def tls_context() -> ssl.SSLContext:
    """httpx2's default TLS context, shared by the HTTP clients evalkit builds (not those a
    caller passes): loading the CA bundle costs ~40 ms of CPU, and a run builds a client per
    model role and event loop, plus the pre-flight's. Rebuilt when ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` (which httpx2 honours) change."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx2.create_ssl_context()  # reads the two variables that are the cache key


def _has_userinfo(url: str | None) -> bool:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return False
    return bool(parts.username or parts.password)


@dataclass
class _LoopState:
    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore
    # What ``client.post`` is given: the absolute chat URL on a client evalkit built, the
    # relative path on a caller's (an Azure client rewrites that path per deployment).
    chat_url: str = _CHAT_PATH
    closer: Any = None  # the async generator that closes ``client`` when the loop shuts down


async def _close_at_loop_end(client: openai.AsyncOpenAI | None) -> Any:
    """Closes ``client`` (when evalkit made it) once resumed or closed. Started once per loop:
    asyncio registers every started async generator with its loop and ``aclose()``-s the
    unfinished ones when ``asyncio.run`` (or ``asyncio.Runner``) shuts down, *inside* that
    loop. So the HTTP connections are closed even by callers that never call
    :meth:`LLMClient.aclose`, on the loop they belong to."""
    try:
        yield
    finally:
        if client is not None:
            await client.close()


@dataclass
class LLMClient:
    """A model for one role (``simulator``, ``judge`` or ``agent``), shared by a whole run.

    ``cache_reads`` decides whether this client is served from the cache at all: true for
    judges and simulators, false for the agent unless replay is asked for (the agent under
    test must actually answer). Safe to use from several event loops one after another.

    ``openai_client`` or ``http_client`` (not both) replace what evalkit would build for the
    HTTP side; see the module docstring. With ``openai_client``, the endpoint, key and timeout
    are that client's own (``settings`` still names the model and the limits); evalkit
    turns off its retries (``with_options(max_retries=0)``), as it does for its own clients.
    """

    settings: ModelSettings
    role: str = "judge"
    cache: ResponseCache | None = None
    prices: PriceTable = field(default_factory=PriceTable)
    cache_reads: bool = True
    totals: UsageTotals = field(default_factory=UsageTotals)
    # Injected in tests: the jitter source and the sleep used between retries.
    rng: random.Random = field(default_factory=random.Random, repr=False)
    sleep: Callable[[float], Any] = field(default=asyncio.sleep, repr=False)
    # The caller's own client (proxies, custom TLS, Azure...); evalkit never closes it.
    openai_client: openai.AsyncOpenAI | None = field(default=None, repr=False)
    # The caller's own HTTP client for the AsyncOpenAI evalkit builds; evalkit never closes it.
    http_client: httpx2.AsyncClient | None = field(default=None, repr=False)
    _limiter: RateLimits = field(init=False, repr=False)
    _states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = field(
        init=False, repr=False, default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        if self.openai_client is not None and self.http_client is not None:
            raise ConfigError("pass openai_client or http_client, not both (an AsyncOpenAI has its own "
                              "http_client)", field=f"{self.role}.http_client")
        self._limiter = RateLimits(self.settings.rpm, self.settings.tpm)

    @property
    def model(self) -> str:
        return self.settings.model

    # -- plumbing ---------------------------------------------------------------------------

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            # max_retries=0: ours, not theirs: one retry policy, one place.
            if self.openai_client is not None:
                # A copy sharing the caller's HTTP client: closing it would close theirs.
                client, owned = self.openai_client.with_options(max_retries=0), False
            else:
                client = openai.AsyncOpenAI(
                    api_key=self.settings.key(),
                    base_url=self.settings.base_url,
                    # An httpx2.Timeout, not a float: the SDK and httpx2 rebuild the timeout on
                    # every request, and from a float that takes a slow runtime-protocol check.
                    timeout=httpx2.Timeout(self.settings.timeout),
                    max_retries=0,
                    http_client=self.http_client or self._default_http_client(),
                )
                owned = self.http_client is None
            state = _LoopState(client=client, semaphore=asyncio.Semaphore(self.settings.max_concurrency))
            if self.openai_client is None:
                # The SDK's own merge (base path + relative path), done once instead of per call.
                base = client.base_url
                state.chat_url = str(base.copy_with(raw_path=base.raw_path + _CHAT_PATH.lstrip("/").encode()))
            self._states[loop] = state  # before the await below: concurrent callers share it
            state.closer = _close_at_loop_end(client if owned else None)
            await state.closer.__anext__()
        return state

    def _default_http_client(self) -> httpx2.AsyncClient:
        # The SDK's aiohttp client (its README's advice for concurrency): less CPU per call than
        # its default httpx2 client (module docstring). aiohttp refuses credentials in the URL
        # beside the key's header, so a base URL with `user:pass@` takes the SDK's httpx2
        # client, which sends them as Basic auth.
        if _has_userinfo(self.settings.base_url):
            return openai.DefaultAsyncHttpxClient(verify=tls_context())
        return openai.DefaultAioHttpClient(verify=tls_context())

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop (call before the loop ends)."""
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        if state is not None:
            await state.closer.aclose()  # runs its finally: closes the client

    def _timeout_text(self, client: openai.AsyncOpenAI) -> str:
        if self.openai_client is None:
            return f"{self.settings.timeout:g}s"
        timeout = client.timeout  # the caller's client: its own timeout
        seconds = timeout.read if isinstance(timeout, httpx2.Timeout) else timeout
        return f"{seconds:g}s" if isinstance(seconds, int | float) else "the client's timeout"

    def _scrub(self, text: str) -> str:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        own = getattr(self.openai_client, "api_key", None)  # a caller's client carries its own key
        return scrub(text, key, own if isinstance(own, str) else None)

    def _backoff(self, attempt: int) -> float:
        cap = min(self.settings.max_backoff_s, self.settings.backoff_s * (2 ** (attempt - 1)))
        return self.rng.uniform(cap / 2, cap)  # "equal jitter": never zero, never above the cap

    # -- calls ------------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
        stream: bool = False,
        on_first_token: Callable[[], None] | None = None,
        use_cache: bool | None = None,
        validate: Callable[[ChatResult], None] | None = None,
    ) -> ChatResult:
        """One chat completion. ``validate`` may raise ``ValueError`` to refuse an answer
        (it is then neither cached nor retried here; :meth:`structured` re-asks)."""
        temperature = self.settings.temperature if temperature is None else temperature
        seed = self.settings.seed if seed is None else seed
        request: dict[str, Any] = {"model": model or self.settings.model, "messages": list(messages)}
        for name, value in (
            ("tools", list(tools) if tools else None),
            ("tool_choice", tool_choice if tools else None),
            ("response_format", response_format),
            ("temperature", temperature),
            ("seed", seed),
            ("max_tokens", max_tokens),
        ):
            if value is not None:
                request[name] = value

        reads = self.cache_reads if use_cache is None else use_cache
        cache = self.cache if (self.cache is not None and self.cache.enabled) else None
        key = request_key(request) if cache is not None else None
        if cache is not None and key is not None and reads:
            hit = cache.get(key)
            if hit is not None:
                try:
                    result = ChatResult.model_validate({**hit, "cached": True, "attempts": 1})
                    if validate is not None:
                        validate(result)
                except (ValidationError, ValueError):
                    result = None
                if result is not None:
                    if on_first_token is not None:
                        on_first_token()
                    self.totals.record(result)
                    return result

        result = await self._call_with_retries(request, stream=stream, on_first_token=on_first_token)
        self.totals.record(result)
        if validate is not None:
            validate(result)  # ValueError propagates: not cached
        if cache is not None and key is not None:
            cache.put(key, request, result.model_dump(mode="json", exclude={"cached", "attempts"}))
        return result

    async def structured(
        self,
        messages: Sequence[dict[str, Any]],
        output: type[M],
        *,
        name: str = "answer",
        retries: int = 2,
        **kwargs: Any,
    ) -> tuple[M, ChatResult]:
        """Ask for JSON matching ``output`` (``response_format`` json_schema, strict) and validate
        it. A malformed answer is re-asked up to ``retries`` times with the validation error;
        then :class:`ModelCallError` (kind ``invalid_output``) is raised."""
        schema, strict = _answer_schema(output)
        response_format = {
            "type": "json_schema",
            # Free-form mappings cannot be expressed in strict mode: ask non-strictly, still validate.
            "json_schema": {"name": name, "schema": schema, "strict": strict},
        }
        convo = list(messages)
        holder: dict[str, M] = {}

        def check(r: ChatResult) -> None:
            # A refusal or a cut answer is named, never re-asked: the same request gets the
            # same refusal, and a re-ask of a cut answer is cut again (and paid twice).
            if r.refusal:
                raise _NoAnswer("refused", f"the {self.role} model refused: {' '.join(r.refusal.split())[:200]}")
            if r.finish_reason == "content_filter":
                raise _NoAnswer("refused", f"the {self.role} model's answer was withheld by its content filter")
            text = (r.content or "").strip()
            if text.startswith("```"):  # some local models fence JSON despite the schema
                text = text.strip("`").removeprefix("json").strip()
            try:
                holder["value"] = output.model_validate_json(text)
            except ValidationError as exc:
                if r.finish_reason == "length":
                    raise _NoAnswer("truncated", f"the {self.role} model's answer was cut at its token limit "
                                                 "(finish_reason=length)") from None
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ValueError(f"{loc + ': ' if loc else ''}{err['msg']}") from None

        last = ""
        for attempt in range(retries + 1):
            try:
                result = await self.chat(convo, response_format=response_format, validate=check, **kwargs)
            except _NoAnswer as exc:
                self.totals.invalid_outputs += 1
                raise ModelCallError(exc.reason, kind=exc.kind, attempts=attempt + 1) from None
            except ValueError as exc:
                self.totals.invalid_outputs += 1
                last = str(exc)
                convo = [
                    *messages,
                    {"role": "user", "content": (
                        f"Your previous answer was invalid ({last}). Reply again with only a JSON object "
                        f"matching the schema '{name}'."
                    )},
                ]
                if attempt < retries:
                    continue
                break
            value = holder["value"]
            return value, result.model_copy(update={"parsed": value.model_dump(mode="json")})
        raise ModelCallError(
            f"{self.role} model returned malformed output {retries + 1} times: {last}",
            kind="invalid_output", attempts=retries + 1,
        )

    async def _call_with_retries(
        self, request: dict[str, Any], *, stream: bool, on_first_token: Callable[[], None] | None
    ) -> ChatResult:
        # The estimate only feeds the tokens-per-minute bucket: serialising the whole prompt
        # for it on every call cost ~0.05 ms, so it is skipped when there is no such limit.
        est = (_estimate_tokens(request["messages"]) + int(request.get("max_tokens") or 256)
               if self._limiter.tpm else 0)
        attempts = self.settings.max_retries + 1
        last_kind, last_reason, last_status = "error", "", None
        for attempt in range(1, attempts + 1):
            if self._limiter.active:
                await self._limiter.acquire(est)
            wait: float | None = None
            state = self._states.get(asyncio.get_running_loop()) or await self._state()
            try:
                async with state.semaphore:
                    result = await self._once(state, request, stream=stream, on_first_token=on_first_token)
            except openai.APIStatusError as exc:
                status = exc.status_code
                last_status = status
                detail = self._scrub(getattr(exc, "message", "") or str(exc))
                if status in _RETRYABLE_STATUS or status >= 500:
                    last_kind = "rate_limited" if status == 429 else "server_error"
                    last_reason = f"HTTP {status}: {detail}"
                    wait = _retry_after(exc)
                else:
                    self.totals.failed_calls += 1
                    kind = "auth" if status in (401, 403) else "bad_request"
                    raise ModelCallError(
                        f"{self.role} model {request['model']}: HTTP {status}: {detail}",
                        kind=kind, attempts=attempt, status=status,
                    ) from None
            except openai.APITimeoutError:
                last_kind, last_reason = "timeout", f"no answer within {self._timeout_text(state.client)}"
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                last_kind, last_reason = "connection", f"connection failed: {type(cause).__name__}: {cause}"
            except (ValueError, TypeError, KeyError, AttributeError, openai.APIResponseValidationError) as exc:
                # A 200 whose body is not a chat completion (truncated JSON, HTML from a proxy).
                last_kind, last_reason = "invalid_response", f"unparseable response: {type(exc).__name__}: {exc}"
            else:
                result.attempts = attempt
                if self._limiter.tpm:
                    await self._limiter.settle(est, result.total_tokens)
                return result
            if attempt < attempts:
                delay = self._backoff(attempt) if wait is None else min(wait, 120.0)
                await self.sleep(delay)
        self.totals.failed_calls += 1
        raise ModelCallError(
            f"{self.role} model {request['model']}: {last_kind} after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {self._scrub(last_reason)}",
            kind=last_kind, attempts=attempts, status=last_status,
        )

    async def _once(
        self,
        state: _LoopState,
        request: dict[str, Any],
        *,
        stream: bool,
        on_first_token: Callable[[], None] | None,
    ) -> ChatResult:
        client = state.client
        start = time.perf_counter()
        ttft: float | None = None
        if not stream:
            # The SDK's documented raw request (module docstring). Same HTTP errors as create()
            # (the SDK raises them before the body is cast); the body is read with json.loads.
            raw = await client.post(state.chat_url, body=request, cast_to=httpx2.Response,
                                    options=_request_options())
            body = raw.content
            content, tool_calls, finish, prompt_tokens, completion_tokens, refusal = _parse_completion(body)
        else:
            # Chunks as plain JSON (``AsyncStream[object]``: the SDK's SSE decoding, error events
            # and connection handling, without a pydantic ChatCompletionChunk per chunk).
            chunks = await client.post(
                state.chat_url,
                body={**request, "stream": True, "stream_options": {"include_usage": True}},
                cast_to=object,
                options=_request_options(),
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            answer = _StreamedAnswer()
            async for chunk in chunks:
                if answer.add(chunk) and ttft is None:
                    ttft = (time.perf_counter() - start) * 1000
                    if on_first_token is not None:
                        on_first_token()
            content, tool_calls, finish, refusal = answer.content(), answer.tool_calls(), answer.finish, answer.refusal
            prompt_tokens, completion_tokens = answer.prompt_tokens, answer.completion_tokens
        latency = (time.perf_counter() - start) * 1000
        estimated = prompt_tokens is None or completion_tokens is None
        if estimated:
            prompt_tokens = _estimate_tokens(request["messages"])
            completion_tokens = _estimate_tokens([content, tool_calls]) if (content or tool_calls) else 0
        assert prompt_tokens is not None and completion_tokens is not None
        return ChatResult(
            content=content,
            tool_calls=tool_calls,
            finish_reason=finish,
            refusal=refusal,
            model=request["model"],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_estimated=estimated,
            cost_usd=self.prices.cost(request["model"], prompt_tokens, completion_tokens),
            latency_ms=round(latency, 3),
            ttft_ms=round(ttft, 3) if ttft is not None else None,
        )
