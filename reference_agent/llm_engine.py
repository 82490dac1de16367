"""The LLM engine: the reference agent's dialogue driven by an OpenAI tool-calling loop.

Same tools (``tools.TOOL_SCHEMAS``, executed through ``conv.tools`` so every call is
recorded and business rules apply), same store, guardrails, handoff and channels as the
rules engine: :class:`~reference_agent.agent.SupportAgent` runs the shared pipeline around
this engine exactly as around ``RulesEngine``.

- System prompt from ``reference_agent/prompts/<name>.md`` (``support_v1`` terse,
  ``support_v2`` strict policy) or any ``.md`` path, plus the conversation context
  (channel, signed-in customer).
- Tool results are fed back; at most ``max_tool_iterations`` model calls may request
  tools per message, then the model must answer in words.
- ``escalate_to_human`` is the handoff: a ticket in the result ends the conversation.
- Cost-aware routing: a message the NLU sees as a plain FAQ question goes to
  ``cheap_model`` when one is set.
- Replies are streamed from the model (``stream=True``); the model's time-to-first-token is
  reported in ``usage["model_ttft_ms"]``. The customer sees the text only after the output
  guardrail has checked the whole reply, so the agent never streams unchecked tokens.

Configuration (arguments win over environment): ``model`` (``REFERENCE_AGENT_MODEL``,
``EVALKIT_AGENT_MODEL``, ``EVALKIT_MODEL``), ``base_url`` (``REFERENCE_AGENT_BASE_URL``,
``EVALKIT_AGENT_BASE_URL``, ``EVALKIT_BASE_URL``, ``OPENAI_BASE_URL``), ``cheap_model``
(``REFERENCE_AGENT_CHEAP_MODEL``), ``prompt`` (``REFERENCE_AGENT_PROMPT``, default
``support_v2``), or ``client`` (an ``openai.OpenAI`` to use as is, e.g. a
:class:`~reference_agent.scripted_model.ScriptedModel`'s for ``model="scripted"``); the key (``api_key``) from ``REFERENCE_AGENT_API_KEY`` or ``OPENAI_API_KEY``. This module
uses the ``openai`` package directly: the reference agent does not import evalkit.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai

from reference_agent.engine import Conversation, Draft, Engine, EngineUnavailableError
from reference_agent.nlu import Analysis
from reference_agent.scripted_model import SCRIPTED_MODEL
from reference_agent.tools import TOOL_SCHEMAS

__all__ = ["LLMEngine", "PROMPTS_DIR", "prompt_names", "load_prompt"]

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT = "support_v2"

# Tools that change something: a successful call completes a task.
_ACTIONS = ("initiate_return", "request_refund", "cancel_order", "update_shipping_address")

# Not a shop tool: lets the model adopt the identity the customer gives (the rules engine
# does this from the NLU); recorded like any other tool call.
_IDENTIFY = {
    "type": "function",
    "function": {
        "name": "identify_customer",
        "description": "Identify the customer by the email address on file they gave you.",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"],
                       "additionalProperties": False},
    },
}
# Offered instead when identities must be verified (the HTTP service without a trusted
# front end): an email is only a claim there, an order id plus its postcode is proof.
_VERIFY = {
    "type": "function",
    "function": {
        "name": "verify_customer",
        "description": "Verify the customer's identity: an order id of theirs and the ZIP code (postcode) of the "
                       "address that order ships to, both as the customer typed them.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "postcode": {"type": "string"}},
                       "required": ["order_id", "postcode"], "additionalProperties": False},
    },
}

# USD per 1M input / output tokens, for the cost on each reply (unknown models: no cost).
_PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00), "gpt-4.1-mini": (0.40, 1.60),
           "gpt-4.1-nano": (0.10, 0.40), "gpt-4.1": (2.00, 8.00)}

_clients: dict[tuple[str | None, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def _record(conv: Conversation, name: str, args: dict[str, Any], ok: dict[str, Any] | None, code: str,
            message: str) -> dict[str, Any]:
    """Record a call of one of the engine's own identity tools like any shop tool call."""
    result = ok if ok is not None else {"error": code, "message": message}
    conv.tools.calls.append({"name": name, "arguments": args, "result": result,
                             "error": None if ok is not None else f"{code}: {message}"})
    return result


