"""``PersonaUser``: an offline, deterministic simulated customer played from a persona.

Given the same seed and the same agent replies it says exactly the same things; across
seeds its phrasing varies (several templates per act, tone decorations, typos). It reads
each agent reply with simple, documented rules (see ``docs/simulated-users.md``):
fact questions, yes/no confirmations, "anything else?", "I didn't understand",
refusals/failures, repeated replies and handoffs.
"""

from __future__ import annotations

import inspect
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.core.errors import ScenarioError
from evalkit.core.transcript import AgentTurn, StopReason, UserTurn
from evalkit.judges import run_judges
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.registry import build_judge
from evalkit.scenarios.models import Persona, Scenario
from evalkit.simulators._phrasing import (
    ASK_HUMAN,
    DEFAULT_ANSWERS,
    OPENINGS,
    PUSH_GOAL,
    TEMPLATES,
    Phraser,
    fact_text,
    lower_first,
)
from evalkit.simulators.base import SimulatorContext, Stop, UserMessage

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = ["PersonaUser", "Reading", "read_reply", "fact_category", "INTENTS"]

INTENTS = ("track_order", "return", "refund", "cancel", "change_address", "faq", "human", "other")

# What an agent may ask for, recognised in the sentences that ask something.
_ASKS: dict[str, str] = {
    "order_id": r"order\s*(id|number|no\b|#|reference|ref\b)|which order|(reference|confirmation) (number|code)",
    "email": r"e-?mail",
    "name": r"(your|full|first|last) name|name on the (order|account)|who am i (speaking|talking)",
    "phone": r"phone|mobile|telephone|contact number",
    "address": r"(?<!email )(?<!e-mail )\baddress|post\s?code|zip|where (should|shall|do you want)",
    "reason": r"\breason|why (do|would|are) you|what('s| is| was) wrong|what happened|what('s| is) the (problem|issue)",
    "amount": r"\bamount|how much",
    "item": r"which (item|product)|what (item|product)|(item|product) name|\bsku\b|which one",
    "date": r"when did you (order|buy|purchase|place)|(order|purchase) date|date of",
}
_REQUEST = re.compile(
    r"\b(please|kindly)\s+(provide|share|give|tell|send|enter|confirm|type)|"
    r"\b(can|could|would) you\s+(please\s+)?(provide|share|give|tell|send|confirm)|"
    r"\b(may|can) i (have|get|ask)|\bi('ll| will)? need\b|\blet me know\b|\bwhat('s| is) your\b",
    re.IGNORECASE,
)
_NOT_UNDERSTOOD = re.compile(
    r"(didn'?t|did not|don'?t|do not|couldn'?t|could not)\s+(quite\s+)?(understand|get|follow|catch)|"
    r"not sure (what you|i understand|what you mean)|\brephrase|say (that|it) (again|differently)|"
    r"what do you mean|could you clarify|can you clarify|i'?m not sure i follow",
    re.IGNORECASE,
)
_ANYTHING_ELSE = re.compile(
    r"anything else|something else|any other (question|thing|issue|request)|else i can (help|do)|"
    r"further (help|assistance)|help with anything",
    re.IGNORECASE,
)
# The agent proposes an action and wants a yes/no; facts named in such a sentence are the
# agent restating them ("Shall I refund ORD-1 (reason: damaged)?"), not questions.
_PROPOSAL = re.compile(
    r"\b(shall|should) i\b|\b(do|would) you (want|like) me to\b|\bwant me to\b|\bgo ahead\b|\bproceed\b|"
    r"\bis (that|this) (right|correct|ok|okay)\b|\bare you sure\b|\bok(ay)? to\b|\(?\byes\s*(/|or)\s*no\b",
    re.IGNORECASE,
)
# "Please confirm ..." is a yes/no question unless it names a fact ("confirm your email").
_CONFIRM = re.compile(
    r"\b(can|could) you confirm\b|\bplease confirm\b|\bconfirm (that|the|this)\b", re.IGNORECASE
)
_FAILED = re.compile(
    r"\b(can'?t|cannot|can not|unable to|not able to|couldn'?t|could not|wasn'?t able|failed|"
    r"not possible|isn'?t possible|no longer|not eligible|no (order|record|account)s? (found|with|matching))\b",
    re.IGNORECASE,
)
# Words that offer (or announce) a transfer. Only an agent turn with ``handoff`` set is a
# handoff; these words alone are an offer the persona may take up or ignore.
_HANDOFF_OFFER = re.compile(
    r"\b(transferr?(ing|ed)?|connect(ing)?|hand(ing)?\s+(you\s+)?(over|off)|pass(ing)?\s+(you\s+)?(on|over)|"
    r"escalat\w*)\b.{0,60}\b(human|agent|colleague|specialist|team|representative|person|someone)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def fact_category(key: str) -> str:
    """What kind of fact a persona's fact key holds (``order_number`` -> ``order_id``)."""
    k = key.lower()
    if "email" in k:
        return "email"
    if "order" in k and any(x in k for x in ("id", "number", "no", "ref")):
        return "order_id"
    if "phone" in k or "mobile" in k:
        return "phone"
    if "address" in k or "postcode" in k or "zip" in k:
        return "address"
    if "reason" in k:
        return "reason"
    if any(x in k for x in ("amount", "price", "total")):
        return "amount"
    if k in ("item", "product", "sku") or k.startswith(("item", "product")):
        return "item"
    if "name" in k:
        return "name"
    if "date" in k:
        return "date"
    return k


def _label(key: str) -> str:
    if fact_category(key) == "order_id":
        return "order number"
    words = key.replace("_", " ").replace("-", " ").split()
    return " ".join("ID" if w.lower() == "id" else w for w in words)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@dataclass
class Reading:
    """What the persona understood from one agent reply."""

    asks: list[str] = field(default_factory=list)  # fact categories asked for
    confirm: bool = False
    anything_else: bool = False
    not_understood: bool = False
    failed: bool = False
    repeated: bool = False
    errored: bool = False
    handoff: bool = False  # an agent turn has ``handoff`` set: the conversation was transferred
    handoff_offered: bool = False  # the agent offers a human ("...or I can connect you with an agent")
    handoff_question: bool = False  # ...as a yes/no question ("Shall I transfer you to an agent?")
    acted: bool = False  # the agent did something: a tool call or a substantive answer


def read_reply(turns: list[AgentTurn], earlier: list[AgentTurn], categories: list[str]) -> Reading:
    """Read the agent turns answering the last user message (``earlier``: all turns before)."""
    text = " ".join(t.content for t in turns if t.content)
    r = Reading()
    r.errored = any(t.error for t in turns) or not turns
    r.handoff = any(t.handoff is not None for t in turns)
    r.handoff_offered = not r.handoff and bool(_HANDOFF_OFFER.search(text))
    r.not_understood = bool(_NOT_UNDERSTOOD.search(text))
    said = _norm(text)
    r.repeated = bool(said) and any(_norm(t.content) == said for t in earlier if t.content)
    asking = [s for s in _SENTENCE.split(text) if s.strip().endswith("?") or _REQUEST.search(s)]
    confirm = False
    for sentence in asking:
        if _PROPOSAL.search(sentence):
            if not r.handoff and _HANDOFF_OFFER.search(sentence):
                r.handoff_question = True  # a yes/no about the offer, not about the task
            else:
                confirm = True
            continue
        named = [
            cat
            for cat in categories
            if re.search(
                _ASKS.get(cat) or r"\b" + re.escape(cat.replace("_", " ")) + r"\b",
                sentence.replace("_", " "),
                re.IGNORECASE,
            )
        ]
        r.asks += [c for c in named if c not in r.asks]
        confirm = confirm or (not named and bool(_CONFIRM.search(sentence)))
    r.anything_else = any(_ANYTHING_ELSE.search(s) for s in asking)
    r.confirm = confirm and not r.anything_else
    r.failed = not r.not_understood and bool(_FAILED.search(text))
    tools = any(t.tool_calls for t in turns)
    statement = bool(text.strip()) and not asking and not r.not_understood and not r.failed
    r.acted = tools or statement
    return r


@dataclass
class _Said:
    """The last thing the persona said, to rephrase it when not understood."""

    act: str
    render: Any  # () -> str, rendered again with a different template


class PersonaUser:
    """Plays ``scenario.user.persona`` offline. One instance per conversation; it resets
    itself when handed a transcript with no user turn. Construct as
    ``PersonaUser(scenario, seed=..., llm=...)`` (``llm`` is only passed to ``done_when``
    judges that use a model)."""

    def __init__(self, scenario: Scenario, *, seed: int = 0, llm: ModelClients | None = None) -> None:
        persona = scenario.user.persona
        if persona is None:
            raise ScenarioError(
                f"scenario '{scenario.id}' has no persona; use the scripted simulator",
                file=scenario._file,
                line=scenario._line,
                field="user.persona",
            )
        self.scenario = scenario
        self.persona: Persona = persona
        self.seed = seed
        self.llm = llm
        self.intent = persona.goal.intent if persona.goal.intent in INTENTS else "other"
        # Built once, up front: a bad done_when is a scenario error, raised before any turn.
        self.done_when: list[Judge] = [build_judge(spec) for spec in persona.goal.done_when]
        self._reset()

    # -- state -------------------------------------------------------------------------

    def _reset(self) -> None:
        self.rng = random.Random(self.seed)
        traits = self.persona.traits
        self.phraser = Phraser(self.rng, typo_rate=traits.typo_rate, verbosity=traits.verbosity)
        self.frustration = 0
        self.asked_human = False
        self.agent_acted = False
        self.given: set[str] = set()  # fact keys already told to the agent
        self.pending_stop: Stop | None = None
        self.last: _Said | None = None

    @property
    def tone(self) -> str:
        """The persona's tone, hardening as frustration passes its patience."""
        tone = self.persona.traits.tone
        if tone == "terse" or self.frustration <= self.persona.traits.patience:
            return tone
        return (
            "angry"
            if tone in ("impatient", "angry") or self.frustration > self.persona.traits.patience + 1
            else "impatient"
        )

    @property
    def frustrated(self) -> bool:
        return self.frustration > self.persona.traits.patience

    # -- the turn ----------------------------------------------------------------------

    async def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
        t = ctx.transcript
        users = t.user_turns
        if not users:
            self._reset()
            return self._opening()
        if self.pending_stop is not None:
            return self.pending_stop
        limit = min(self.persona.max_turns, ctx.max_turns)

        reply, earlier = _last_reply(t.turns)
        categories = self._categories()
        r = read_reply(reply, earlier, categories)
        self.agent_acted = self.agent_acted or r.acted

        goal_met = await self._goal_met(ctx)
        wants_human = self.intent == "human" or self.asked_human
        if r.handoff and (self.persona.goal.accept_handoff or wants_human):
            return Stop(reason=StopReason.transferred, detail="the agent handed the conversation to a human")
        if (
            goal_met is None
            and r.anything_else
            and self.agent_acted
            and not r.failed
            and self.intent != "human"
        ):
            goal_met = True  # no done_when: "anything else?" after doing something ends it
        if goal_met:
            return self._finish("goal_met", len(users) >= limit, r.anything_else)

        # Asking again for facts already given is the agent not progressing.
        known = self._fact_keys(r.asks)
        reasked = bool(r.asks) and len(known) == len(r.asks) and all(k in self.given for k in known)
        unhelpful = (
            r.errored or r.not_understood or r.repeated or r.failed or r.anything_else or r.handoff or reasked
        )
        if unhelpful:
            self.frustration += 1
        if len(users) >= limit:
            return Stop(
                reason=StopReason.max_turns, detail=f"the user sent {len(users)} messages (max_turns={limit})"
            )

        patience = self.persona.traits.patience
        mode = self.persona.traits.asks_for_human
        if not self.asked_human and (
            mode == "immediately" or (mode == "when_frustrated" and self.frustrated)
        ):
            self.asked_human = True
            return self._say("ask_human", lambda: self._pick("ask_human", ASK_HUMAN))
        if self.frustration > 2 * patience and unhelpful:
            return self._finish("gave_up", False, False)

        if r.handoff:
            return self._say(
                "decline_handoff", lambda: self._pick("decline_handoff", TEMPLATES["decline_handoff"])
            )
        if r.handoff_offered:
            # An offer is not a transfer: take it up by asking for the human, or say no when
            # it is a yes/no question ("Would you like me to connect you with an agent?").
            if wants_human:
                return self._say(
                    "accept_handoff", lambda: self._pick("accept_handoff", TEMPLATES["accept_handoff"])
                )
            if r.handoff_question and not r.asks and not r.confirm:
                return self._say(
                    "decline_handoff", lambda: self._pick("decline_handoff", TEMPLATES["decline_handoff"])
                )
        if r.not_understood and self.last is not None:
            return self._rephrase()
        if r.asks:
            return self._answer(r.asks, again=reasked)
        if r.confirm:
            yes = self.persona.facts.get("confirm", True) is not False
            key = "confirm_yes" if yes else "confirm_no"
            return self._say("confirm" if yes else "decline", lambda: self._pick(key, TEMPLATES[key]))
        if r.anything_else:
            return self._say(
                "not_done", lambda: self._pick("not_done", TEMPLATES["not_done"]) + " " + self._push_text()
            )
        if r.repeated or r.failed:
            key = "complain_repeat" if r.repeated else "complain_fail"
            return self._say("complain", lambda: self._pick(key, TEMPLATES[key]) + " " + self._push_text())
        return self._say("push_goal", self._push_text)

    # -- acts --------------------------------------------------------------------------

    def _opening(self) -> UserMessage:
        goal = self.persona.goal
        immediately = self.persona.traits.asks_for_human == "immediately" and self.intent != "human"

        def render() -> str:
            if goal.opening and self.last is None:
                text = goal.opening  # written by the scenario author: used verbatim the first time
            else:
                text = self._pick("open", self._intent_templates(OPENINGS), decorate_opening=True)
            if immediately:
                text = f"{text} {self._pick('ask_human', ASK_HUMAN)}"
            return text

        if immediately or self.intent == "human":
            self.asked_human = True
        return self._say("open+ask_human" if immediately else "open", render)

    def _fact_keys(self, asks: list[str]) -> list[str]:
        """The persona's fact keys answering these categories (those it has)."""
        keys = [[k for k in self.persona.facts if fact_category(k) == cat] for cat in asks]
        return [ks[0] for ks in keys if ks]

    def _answer(self, asks: list[str], *, again: bool = False) -> UserMessage:
        facts = self.persona.facts
        unknown = {fact_category(u): u for u in self.persona.unknown}
        parts: list[tuple[str, str]] = []  # (act, key)
        for cat in asks:
            keys = [k for k in facts if fact_category(k) == cat]
            if keys:
                parts.append(("answer", keys[0]))
            elif cat in DEFAULT_ANSWERS and cat not in unknown:
                parts.append(("default", cat))  # e.g. "How much?" -> "The full amount, please."
            else:
                parts.append(("dont_know", unknown.get(cat, cat)))
        for act, key in parts:
            if act == "answer":
                self.given.add(key)
        label = "+".join(
            f"{act}:{','.join(k for a, k in parts if a == act)}"
            for act in ("answer", "default", "dont_know")
            if any(a == act for a, _ in parts)
        )

        def render() -> str:
            out = []
            for act, key in parts:
                if act == "answer":
                    value = fact_text(facts[key])
                    pool = (
                        TEMPLATES["answer_reason"] if fact_category(key) == "reason" else TEMPLATES["answer"]
                    )
                    if len(parts) > 1:
                        pool = [p for p in pool if "{label}" in p.lower()] or pool
                    template = self.phraser.pick(f"answer:{key}", pool)
                    text = self.phraser.fill(
                        template, {"label": _label(key), "Label": _label(key).capitalize(), "value": value}
                    )
                    fact_first = template.startswith("{value}")
                elif act == "default":
                    text = self.phraser.fill(self.phraser.pick(f"default:{key}", DEFAULT_ANSWERS[key]), {})
                    fact_first = False
                else:
                    template = self.phraser.pick("dont_know", TEMPLATES["dont_know"])
                    text = self.phraser.fill(template, {"label": _label(key)})
                    fact_first = False
                out.append((text, fact_first))
            body = " ".join(t for t, _ in out)
            if again:
                body = f"{self.phraser.pick('already_told', TEMPLATES['already_told'])} {body}"
            return self.phraser.decorate(body, self.tone, fact_first=out[0][1] and not again)

        return self._say(label, render, decorate=False)

    def _push_text(self) -> str:
        return self._pick("push", self._intent_templates(PUSH_GOAL))

    def _rephrase(self) -> UserMessage:
        assert self.last is not None
        prev = self.last
        prefix = self._pick("rephrase", TEMPLATES["rephrase"])

        def render() -> str:
            text = prev.render()
            # "I mean, the full amount" -- but never change the case of a fact value.
            if prefix.endswith(",") and not prev.act.startswith("answer"):
                text = lower_first(text)
            return f"{prefix} {text}"

        return self._say(f"rephrase:{prev.act}", render, keep_last=prev, decorate=False)

    def _finish(self, why: str, now: bool, after_anything_else: bool) -> UserMessage | Stop:
        reason = StopReason.goal_met if why == "goal_met" else StopReason.gave_up
        detail = (
            "every done_when judge passes"
            if why == "goal_met" and self.done_when
            else "the agent did the task and asked if there is anything else"
            if why == "goal_met"
            else f"frustration {self.frustration} > twice the patience ({self.persona.traits.patience})"
        )
        stop = Stop(reason=reason, detail=detail)
        if now:
            return stop
        # Say a last word (thanks, or giving up) so the transcript reads naturally; stop on the next call.
        self.pending_stop = stop
        if why == "goal_met":
            key = "nothing_else" if after_anything_else else "thanks"
            return self._say("thank", lambda: self._pick(key, TEMPLATES[key]), decorate=False)
        return self._say("give_up", lambda: self._pick("give_up", TEMPLATES["give_up"]), decorate=False)

    # -- helpers -----------------------------------------------------------------------

    def _categories(self) -> list[str]:
        """Fact categories the agent might ask about: the persona's facts and unknowns, plus
        the common ones (so "what's your email?" gets "I don't know" rather than silence)."""
        cats = [fact_category(k) for k in self.persona.facts if k not in ("question", "confirm")]
        cats += [fact_category(k) for k in self.persona.unknown]
        cats += ["order_id", "email", "name", "phone", "address", "reason", "amount", "item"]
        return list(dict.fromkeys(cats))

    def _intent_templates(self, table: dict[str, list[str]]) -> list[str]:
        if self.intent == "faq" and "question" not in self.persona.facts:
            return table["faq_no_question"]
        return table[self.intent]

    def _pick(self, key: str, options: list[str], *, decorate_opening: bool = False) -> str:
        template = self.phraser.pick(key, options)
        facts = {"question": fact_text(self.persona.facts.get("question", ""))}
        text = self.phraser.fill(template, facts)
        if decorate_opening:
            text = self.phraser.decorate(text, self.tone, opening=True, fact_first=template.startswith("{"))
        return text

    def _say(
        self, act: str, render: Any, *, keep_last: _Said | None = None, decorate: bool = True
    ) -> UserMessage:
        text = render()
        if decorate and not act.startswith("open"):
            text = self.phraser.decorate(text, self.tone)
        self.last = keep_last or _Said(act, render)
        return UserMessage(content=text, act=act)

    async def _goal_met(self, ctx: SimulatorContext) -> bool | None:
        """True when every done_when judge passes on the transcript so far; None without any."""
        if not self.done_when:
            return None
        transcript = ctx.transcript
        # `state` judges need the agent's state now; a runner that can fetch it mid-conversation
        # passes `extra["end_state"]`: a callable returning the state (or an awaitable of it).
        fetch = ctx.extra.get("end_state")
        if (
            transcript.end_state is None
            and callable(fetch)
            and any(j.name == "state" for j in self.done_when)
        ):
            state = fetch()
            if inspect.isawaitable(state):
                state = await state
            if isinstance(state, dict):
                transcript = transcript.model_copy(update={"end_state": state})
        jctx = JudgeContext(transcript=transcript, scenario=self.scenario, llm=self.llm or ctx.llm)
        verdicts = await run_judges(self.done_when, jctx)
        return all(v.passed is True for v in verdicts)


def _last_reply(turns: list[Any]) -> tuple[list[AgentTurn], list[AgentTurn]]:
    """(agent turns after the last user turn, agent turns before it)."""
    last_user = max(i for i, t in enumerate(turns) if isinstance(t, UserTurn))
    after = [t for t in turns[last_user + 1 :] if isinstance(t, AgentTurn)]
    before = [t for t in turns[:last_user] if isinstance(t, AgentTurn)]
    return after, before
