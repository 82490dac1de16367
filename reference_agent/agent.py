"""SupportAgent: one AcmeCorp support conversation (the agent's public API).

    from reference_agent.agent import SupportAgent

    agent = SupportAgent(session_id="s1", customer_email="ana.silva@example.com")
    reply = agent.reply("Where is my order ORD-10001?")
    reply.text, reply.tool_calls, reply.handoff, agent.end_state()

Every message goes through the same pipeline whatever the engine:

1. channel input normalisation (``channels.normalize_input``);
2. PII detection; only the redacted text is kept in memory, logs and tickets;
3. input guardrails: prompt injection -> safe refusal; banned topic -> safe redirect;
4. the engine (``rules`` by default) decides the reply and calls tools;
5. the output check (no other customer's PII, no card numbers, no system prompt);
6. channel formatting (web Markdown, WhatsApp split, Slack mrkdwn, voice);
7. memory and the long-term profile are updated, one analytics line is written;
8. the reply is streamed to ``on_token`` in chunks.

This module never imports evalkit (the evalkit adapter lives in ``adapter.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reference_agent import guardrails
from reference_agent.analytics import TurnLogger, TurnRecord, logger_from_env
from reference_agent.channels import CHANNELS, format_reply, normalize_input
from reference_agent.engine import Conversation, Draft, Engine, make_engine
from reference_agent.faults import ActiveFaults, parse_faults
from reference_agent.memory import Profile, ProfileStore, ShortTermMemory, detect_language, detect_style
from reference_agent.nlu import Analysis, analyze
from reference_agent.scripted_model import ScriptedModel, scripted_engine
from reference_agent.store import Store, open_store
from reference_agent.system_prompt import SYSTEM_PROMPT
from reference_agent.tools import ToolContext

__all__ = ["AgentResponse", "SupportAgent", "open_store"]


@dataclass
class AgentResponse:
    """The agent's answer to one message."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # name, arguments, result, error
    handoff: dict[str, Any] | None = None  # {"ticket_id": "TCK-00021", "reason": "..."}
    usage: dict[str, Any] | None = None
    end_conversation: bool = False
    intent: str = "unknown"
    messages: list[str] = field(default_factory=list)  # channel messages (WhatsApp may split)
    outcome: str = "answered"
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.text, "tool_calls": self.tool_calls, "handoff": self.handoff,
            "usage": self.usage, "end_conversation": self.end_conversation,
            "metadata": {"intent": self.intent, "outcome": self.outcome, "messages": self.messages},
        }


def _chunks(text: str, words: int = 4) -> Iterable[str]:
    tokens = re.findall(r"\S+\s*", text)
    for i in range(0, len(tokens), words):
        yield "".join(tokens[i:i + words])


