"""A scripted model for the LLM engine: fixed model replies, served offline to the real client.

A scenario that wants to know what the agent does when its *model* misbehaves (a reply that
quotes the system prompt or another customer's phone number, a tool call with a malformed
order id, a 9,000-character answer on WhatsApp) cannot wait for a hosted model to do it. It
scripts the model instead::

    initial_state:
      model_script:
        - call: {name: check_order_status, arguments: {order_id: ORD-1001}}
        - say: "I couldn't find that order. Could you check the number?"

Every model call of the LLM engine takes the next entry, in order: ``say`` (the model answers
in words), ``call`` (one tool call) or ``calls`` (several, answered in one round); ``say`` may
come with ``call``/``calls`` (text beside the tool calls). The engine runs exactly as against
a hosted model: the tools, their argument checks, the output guardrail and the channel
formatting are the agent's own. The script comes with the conversation
(``SupportAgent(initial_state={"model_script": [...]})``, which evalkit's adapter and the HTTP
service pass on), so it composes with everything else the conversation is given: its channel,
its customer, seeded faults. A call past the end of the script answers HTTP 500, which
the engine reports as a failed turn (never a crash), so an agent that calls the model more
often than the scenario expects shows up in the transcript.

The replies reach the engine through the ``openai`` client itself, over an
``httpx2.MockTransport`` (the public way of openai's HTTP library to answer requests in-process): the request
is built and the response (JSON, or server-sent events when the engine streams) parsed by
the same client code as in production, with no socket and no network. Why not evalkit's
fake server: the reference agent does not import evalkit, and a scenario's script belongs
to one conversation, not to a server shared by a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a script is played: the agent and the service start without them
    import httpx2
    import openai

__all__ = ["SCRIPTED_MODEL", "ModelScriptError", "ScriptedModel", "scripted_engine"]

SCRIPTED_MODEL = "scripted"  # the model name a scripted conversation reports (usage["model"])
_FIELD = "initial_state.model_script"
_KEYS = ("say", "call", "calls")


class ModelScriptError(ValueError):
    """A model script that cannot be played; the message names the entry and the field."""


def _call(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelScriptError(f"{where}: must be a mapping with 'name' and 'arguments', got {type(value).__name__}")
    unknown = sorted(set(value) - {"name", "arguments"})
    if unknown:
        raise ModelScriptError(f"{where}: unknown key {unknown[0]!r} (use name, arguments)")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ModelScriptError(f"{where}.name: must be a tool name")
    args = value.get("arguments", {})
    if isinstance(args, str):
        return {"name": name, "arguments": args}  # raw JSON text, passed on as the model sent it
    if not isinstance(args, Mapping):
        raise ModelScriptError(f"{where}.arguments: must be a mapping (or the raw JSON text), got {type(args).__name__}")
    return {"name": name, "arguments": json.dumps(dict(args))}


def _entry(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelScriptError(f"{where}: must be a mapping with say, call or calls, got {type(value).__name__}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise ModelScriptError(f"{where}: unknown key {unknown[0]!r} (use say, call or calls)")
    if "call" in value and "calls" in value:
        raise ModelScriptError(f"{where}: give 'call' or 'calls', not both")
    say = value.get("say")
    if say is not None and not isinstance(say, str):
        raise ModelScriptError(f"{where}.say: must be text, got {type(say).__name__}")
    calls: list[dict[str, Any]] = []
    if "call" in value:
        calls = [_call(value["call"], f"{where}.call")]
    elif "calls" in value:
        raw = value["calls"]
        if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
            raise ModelScriptError(f"{where}.calls: must be a non-empty list of tool calls")
        calls = [_call(c, f"{where}.calls[{i}]") for i, c in enumerate(raw)]
    if say is None and not calls:
        raise ModelScriptError(f"{where}: give 'say', 'call' or 'calls'")
    return {"say": say, "calls": calls}


class ScriptedModel:
    """Model replies served in order to an ``openai.OpenAI`` client (see the module doc)."""

    def __init__(self, script: Any) -> None:
        if not isinstance(script, Sequence) or isinstance(script, str) or not script:
            raise ModelScriptError(f"{_FIELD}: must be a non-empty list of model replies (say, call or calls)")
        self.entries = [_entry(e, f"{_FIELD}[{i}]") for i, e in enumerate(script)]
        self.requests: list[dict[str, Any]] = []  # every request body, for inspection

    @property
    def used(self) -> int:
        return min(len(self.requests), len(self.entries))

    def client(self, timeout: float = 10.0) -> openai.OpenAI:
        """A client whose every chat completion is the script's next reply."""
        import httpx2
        import openai

        http = openai.DefaultHttpxClient(transport=httpx2.MockTransport(self._handle))
        return openai.OpenAI(base_url="http://scripted-model.invalid/v1", api_key="scripted", max_retries=0,
                             timeout=timeout, http_client=http)

    # ------------------------------------------------------------------ the fake endpoint
    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        import httpx2

        body = json.loads(request.content or b"{}")
        n = len(self.requests)
        self.requests.append(body)
        if n >= len(self.entries):
            return httpx2.Response(500, json={"error": {
                "message": f"model script exhausted: {len(self.entries)} replies scripted, this is call {n + 1}",
                "type": "server_error"}})
        entry = self.entries[n]
        if entry["calls"] and not body.get("tools"):
            # The engine offers no tools on its last call of a message; a hosted model
            # could not answer with a tool call then either.
            return httpx2.Response(400, json={"error": {
                "message": f"{_FIELD}[{n}]: a tool call where the engine offered no tools (the last call of a "
                           "message must answer in words)", "type": "invalid_request_error"}})
        model = str(body.get("model", SCRIPTED_MODEL))
        words = len((entry["say"] or "").split()) + sum(len(c["arguments"]) // 4 for c in entry["calls"])
        usage = {"prompt_tokens": sum(len(str(m.get("content") or "")) // 4 for m in body.get("messages", [])),
                 "completion_tokens": words}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        tool_calls = [{"id": f"call_{n}_{i}", "type": "function", "function": c} for i, c in enumerate(entry["calls"])]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": entry["say"]}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return httpx2.Response(200, json={
                "id": f"scripted-{n}", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if tool_calls else "stop"}],
                "usage": usage})
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                              content=self._events(n, model, entry["say"], tool_calls, usage))

    @staticmethod
    def _events(n: int, model: str, say: str | None, tool_calls: list[dict[str, Any]],
                usage: dict[str, int]) -> bytes:
        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            data = {"id": f"scripted-{n}", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": choices, **({"usage": usage} if usage is not None else {})}
            return f"data: {json.dumps(data)}\n\n"

        parts = [chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])]
        if say:
            parts.append(chunk([{"index": 0, "delta": {"content": say}, "finish_reason": None}]))
        for i, tc in enumerate(tool_calls):
            parts.append(chunk([{"index": 0, "finish_reason": None,
                                 "delta": {"tool_calls": [{"index": i, **tc}]}}]))
        parts.append(chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_calls else "stop"}]))
        parts.append(chunk([], usage))
        parts.append("data: [DONE]\n\n")
        return "".join(parts).encode("utf-8")


def scripted_engine(script: Any, like: Any = None) -> tuple[Any, ScriptedModel]:
    """An LLM engine that plays ``script`` (and the script), with the prompt and tool budget of
    ``like`` when that is an LLM engine (the script replaces its model, endpoint and key)."""
    from reference_agent.llm_engine import LLMEngine

    model = ScriptedModel(script)
    if isinstance(like, LLMEngine):
        engine = LLMEngine(model=SCRIPTED_MODEL, client=model.client(), prompt=like.prompt_name,
                           max_tool_iterations=like.max_tool_iterations)
    else:
        engine = LLMEngine(model=SCRIPTED_MODEL, client=model.client())
    return engine, model