def prompt_names() -> list[str]:
    """The prompt variants shipped in ``reference_agent/prompts``."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.md"))


def load_prompt(name: str) -> str:
    """A shipped variant by name (``support_v1``) or a path to a Markdown file."""
    path = Path(name)
    if path.suffix != ".md":
        path = PROMPTS_DIR / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        raise EngineUnavailableError(
            f"engine: prompt {name!r} not found (shipped: {', '.join(prompt_names())}; or a path to a .md file)"
        ) from None


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _client(base_url: str | None, api_key: str, timeout: float) -> openai.OpenAI:
    # One connection pool per endpoint, shared by every conversation of the process on purpose:
    # it is configured by its key alone and carries no conversation's data.
    key = (base_url, api_key, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=3)
            _clients[key] = client
        return client


class LLMEngine(Engine):
    """Answers with an OpenAI-compatible model calling the shop's tools."""

    name = "llm"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        cheap_model: str | None = None,
        prompt: str | None = None,
        max_tool_iterations: int = 5,
        temperature: float | None = 0.0,
        stream: bool = True,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        client: openai.OpenAI | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.model = _first(model, env.get("REFERENCE_AGENT_MODEL"), env.get("EVALKIT_AGENT_MODEL"),
                            env.get("EVALKIT_MODEL"))
        if not self.model:
            raise EngineUnavailableError(
                "engine: 'llm' needs a model: run evalkit with --agent-model NAME (or --model), pass model=... "
                "(agent spec ?engine=llm&model=NAME) or set REFERENCE_AGENT_MODEL / EVALKIT_AGENT_MODEL / EVALKIT_MODEL"
            )
        self.base_url = _first(base_url, env.get("REFERENCE_AGENT_BASE_URL"), env.get("EVALKIT_AGENT_BASE_URL"),
                               env.get("EVALKIT_BASE_URL"), env.get("OPENAI_BASE_URL"))
        self.cheap_model = _first(cheap_model, env.get("REFERENCE_AGENT_CHEAP_MODEL"))
        self.prompt_name = _first(prompt, env.get("REFERENCE_AGENT_PROMPT")) or DEFAULT_PROMPT
        self.prompt = load_prompt(self.prompt_name)
        if not 1 <= max_tool_iterations <= 20:
            raise EngineUnavailableError("engine: max_tool_iterations must be between 1 and 20")
        self.max_tool_iterations = max_tool_iterations
        self.temperature = temperature
        self.stream = stream
        if client is not None:
            self.client = client
        elif self.model == SCRIPTED_MODEL:
            # Never send a scripted conversation to a real endpoint under the name "scripted".
            raise EngineUnavailableError(
                "engine: model 'scripted' plays the conversation's initial_state.model_script; give one "
                "(see reference_agent/scripted_model.py)")
        else:
            key = _first(api_key, env.get("REFERENCE_AGENT_API_KEY"), env.get("OPENAI_API_KEY")) or "not-needed"
            self.client = _client(self.base_url, key, timeout)
        self.history: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.history = []

    # ------------------------------------------------------------------ one message
    def route(self, analysis: Analysis) -> str:
        """The model for this message: the cheap one for a plain FAQ question."""
        assert self.model is not None
        simple = analysis.task_intents == ["faq"] and analysis.frustration < 1 and not analysis.has("human")
        return self.cheap_model if (simple and self.cheap_model) else self.model

    def _system(self, conv: Conversation) -> str:
        if conv.customer_email:
            who = f"The customer is signed in as {conv.customer_email}."
        elif conv.verify_identity:
            who = ("The customer is not verified yet: before showing or changing anything about an order, ask for "
                   "the order id and the ZIP code of the address it ships to, then call verify_customer.")
        else:
            who = ("The customer is not identified yet: ask for the email address on file before acting on an order, "
                   "then call identify_customer.")
        return f"{self.prompt}\n\nConversation context:\n- Channel: {conv.channel}\n- {who}"

    def _complete(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
                  ) -> tuple[dict[str, Any], dict[str, int], float | None]:
        """One model call: (assistant message, usage, time to first token in ms)."""
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        start = time.perf_counter()
        if not self.stream:
            done = self.client.chat.completions.create(**kwargs)
            answer = done.choices[0].message
            calls = [tc.model_dump(mode="json", exclude_none=True) for tc in (answer.tool_calls or [])]
            usage = {"prompt_tokens": done.usage.prompt_tokens if done.usage else 0,
                     "completion_tokens": done.usage.completion_tokens if done.usage else 0}
            return ({"role": "assistant", "content": answer.content, **({"tool_calls": calls} if calls else {})},
                    usage, None)
        text: list[str] = []
        slots: dict[int, dict[str, Any]] = {}
        ttft = None
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for chunk in self.client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
            if chunk.usage is not None:
                usage = {"prompt_tokens": chunk.usage.prompt_tokens, "completion_tokens": chunk.usage.completion_tokens}
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is None:
                    continue
                if ttft is None and (delta.content or delta.tool_calls):
                    ttft = (time.perf_counter() - start) * 1000
                if delta.content:
                    text.append(delta.content)
                for tc in delta.tool_calls or []:
                    slot = slots.setdefault(tc.index, {"id": "", "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                    slot["id"] = tc.id or slot["id"]
                    if tc.function is not None:
                        slot["function"]["name"] += tc.function.name or ""
                        slot["function"]["arguments"] += tc.function.arguments or ""
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if slots:
            msg["tool_calls"] = [slots[i] for i in sorted(slots)]
        return msg, usage, ttft

    def _run_tool(self, conv: Conversation, name: str, raw_args: str) -> dict[str, Any]:
        try:
            args = json.loads(raw_args or "{}")
        except ValueError:
            args = None
        result: dict[str, Any]
        if not isinstance(args, dict):
            result = {"error": "invalid_arguments", "message": "Tool arguments must be a JSON object."}
            conv.tools.calls.append({"name": name, "arguments": {}, "result": result,
                                     "error": "invalid_arguments: Tool arguments must be a JSON object."})
            return result
        if name == "identify_customer" and not conv.verify_identity:
            ok = conv.identify(str(args.get("email", "")))
            return _record(conv, name, args, {"identified": True} if ok else None,
                           "not_found", "No customer with that email.")
        if name == "verify_customer" and conv.verify_identity:
            ok = conv.verify(str(args.get("order_id", "")), str(args.get("postcode", "")))
            return _record(conv, name, args, {"verified": True} if ok else None,
                           "not_verified", "That does not match our records.")
        return conv.tools(name, **args)

    def reply(self, conv: Conversation, message: str, analysis: Analysis) -> Draft:
        model = self.route(analysis)
        start = len(self.history)
        self.history.append({"role": "user", "content": message})
        tools = [*TOOL_SCHEMAS, _VERIFY if conv.verify_identity else _IDENTIFY]
        totals = {"prompt_tokens": 0, "completion_tokens": 0}
        ttft: float | None = None
        calls_made = 0
        text = ""
        try:
            for iteration in range(self.max_tool_iterations + 1):
                offer = iteration < self.max_tool_iterations  # the last call must answer in words
                msg, usage, first = self._complete(model, [{"role": "system", "content": self._system(conv)},
                                                           *self.history], tools if offer else None)
                calls_made += 1
                ttft = first if ttft is None else ttft
                for k in totals:
                    totals[k] += usage[k]
                if not msg.get("tool_calls") or not offer:
                    text = msg.get("content") or ""
                    self.history.append({"role": "assistant", "content": text})
                    break
                self.history.append(msg)
                for tc in msg["tool_calls"]:
                    result = self._run_tool(conv, tc["function"]["name"], tc["function"]["arguments"])
                    self.history.append({"role": "tool", "tool_call_id": tc["id"], "content": json.dumps(result)})
        except openai.OpenAIError as exc:
            # The model failed: an honest reply (recorded by evalkit as a failed outcome), never a crash.
            del self.history[start:]  # the unanswered exchange; a retry starts clean
            return Draft("Sorry, I'm having trouble right now. Please try again in a moment.",
                         intent=analysis.top or "llm", outcome="failed",
                         usage={**totals, "model": model, "error": type(exc).__name__})
        return self._draft(conv, text, analysis, model, totals, ttft, calls_made)

    def _draft(self, conv: Conversation, text: str, analysis: Analysis, model: str, totals: dict[str, int],
               ttft: float | None, calls_made: int) -> Draft:
        usage: dict[str, Any] = {**totals, "model": model, "model_calls": calls_made}
        if ttft is not None:
            usage["model_ttft_ms"] = round(ttft, 3)
        price = _PRICES.get(model)
        if price is not None:
            usage["cost_usd"] = (totals["prompt_tokens"] * price[0] + totals["completion_tokens"] * price[1]) / 1e6
        intent = analysis.top or "llm"
        done = [c for c in conv.tools.calls if c["name"] in _ACTIONS and c["error"] is None]
        issues = [f"{intent}:{c['arguments'].get('order_id')}" for c in done if c["arguments"].get("order_id")]
        ticket = next((c for c in conv.tools.calls if c["name"] == "escalate_to_human" and c["error"] is None), None)
        if ticket is not None:
            handoff = {"ticket_id": ticket["result"].get("ticket_id"),
                       "reason": ticket["arguments"].get("reason") or "escalated by the agent"}
            return Draft(text or "I'm connecting you with a human agent.", intent=intent, outcome="handoff",
                         handoff=handoff, end_conversation=True, usage=usage, issues=issues)
        if done:
            outcome = "completed"
        elif text.rstrip().endswith("?"):
            outcome = "asked"
        elif conv.tools.calls and all(c["error"] for c in conv.tools.calls):
            outcome = "failed"
        else:
            outcome = "answered"
        return Draft(text, intent=intent, outcome=outcome, usage=usage, issues=issues)