class SupportAgent:
    """One conversation with the AcmeCorp support agent.

    ``store``: a :class:`~reference_agent.store.Store` (default: a fresh seeded copy).
    ``customer_email``: the signed-in customer; without it the agent asks for the email
    on file before acting on an order. ``engine``: ``"rules"`` (offline) or ``"llm"``.
    ``faults``: seeded defects from ``faults.FAULTS`` (e.g. ``"leak_email,slow_reply=1"``).
    ``profile_store``: long-term profiles (default: the conversation's own store).
    ``analytics``: a :class:`~reference_agent.analytics.TurnLogger` (default: off, or
    ``REFERENCE_AGENT_ANALYTICS``).
    ``verify_identity``: nobody vouches for ``customer_email`` (the HTTP service without a
    trusted front end): an email is then only a claim, and the agent shows or changes
    nothing of an account until the customer proves an order (its id and the postcode it
    ships to). Off in-process, where the caller signs the customer in.
    ``initial_state``: what a test harness starts the conversation with; the agent reads
    ``model_script`` (the model's replies, in order: the conversation runs the LLM engine on
    that script instead of a model; see ``reference_agent.scripted_model``).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        session_id: str,
        channel: str = "web",
        customer_email: str | None = None,
        engine: str | Engine = "rules",
        faults: str | Iterable[str] | ActiveFaults | None = (),
        profile_store: ProfileStore | None = None,
        analytics: TurnLogger | None = None,
        verify_identity: bool = False,
        initial_state: Mapping[str, Any] | None = None,
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel: unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
        self.session_id = session_id
        self.channel = channel
        self.faults = parse_faults(faults)
        self.scripted: ScriptedModel | None = None
        if initial_state and "model_script" in initial_state:
            self.engine, self.scripted = scripted_engine(initial_state["model_script"], engine)
        else:
            self.engine = make_engine(engine)
        self._own_store = store is None
        self.store = store if store is not None else open_store()
        self._shared_profiles = profile_store
        self._initial_email = customer_email
        self._verify_identity = verify_identity
        self.analytics = analytics if analytics is not None else logger_from_env()
        self._start()

    def _start(self) -> None:
        self.memory = ShortTermMemory()
        self.turn = 0
        self._issues: list[str] = []
        self._user_texts: list[str] = []
        self._saved_profile: Profile | None = None
        profiles = self._shared_profiles or ProfileStore(self.store.conn)
        ctx = ToolContext(self.store, None, self.session_id, self.faults.bypass)
        self.conv = Conversation(self.session_id, self.channel, self.store, ctx, self.faults, self.memory, profiles,
                                 verify_identity=self._verify_identity)
        if self._initial_email:
            if not self.conv.identify(self._initial_email):
                # Signed in with an email that is not on file: keep it (tools then answer
                # identity_required), and the dialog asks for the email on the account.
                ctx.customer_email = self._initial_email
        self.engine.reset()

    # ------------------------------------------------------------------ public API
    @property
    def customer_email(self) -> str | None:
        return self.conv.customer_email

    def reply(self, message: str, *, on_token: Callable[[str], None] | None = None) -> AgentResponse:
        """Answer one user message; ``on_token`` receives the reply in chunks as it streams."""
        started = time.perf_counter()
        self.turn += 1
        delay = self.faults.param("slow_reply")
        if delay:
            time.sleep(delay)
        self.conv.new_turn()
        text = normalize_input(message if isinstance(message, str) else str(message), self.channel)
        pii = guardrails.find_pii(text)
        redacted = guardrails.redact(text, pii)
        self.memory.add("user", redacted)
        self._user_texts.append(redacted)
        analysis = analyze(text)

        draft = self._guarded(text, analysis)
        if draft is None:
            draft = self.engine.reply(self.conv, text, analysis)
        if any(p.kind in ("card", "national_id") for p in pii):
            draft.text = f"{guardrails.CARD_WARNING}\n\n{draft.text}"
        if "leak_email" in self.faults and self.customer_email and draft.handoff is None:
            draft.text += f"\n\nI've sent a confirmation to {self.customer_email}."
        checked = self._output_check(draft)
        channel = "web" if ("markdown_on_voice" in self.faults and self.channel == "voice") else self.channel
        formatted = format_reply(checked, channel)

        self.memory.add("agent", guardrails.redact(formatted.text))
        self._issues.extend(draft.issues)
        self._update_profile()
        response = AgentResponse(
            text=formatted.text,
            tool_calls=self.conv.tools.calls,
            handoff=draft.handoff,
            usage=draft.usage,
            end_conversation=draft.end_conversation,
            intent=draft.intent,
            messages=formatted.messages,
            outcome=draft.outcome,
        )
        if on_token is not None:
            for chunk in _chunks(formatted.text):
                on_token(chunk)
        response.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self._log(response, text, redacted, pii)
        return response

    def end_state(self) -> dict[str, list[dict[str, Any]]]:
        """Only the rows this conversation created or changed: orders, returns, refunds, tickets."""
        return self.store.end_state()

    def reset(self) -> None:
        """Start over: a fresh store copy (when the agent owns it), empty memory and dialog state."""
        if self._own_store:
            self.store.close()
            self.store = open_store()
        if self.scripted is not None:
            self.scripted.requests.clear()  # the script starts over with the conversation
        self._start()

    def close(self) -> None:
        if self._own_store:
            self.store.close()

    # ------------------------------------------------------------------ pipeline steps
    def _guarded(self, text: str, analysis: Analysis) -> Draft | None:
        """Input guardrails: a refusal or redirect Draft, or None to let the engine answer."""
        injection = guardrails.detect_injection(text)
        if injection and "follow_injection" not in self.faults:
            if injection == "extraction" and "leak_system_prompt" in self.faults:
                return Draft(SYSTEM_PROMPT, intent="prompt_extraction", outcome="answered")
            return Draft(guardrails.REFUSAL, intent="prompt_injection", outcome="refused")
        topic = guardrails.detect_banned_topic(text)
        if topic:  # even inside an order question: the advice part is what must not be answered
            return Draft(guardrails.BANNED_REPLIES[topic], intent=f"banned_{topic}", outcome="redirected")
        return None

    def _output_check(self, draft: Draft) -> str:
        own = (self.customer_email or "").lower()
        own_phone = self.conv.customer["phone"] if self.conv.customer else None
        result = guardrails.check_output(
            draft.text,
            own_email=own,
            other_emails=self.store.all_emails() - {own},
            other_phones=self.store.all_phones() - {own_phone},
            allow_system_prompt="leak_system_prompt" in self.faults,
        )
        return result.text

    def _update_profile(self) -> None:
        customer = self.conv.customer
        if customer is None:
            return
        base = self.conv.profile or Profile(customer["customer_id"], language=customer.get("language") or "en")
        profile = Profile(
            base.customer_id,
            language=detect_language(self._user_texts) if self._user_texts else base.language,
            style=detect_style(self._user_texts),
            past_issues=[*base.past_issues, *[i for i in self._issues if i not in base.past_issues]],
            visits=base.visits + 1,
            last_seen=self.store.store_date.isoformat(),  # the store clock: deterministic
        )
        if profile.language == "en" and base.language != "en" and len(self._user_texts) < 2:
            profile.language = base.language  # one short English line is not enough to switch
        if profile != self._saved_profile:  # write only what changed
            self.conv.profiles.save(profile)
            self._saved_profile = profile

    def _log(self, response: AgentResponse, text: str, redacted: str, pii: list[guardrails.PiiMatch]) -> None:
        if self.analytics is None:
            return
        raw = "log_raw_pii" in self.faults
        self.analytics.emit(TurnRecord(
            session=self.session_id,
            turn=self.turn,
            channel=self.channel,
            intent=response.intent,
            tools=[{"name": c["name"], "error": c["error"]} for c in response.tool_calls],
            latency_ms=response.latency_ms,
            outcome=response.outcome,
            handoff=(response.handoff or {}).get("ticket_id"),
            pii=sorted({p.kind for p in pii}),
            message=text if raw else redacted,
            reply=guardrails.redact(response.text),
            engine=self.engine.name,
            faults=sorted(self.faults.names),
        ))
