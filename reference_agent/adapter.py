"""The evalkit adapter: ``--agent reference_agent:create_agent`` (the only module that
imports evalkit, and only its public types).

evalkit calls the factory once per conversation (with ``session=`` when it accepts it);
options come from the agent spec's query string, e.g.
``reference_agent:create_agent?engine=rules&faults=leak_email,slow_reply=1&channel=voice``.
The LLM engine takes its model options the same way:
``reference_agent:create_agent?engine=llm&model=gpt-4o-mini&prompt=support_v1&cheap_model=...&base_url=...``;
what the spec leaves out comes from the run's model flags (``--agent-model`` / ``--model``,
``--base-url``), which evalkit hands over as ``agent_config``. The scenario's
``initial_state`` goes to the agent: one with a ``model_script`` runs the LLM engine on that
script instead of a model, whatever the spec says (offline; see
``reference_agent.scripted_model``), so seeded faults (``?faults=``) still apply to it.
"""

from __future__ import annotations

import io
from typing import Any

from evalkit import AgentConfig, AgentReply, SessionInfo, TurnContext
from evalkit.core.errors import AgentSpecError
from evalkit.core.transcript import Handoff, ToolCall, Usage
from reference_agent.agent import AgentResponse, SupportAgent
from reference_agent.analytics import TurnLogger, TurnRecord, logger_from_env
from reference_agent.engine import EngineUnavailableError
from reference_agent.faults import UnknownFaultError
from reference_agent.scripted_model import ModelScriptError

__all__ = ["ReferenceAgentAdapter", "create_agent"]


def _agent(engine_options: dict[str, Any] | None = None, **kwargs: Any) -> SupportAgent:
    """A SupportAgent; bad options become evalkit's one-line AgentSpecError."""
    try:
        if engine_options and kwargs.get("engine") == "llm":
            from reference_agent.llm_engine import LLMEngine

            kwargs["engine"] = LLMEngine(**engine_options)  # a fresh engine per conversation
        return SupportAgent(**kwargs)
    except ModelScriptError as err:
        raise AgentSpecError(str(err), field="initial_state") from None
    except (UnknownFaultError, EngineUnavailableError, ValueError) as err:
        raise AgentSpecError(str(err), field="reference_agent") from None


def _email(customer: Any) -> str | None:
    if isinstance(customer, dict):
        value = customer.get("email")
        return value if isinstance(value, str) and value else None
    return None


class _ConversationAnalytics(TurnLogger):
    """Keeps the conversation's analytics lines for the end state (so a suite can check
    what the agent logs, e.g. that no raw card number reaches the log), and still writes
    them wherever ``REFERENCE_AGENT_ANALYTICS`` says."""

    # The stable fields only: no clock time or latency, so end states stay reproducible.
    FIELDS = ("turn", "intent", "outcome", "pii", "message", "reply")

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.forward = logger_from_env()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: TurnRecord) -> str:
        self.records.append({name: getattr(record, name) for name in self.FIELDS})
        return self.forward.emit(record) if self.forward is not None else ""


class ReferenceAgentAdapter:
    """One conversation with the reference agent, speaking evalkit's AgentAdapter protocol."""

    def __init__(self, session: SessionInfo | None, *, engine: str, faults: str | list[str] | None,
                 channel: str | None, engine_options: dict[str, Any] | None = None) -> None:
        self.session = session
        self.engine = engine
        self.engine_options = engine_options
        self.faults = faults
        self.channel = channel
        self.agent: SupportAgent | None = None
        self.analytics = _ConversationAnalytics()
        if session is not None:
            self.agent = self._build(session)

    def _build(self, session: SessionInfo) -> SupportAgent:
        return _agent(
            self.engine_options,
            session_id=session.session_id,
            channel=self.channel or session.channel or "web",
            customer_email=_email(session.customer),
            engine=self.engine,
            faults=self.faults or (),
            analytics=self.analytics,
            initial_state=session.initial_state,
        )

    def respond(self, ctx: TurnContext) -> AgentReply:
        if self.agent is None:
            self.session = ctx.session
            self.agent = self._build(ctx.session)
        first = True

        def on_token(_chunk: str) -> None:
            nonlocal first
            if first:
                first = False
                ctx.first_token()

        response = self.agent.reply(ctx.message, on_token=on_token)
        return to_agent_reply(response)

    def end_state(self) -> dict[str, Any] | None:
        """The rows the conversation changed, plus its analytics lines (``analytics``)."""
        if self.agent is None:
            return None
        return {**self.agent.end_state(), "analytics": list(self.analytics.records)}

    def reset(self) -> None:
        if self.agent is not None:
            self.agent.reset()
        self.analytics.records.clear()


def to_agent_reply(response: AgentResponse) -> AgentReply:
    """Convert the agent's own reply type to evalkit's."""
    usage = None
    if response.usage:
        usage = Usage(prompt_tokens=int(response.usage.get("prompt_tokens", 0)),
                      completion_tokens=int(response.usage.get("completion_tokens", 0)),
                      cost_usd=response.usage.get("cost_usd"))
    return AgentReply(
        content=response.text,
        tool_calls=[ToolCall(name=c["name"], arguments=c["arguments"], result=c["result"], error=c["error"])
                    for c in response.tool_calls],
        handoff=Handoff(**response.handoff) if response.handoff else None,
        usage=usage,
        end_conversation=response.end_conversation,
        metadata={"intent": response.intent, "outcome": response.outcome, "messages": response.messages},
    )


def _from_config(options: dict[str, Any], config: AgentConfig | None) -> dict[str, Any]:
    """The spec's LLM options, completed from the run's agent model (the spec wins)."""
    settings = config.model if config is not None else None
    if settings is None:
        return options
    out = dict(options)
    if "model" not in out:
        out["model"] = settings.model
        # The endpoint and key belong to that model: never pair the run's model with
        # another endpoint, nor the spec's model with the run's key.
        if "base_url" not in out and settings.base_url:
            out["base_url"] = settings.base_url
        if settings.api_key is not None:
            out["api_key"] = settings.api_key.get_secret_value()
    return out


def create_agent(
    session: SessionInfo | None = None,
    *,
    agent_config: AgentConfig | None = None,
    engine: str = "rules",
    faults: str | list[str] | None = None,
    channel: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    prompt: str | None = None,
    cheap_model: str | None = None,
    max_tool_iterations: int | None = None,
) -> ReferenceAgentAdapter:
    """evalkit factory: a fresh reference agent (own store copy) for one conversation.

    ``model``, ``base_url``, ``prompt``, ``cheap_model`` and ``max_tool_iterations``
    configure ``engine=llm`` (see ``reference_agent.llm_engine``); a model the spec does not
    name comes from ``agent_config`` (evalkit's ``--agent-model`` / ``--model`` / ``--base-url``).
    """
    options = {k: v for k, v in {"model": model, "base_url": base_url, "prompt": prompt, "cheap_model": cheap_model,
                                 "max_tool_iterations": max_tool_iterations}.items() if v is not None}
    if options and engine != "llm":
        raise AgentSpecError(f"{', '.join(options)}: only for engine=llm", field="reference_agent")
    if engine == "llm":
        options = _from_config(options, agent_config)
    adapter = ReferenceAgentAdapter(session, engine=engine, faults=faults, channel=channel, engine_options=options)
    if session is None:
        # Validate options now so a bad spec fails before the run starts.
        _agent(options, session_id="validate", engine=engine, faults=faults or (), channel=channel or "web").close()
    return adapter
