"""Natural-language understanding for the rules engine: intents and entities.

The classic approach, made robust:

* **Spelling repair**: each word of 4+ letters that is not a known word is mapped to the
  closest word of the intent vocabulary when ``difflib`` finds one at ratio >= 0.8
  ("refnud" -> "refund", "cancle" -> "cancel", "retrun" -> "return").
* **Intent scoring**: every intent has synonym phrases with weights; a phrase matches on
  word boundaries in the repaired text; the best-scoring intents win.
* **Mixed intents**: the message is split into clauses ("..., and also ...", ". Also",
  "; ", " plus ") and each clause is classified on its own, so "where is ORD-10001 and
  I want to return ORD-10002" yields two intents, each with its own order id.
* **Entities**: order ids in many spellings ("ORD-10001", "ord 10001", "order #10001",
  "#10001", a bare "10001", voice-style "O R D 1 0 0 0 1" or "one zero zero zero one"),
  malformed ids ("ORD-1001"), amounts ("$25", "25 dollars", "25.00", "USD 25"),
  emails, dates, street addresses and return reasons.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from reference_agent.memory import detect_language
from reference_agent.router import RoutePrediction, Router, load_router

__all__ = [
    "INTENTS",
    "ROUTE_INTENTS",
    "WRITE_INTENTS",
    "Analysis",
    "Clause",
    "Entities",
    "analyze",
    "extract_entities",
    "frustration_score",
    "normalize_spoken",
    "phrase_scores",
    "route_action",
    "route_intent",
    "router_text",
]

#: intent -> {phrase: weight}. Phrases are matched on word boundaries after repair.
INTENTS: dict[str, dict[str, float]] = {
    "track_order": {
        "where is my order": 3, "where is my package": 3, "where s my order": 3, "track": 2,
        "wheres my order": 3, "where is": 2, "where s my": 2, "wheres my": 2, "where are my": 2,
        "tracking": 2, "order status": 3, "status of my order": 3, "status": 1.5, "shipped yet": 2.5,
        "has it shipped": 2.5, "when will it arrive": 3, "when will my order arrive": 3,
        "hasn t arrived": 2, "not arrived": 2, "didn t arrive": 2, "not received": 2,
        "still waiting": 2, "delivery status": 3, "where is it": 2, "check my order": 3,
        "check on my order": 3, "check order": 2.5, "check the status": 3, "what happened to my order": 3,
        "update on my order": 3, "any update": 2, "order shipped": 2.5, "not here": 2, "is coming": 1.5,
        "stuff coming": 2.5, "order coming": 2.5, "happening with my": 2.5, "my delivery": 2, "on its way": 2.5,
        "arrived yet": 2.5, "has it arrived": 2.5, "arrived": 1.5, "is late": 2, "running late": 2, "delayed": 2, "never arrived": 2, "never came": 2,
        "hasn t come": 2, "not here yet": 2, "not come yet": 2, "order update": 2.5,
        # Spanish, German, French (replies stay in English; the profile records the language)
        "donde esta mi pedido": 3, "estado de mi pedido": 3, "wo ist meine bestellung": 3,
        "status meiner bestellung": 3, "ou est ma commande": 3, "suivi de commande": 3,
        "arrive": 1, "package": 1, "parcel": 1, "shipment": 1.5, "delivered yet": 2.5, "eta": 1.5,
    },
    "return": {
        "return": 2.5, "returning": 2.5, "send back": 2.5, "send it back": 3, "return label": 3,
        "devolver": 2.5, "devolucion": 2.5, "zuruckschicken": 2.5, "rucksendung": 2.5, "ruckgabe": 2.5,
        "retourner": 2.5, "renvoyer": 2.5,
        "give it back": 2, "send this back": 3, "send them back": 3, "ship it back": 3, "take it back": 2, "doesn t fit": 1, "don t want it anymore": 1,
    },
    "refund": {
        "refund": 3, "refunded": 2, "money back": 3, "reimburse": 3, "reimbursement": 3,
        "charge back": 2, "chargeback": 2, "get my money": 2.5, "compensation": 2, "credit back": 2,
        "reembolso": 3, "erstattung": 3, "ruckerstattung": 3, "remboursement": 3, "rembourser": 3,
        "pay me back": 3, "money returned": 3.5, "money refunded": 3.5, "dollars back": 3, "bucks back": 3, "back on my card": 3,
    },
    "cancel": {
        "cancel": 3, "cancellation": 3, "call off": 2, "stop my order": 3, "stop the order": 3,
        "don t ship": 2.5, "no longer want": 1.5, "abort": 2, "cancelar": 3, "stornieren": 3,
        "annuler": 3,
    },
    "change_address": {
        "change address": 4, "change the address": 4, "change my address": 4, "update address": 4,
        "update my address": 4, "update the address": 4, "new address": 3, "wrong address": 3,
        "different address": 3, "shipping address": 3, "delivery address": 3, "ship it to": 2.5,
        "send it to": 2, "deliver to": 2, "moved": 1.5, "address": 2,
    },
    "human": {
        "human": 3, "agent": 1.5, "agent please": 3, "an agent": 2.5, "staff": 1.5, "support staff": 3, "connect me": 2, "real person": 3, "a person": 2.5, "live agent": 3, "real agent": 3,
        "human agent": 3, "representative": 3, "rep": 2, "operator": 3, "speak to someone": 3,
        "talk to someone": 3, "speak with someone": 3, "talk to a": 2, "speak to a": 2,
        "speak with a": 2, "supervisor": 3, "manager": 3, "customer service agent": 3,
        "transfer me": 3, "escalate": 3, "call me": 2, "not a bot": 3, "stop the bot": 3,
    },
    "complaint": {
        "complaint": 3, "complain": 3, "file a complaint": 4, "formal complaint": 4,
        "lodge a complaint": 4, "report a problem with your service": 3,
    },
    "greeting": {
        "hi": 1, "hello": 1, "hey": 1, "good morning": 1, "good afternoon": 1, "good evening": 1,
        "hiya": 1, "greetings": 1, "hola": 1, "buenos dias": 1, "hallo": 1, "guten tag": 1,
        "bonjour": 1, "salut": 1,
    },
    "thanks": {"thanks": 1, "thank you": 1, "thx": 1, "cheers": 1, "appreciate it": 1},
    "goodbye": {
        "bye": 1.5, "goodbye": 1.5, "that s all": 2, "that is all": 2, "nothing else": 2.5,
        "no that s it": 2.5, "that s it": 2, "all good": 1.5, "i m good": 1.5, "i am good": 1.5,
        "no more questions": 2.5, "i m done": 2, "that will be all": 2,
    },
    "affirm": {
        "yes": 2, "yeah": 2, "yep": 2, "yup": 2, "sure": 1.5, "ok": 1, "okay": 1, "please do": 2.5,
        "go ahead": 2.5, "do it": 2, "correct": 1.5, "confirm": 2, "confirmed": 2, "absolutely": 2,
        "that s right": 2, "please": 0.5, "y": 1.5, "affirmative": 2, "sounds good": 2, "definitely": 2,
        "yea": 2, "yess": 2, "ya": 1.5, "of course": 2, "sure thing": 2, "alright": 1.5, "all right": 1.5,
        "yes please": 1, "please go ahead": 1, "proceed": 2, "that s fine": 2, "fine": 1,
    },
    "deny": {
        "no": 2, "nope": 2, "nah": 2, "don t": 1, "do not": 1, "not now": 2, "never mind": 2.5,
        "nevermind": 2.5, "stop": 1, "n": 1.5, "wait": 1.5, "hold on": 2, "changed my mind": 1.5,
        "no way": 2.5, "don t do": 2, "don t cancel": 3, "do not cancel": 3, "keep it": 2, "leave it": 2,
        "no thanks": 1, "no thank you": 1, "not really": 2,
    },
}
#: Intents that name a task the agent performs (vs conversational acts).
TASK_INTENTS = ("track_order", "return", "refund", "cancel", "change_address", "faq", "info")
#: Tasks that change an order (they always need an order id and a "yes").
WRITE_INTENTS = ("return", "refund", "cancel", "change_address")
#: router route -> the dialog's intent ("handoff" is refined by the label: see _route_intent).
ROUTE_INTENTS = {
    "status": "track_order", "cancel": "cancel", "refund": "refund", "return": "return",
    "address": "change_address", "faq": "faq", "info_or_decline": "info", "handoff": "human",
}
# The router decides when it is sure; otherwise the agent asks (two close routes) or falls
# back to the phrase rules (the router sees no request). The thresholds (router.Thresholds)
# travel in the artifact: train_router.py chooses them inside its own training data.
# A write request is about an order only when its object is one. "cancel my account /
# subscription / newsletter" names another object and never becomes an order change.
_OTHER_OBJECT = re.compile(
    r"\b(account|accounts|profile|subscription|subscriptions|newsletter|newsletters|membership|password|pin|"
    r"review|reviews|fee|fees|charge|penalty|policy|policies|registration|email|emails|card|plan|"
    r"login|username|user)\b")
_ORDER_OBJECT = re.compile(r"\b(order|orders|purchase|purchases|package|parcel|item|items|shipment|delivery|"
                           r"ordernumber|product|products)\b")
_COMMON = {
    "this", "that", "with", "have", "from", "they", "what", "when", "your", "will", "would",
    "there", "their", "about", "which", "could", "should", "been", "were", "order", "orders",
    "please", "thanks", "need", "want", "help", "just", "also", "still", "item", "items", "into",
    "know", "like", "some", "more", "here", "then", "than", "them", "make", "said", "does",
    "where", "came", "come", "able", "email", "days", "much", "long", "take", "today", "time",
    "back", "give", "tell", "sent", "send", "shop", "store", "good", "very", "sure", "wrong",
    "human", "person", "resend", "rather", "receive", "reset", "result", "retina", "remote",
    "turned", "burned", "learned", "concern", "cancer", "counsel", "stature", "statue",
}

_VOCAB = sorted({w for phrases in INTENTS.values() for p in phrases for w in p.split() if len(w) >= 4})
_VOCAB_SET = frozenset(_VOCAB)

_NUM_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_SPOKEN_DIGITS = re.compile(
    r"\b(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d)[\s,-]+){4,}"
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d)\b",
    re.IGNORECASE,
)
_SPELLED_ORD = re.compile(r"\bO\s+R\s+D\b[\s-]*((?:\d\s*){4,5}\d)", re.IGNORECASE)

ORDER_RE = re.compile(
    r"(?:\bORD(?:ER)?\s*(?:number|no\.?|num|id)?\s*[-_#:.]?\s*#?\s*(\d{3,7})\b)"  # ORD-10001, order #10001
    r"|(?:#\s?(\d{3,7})\b)"  # #10001
    r"|(?:(?<![\d$.,])\b(\d{5})\b(?![\d.,]|\s*(?:dollars?|usd|bucks)))",  # bare 10001
    re.IGNORECASE,
)
EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
AMOUNT_RE = re.compile(
    r"(?:\$\s?(\d{1,6}(?:,\d{3})*(?:\.\d{1,2})?))"
    r"|(?:\b(\d{1,6}(?:\.\d{1,2})?)\s*(?:dollars?|usd|bucks)\b)"
    r"|(?:\busd\s*(\d{1,6}(?:\.\d{1,2})?)\b)"
    r"|(?:(?<![\w-])(\d{1,4}\.\d{2})\b)",
    re.IGNORECASE,
)
_STREET = (
    r"(?:st|street|ave|avenue|rd|road|dr|drive|ln|lane|blvd|boulevard|way|ct|court|pl|place|"
    r"pkwy|parkway|hwy|highway|terrace|ter|circle|cir|sq|square)"
)
ADDRESS_RE = re.compile(
    rf"\b(\d{{1,6}}\s+(?:[A-Za-z0-9.'-]+\s+){{0,4}}{_STREET}\b\.?"
    rf"(?:\s*(?:,\s*|\s+)(?:apt|suite|unit|#)\.?\s*\w+)?"
    rf"(?:\s*,\s*[A-Za-z .'-]+(?:\s*,\s*[A-Z]{{2}})?(?:\s+\d{{5}}(?:-\d{{4}})?)?)?)",
    re.IGNORECASE,
)
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}
DATE_RE = re.compile(
    r"\b(\d{4})-(\d{2})-(\d{2})\b"
    r"|\b(january|february|march|april|may|june|july|august|september|october|november|december)"
    r"\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?\b",
    re.IGNORECASE,
)
#: canonical return reason -> trigger phrases
REASONS: dict[str, tuple[str, ...]] = {
    "damaged": ("damaged", "broken", "broke", "cracked", "smashed", "dented", "scratched", "arrived broken"),
    "defective": ("defective", "doesn't work", "does not work", "stopped working", "faulty", "not working",
                  "won't turn on", "dead on arrival", "malfunction"),
    "wrong item": ("wrong item", "wrong product", "not what i ordered", "sent the wrong", "wrong one",
                   "wrong colour", "wrong color"),
    "wrong size": ("wrong size", "doesn't fit", "does not fit", "too small", "too big", "too large", "fit"),
    "not as described": ("not as described", "different from the picture", "looks different", "misleading"),
    "changed my mind": ("changed my mind", "change of mind", "don't want it", "do not want it",
                        "don't need it", "no longer need", "no longer want", "don't like", "do not like"),
    "arrived late": ("arrived late", "too late", "came late"),
}
_REASON_RES = {r: re.compile(r"\b(" + "|".join(re.escape(p) for p in ps) + r")\b") for r, ps in REASONS.items()}
_FRUSTRATION: dict[str, float] = {
    "ridiculous": 2, "useless": 2, "terrible": 2, "awful": 2, "worst": 2, "hate": 2, "fed up": 2,
    "sick of": 2, "unacceptable": 2, "incompetent": 2, "stupid": 2, "waste of time": 2, "furious": 2,
    "frustrated": 2, "frustrating": 2, "angry": 2, "pathetic": 2, "joke": 1, "annoyed": 1.5,
    "annoying": 1.5, "fix this now": 2, "what the hell": 2, "wtf": 2, "seriously": 1, "ugh": 1,
    "again?": 1, "not helping": 1.5, "not helpful": 1.5, "doesn t help": 1.5, "pointless": 2,
    "disappointed": 1.5, "i give up": 2, "screw": 2, "already told you": 1.5, "taking forever": 1.5,
    "come on": 1, "for the last time": 2, "how many times": 2, "fed up with": 2, "sick and tired": 2,
}


@dataclass
class Entities:
    """What one message (or clause) mentions."""

    order_ids: list[str] = field(default_factory=list)  # normalised ORD-xxxxx
    bad_order_ids: list[str] = field(default_factory=list)  # looked like ids, wrong digit count
    amounts: list[float] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)
    address: str | None = None
    reason: str | None = None
    full_amount: bool = False  # "a full refund", "all my money back"

    def merge(self, other: Entities) -> None:
        for name in ("order_ids", "bad_order_ids", "amounts", "emails", "dates"):
            getattr(self, name).extend(x for x in getattr(other, name) if x not in getattr(self, name))
        self.address = self.address or other.address
        self.reason = self.reason or other.reason
        self.full_amount = self.full_amount or other.full_amount


@dataclass
class Clause:
    text: str
    intent: str | None  # a task/conversational intent, or "clarify" (two routes too close to call)
    scores: dict[str, float]
    entities: Entities
    prediction: RoutePrediction | None = None  # the learned router's view of this clause
    label: str | None = None  # the router label behind ``intent`` (e.g. check_cancellation_fee)
    options: tuple[str, ...] = ()  # for "clarify": the router labels of the two candidate routes


@dataclass
class Analysis:
    """The NLU result for one user message."""

    text: str  # normalised text the analysis ran on
    intents: list[str]  # task/conversational intents in the order they were mentioned
    scores: dict[str, float]
    entities: Entities
    clauses: list[Clause]
    frustration: float
    prediction: RoutePrediction | None = None  # the router on the whole message

    @property
    def top(self) -> str | None:
        return self.intents[0] if self.intents else None

    def has(self, intent: str) -> bool:
        return intent in self.intents or self.scores.get(intent, 0) > 0

    @property
    def task_intents(self) -> list[str]:
        return [i for i in self.intents if i in TASK_INTENTS]


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_NUMBER_WORD = "|".join([*_UNITS, *_TENS, "hundred", "and"])
_SPOKEN_AMOUNT = re.compile(rf"\b((?:(?:{_NUMBER_WORD})[\s-]+)+)(dollars?|bucks)\b", re.IGNORECASE)


def _words_to_number(words: str) -> int | None:
    total, current = 0, 0
    for w in re.split(r"[\s-]+", words.strip().lower()):
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w != "and":
            return None
    total += current
    return total if total > 0 else None


def normalize_spoken(text: str) -> str:
    """Turn voice-style ids and amounts into digits: "O R D 1 0 0 0 1", "one zero zero
    zero one", "twenty five dollars"."""
    text = _SPELLED_ORD.sub(lambda m: "ORD-" + re.sub(r"\s", "", m.group(1)), text)

    def amount(m: re.Match[str]) -> str:
        value = _words_to_number(m.group(1))
        return f"{value} {m.group(2)}" if value is not None else m.group(0)

    text = _SPOKEN_AMOUNT.sub(amount, text)

    def digits(m: re.Match[str]) -> str:
        parts = re.split(r"[\s,-]+", m.group(0).strip())
        return "".join(_NUM_WORDS.get(p.lower(), p) for p in parts)

    return _SPOKEN_DIGITS.sub(digits, text)


_ENTITY_MASKS = (
    (EMAIL_RE, " emailaddress "),
    (AMOUNT_RE, " moneyamount "),
    (ORDER_RE, " ordernumber "),
)


def router_text(text: str) -> str:
    """The text the learned router sees (in training and at run time): voice-style ids and
    amounts read as digits, emails, amounts and order ids replaced by one placeholder word
    each (the router learns that a request names an order, not which one), lower case."""
    text = normalize_spoken(text)
    for rx, word in _ENTITY_MASKS:
        text = rx.sub(word, text)
    return " ".join(text.lower().split())


def _flat(text: str) -> str:
    """Lower-case, accents off ("dónde" -> "donde"), apostrophes and punctuation to spaces
    (so "where's" -> "where s")."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return " " + re.sub(r"[^a-z0-9$@.?]+", " ", text).replace(".", " ").replace("?", " ? ") + " "


@functools.lru_cache(maxsize=8)
def _known_by_letter(known: frozenset[str]) -> dict[str, tuple[str, ...]]:
    by: dict[str, list[str]] = {}
    for word in known:
        by.setdefault(word[0], []).append(word)
    return {k: tuple(sorted(v)) for k, v in by.items()}


def _as_close(w: str, score: float, known: frozenset[str]) -> bool:
    """An ordinary word customers use (a dictionary word seen in the training texts) is at
    least as close to ``w`` as ``score``."""
    for word in _known_by_letter(known).get(w[0], ()):
        if abs(len(word) - len(w)) <= 2 and word not in _VOCAB_SET:
            matcher = difflib.SequenceMatcher(None, w, word)
            if matcher.real_quick_ratio() >= score and matcher.quick_ratio() >= score and matcher.ratio() >= score:
                return True
    return False


@functools.lru_cache(maxsize=4096)
def _repair_word(w: str, router: Router) -> str:
    """A misspelt word -> the closest phrase word. A correctly spelled word is never changed
    (the router's word list: English words known to a dictionary, see train_router.py), and
    neither is a typo that an ordinary word explains as well ("abuot": "about" as much as
    "abort"): a typo is never read as an order action on a guess.

    Memoised on the word and the router that judged it: the answer depends on nothing else,
    so the memo is process-wide, and a run with another router (``use_router``) never meets
    repairs made with this one's word list."""
    known = router.known_words
    if len(w) >= 4 and w.isalpha() and w not in _COMMON and w not in _VOCAB_SET and w not in known:
        match = difflib.get_close_matches(w, _VOCAB, n=1, cutoff=0.8)
        if not match:
            return w
        score = difflib.SequenceMatcher(None, w, match[0]).ratio()
        return w if _as_close(w, score, known & router.seen_words) else match[0]
    return w


def _repair(flat: str) -> str:
    router = load_router()
    return " " + " ".join(_repair_word(w, router) for w in flat.split()) + " "


def _score(flat: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    for intent, phrases in INTENTS.items():
        total = 0.0
        for phrase, weight in phrases.items():
            if f" {phrase} " in flat:
                total += weight
        if total:
            scores[intent] = total
    # "return" inside a refund request ("refund for the returned item") is the refund.
    if "refund" in scores and "return" in scores and " refund " in flat and " return " not in flat:
        scores.pop("return")
    # "address" alone only counts when something is being changed.
    if scores.get("change_address", 0) <= 2 and not re.search(r"\b(change|update|new|wrong|different|moved|ship|send|deliver)", flat):
        scores.pop("change_address", None)
    return scores


def _parse_amount(raw: str) -> float:
    return round(float(raw.replace(",", "")), 2)


def extract_entities(text: str) -> Entities:
    """Entities of one text. Order ids are normalised to ``ORD-`` + 5 digits."""
    ents = Entities()
    text = normalize_spoken(text)
    ents.emails = [e.lower() for e in EMAIL_RE.findall(text)]
    scrubbed = EMAIL_RE.sub(" ", text)
    for m in AMOUNT_RE.finditer(scrubbed):
        raw = next(g for g in m.groups() if g)
        value = _parse_amount(raw)
        if value not in ents.amounts:
            ents.amounts.append(value)
    no_money = AMOUNT_RE.sub(" ", scrubbed)
    # Find the address with explicit order ids masked, then drop it before looking for
    # bare 5-digit ids (so a ZIP code is never taken for an order id).
    explicit = re.compile(r"\bORD(?:ER)?\s*(?:number|no\.?|num|id)?\s*[-_#:.]?\s*#?\s*\d{3,7}\b|#\s?\d{3,7}\b",
                          re.IGNORECASE)
    addr = ADDRESS_RE.search(explicit.sub(lambda m: "~" * len(m.group(0)), no_money))
    if addr:
        ents.address = addr.group(1).strip().rstrip(".")
        no_money = no_money[: addr.start(1)] + " " + no_money[addr.end(1):]
    for m in ORDER_RE.finditer(no_money):
        digits = next(g for g in m.groups() if g)
        if len(digits) == 5:
            oid = f"ORD-{digits}"
            if oid not in ents.order_ids:
                ents.order_ids.append(oid)
        elif m.group(1) or m.group(2):
            bad = f"ORD-{digits}"
            if bad not in ents.bad_order_ids:
                ents.bad_order_ids.append(bad)
    for m in DATE_RE.finditer(text):
        try:
            if m.group(1):
                ents.dates.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            else:
                ents.dates.append(date(int(m.group(6) or 2026), _MONTHS[m.group(4).lower()], int(m.group(5))))
        except ValueError:
            pass
    low = text.lower().replace("’", "'")
    for reason, rx in _REASON_RES.items():
        if rx.search(low):
            ents.reason = reason
            break
    ents.full_amount = bool(re.search(r"\b(full|entire|whole|all (of )?(my|the) money|everything)\b", low))
    return ents


_SPLIT = re.compile(
    r"(?:[.;!?]\s+(?:and\s+)?(?:also|plus|then|oh and|another thing|one more thing|and)\b)"
    r"|(?:,?\s+and\s+(?:also|then)\b)|(?:,\s*also\b)|(?:;\s+)|(?:\s+plus\s+)"
    r"|(?:[.!?]\s+(?=(?:i|can|could|please|also|and|how|what|where|when|do|my)\b))"
    r"|(?:,?\s+and\s+(?=(?:i|can|could|please|cancel|return|refund|track|change|update|where|what|when|how|tell|check)\b))",
    re.IGNORECASE,
)


@dataclass
class _Decision:
    intent: str | None
    scores: dict[str, float]
    prediction: RoutePrediction | None = None
    label: str | None = None
    options: tuple[str, ...] = ()


def _rules(text: str) -> tuple[str | None, dict[str, float]]:
    """The phrase rules: conversational acts, and the fallback when the router sees no request."""
    flat = _repair(_flat(normalize_spoken(text)))
    scores = _score(flat)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return (ranked[0][0] if ranked else None), scores


def _best_label(prediction: RoutePrediction, route: str) -> str:
    routes = load_router().routes
    return max((lbl for lbl in prediction.label_probabilities if routes[lbl] == route),
               key=lambda lbl: prediction.label_probabilities[lbl])


def route_intent(route: str, label: str, text: str = "") -> str:
    """The dialog intent for a router route and label; an order change whose object is not an
    order ("cancel my subscription") becomes ``info``, whatever the verb."""
    if route == "handoff":
        return {"complaint": "complaint", "payment_issue": "payment_issue"}.get(label, "human")
    intent = ROUTE_INTENTS[route]
    if intent in WRITE_INTENTS and _other_object(text):
        return "info"
    return intent


def _other_object(text: str) -> bool:
    """The request names something other than an order as the object of the action."""
    low = router_text(text)
    return bool(_OTHER_OBJECT.search(low)) and not _ORDER_OBJECT.search(low)


def _without_tasks(scores: dict[str, float]) -> dict[str, float]:
    """Drop the phrase rules' task and handoff guesses (the router decided); keep the acts."""
    return {k: v for k, v in scores.items() if k not in TASK_INTENTS and k not in ("human", "complaint")}


def phrase_scores(text: str) -> dict[str, float]:
    """What the phrase rules see in ``text``: {intent: strength}."""
    return _rules(text)[1]


def route_action(text: str, prediction: RoutePrediction, scores: dict[str, float]) -> tuple[str, str, str]:
    """The router's best route (not ``none``) as (label, dialog intent, kind of action), where
    the kind is what ``Thresholds.decide`` weighs: ``write`` (an order change on an order),
    ``handoff`` (one the phrase rules did not see), ``unseen`` (such a handoff in words the
    router has mostly not seen: "I'm a travel agent") or ``other``."""
    router = load_router()
    label = _best_label(prediction, prediction.route)
    intent = route_intent(prediction.route, label, text)
    if intent in WRITE_INTENTS:
        return label, intent, "write"
    if intent in ("human", "complaint", "payment_issue") and scores.get(intent, 0.0) < 2:
        if router.coverage(router_text(text)) < router.thresholds.handoff_coverage:
            return label, intent, "unseen"
        return label, intent, "handoff"
    return label, intent, "other"


def _classify(text: str) -> _Decision:
    rule_intent, scores = _rules(text)
    if detect_language([text]) != "en":
        return _Decision(rule_intent, scores)  # the router learned English; the phrases know es/de/fr
    router = load_router()
    prediction = router.predict(router_text(text))
    if prediction.route == "none":
        # Not a request the router knows (a yes, an id, a greeting): the phrase rules decide.
        return _Decision(rule_intent, scores, prediction)
    label, intent, kind = route_action(text, prediction, scores)
    step = router.thresholds.decide(prediction, kind)
    if step == "clarify" and rule_intent == "human" and scores.get("human", 0.0) >= 2 \
            and "handoff" in (prediction.route, prediction.route_probabilities[1][0]):
        # An explicit request for a person ("a human about ORD-10001, now") is never turned
        # into a question when the router itself is torn between a handoff and something else.
        return _Decision(rule_intent, scores, prediction)
    if step == "clarify":
        options = (label, _best_label(prediction, prediction.route_probabilities[1][0]))
        return _Decision("clarify", _without_tasks(scores), prediction, label, options)
    if step == "rules":
        return _Decision(rule_intent, scores, prediction)
    rule_strength = scores.get(intent, 0.0)
    scores = _without_tasks(scores)
    if intent in ("human", "complaint", "payment_issue"):
        # handoff.detect_trigger hands over at once; an angry message the router reads as
        # "get me a human" is left to the frustration trigger (it apologises first).
        if rule_strength or frustration_score(text) < 2:
            scores[intent] = max(rule_strength, 3.0)
        return _Decision(intent, scores, prediction, label)
    # Strength: what the phrase rules saw, else the router's confidence kept under 3, so that
    # an answer to the agent's own question ("it arrived broken") is not taken for a new
    # request (see dialog.reply).
    scores[intent] = max(rule_strength, 2.9 * prediction.confidence)
    return _Decision(intent, scores, prediction, label)


def frustration_score(text: str) -> float:
    flat = _flat(text)
    score = sum(w for p, w in _FRUSTRATION.items() if f" {p.rstrip('?')} " in flat)
    if "!!!" in text or "?!" in text:
        score += 1
    caps = [w for w in re.findall(r"\b[A-Z]{3,}\b", text) if w not in {"ORD", "USD", "UPS", "DHL", "USPS", "FAQ"}]
    if len(caps) >= 3:
        score += 1.5
    return score


def analyze(text: str) -> Analysis:
    """Classify a whole message: clauses, ordered intents, merged entities, frustration."""
    norm = normalize_spoken(text.strip())
    pieces = [p.strip(" ,.") for p in _SPLIT.split(norm) if p and p.strip(" ,.")]
    clauses: list[Clause] = []
    for piece in pieces or [norm]:
        decision = _classify(piece)
        intent, scores = decision.intent, decision.scores
        ents = extract_entities(piece)
        prev_clause = clauses[-1] if clauses else None
        same = prev_clause is not None and intent == prev_clause.intent and intent in TASK_INTENTS \
            and not (ents.order_ids and prev_clause.entities.order_ids)
        if (intent in TASK_INTENTS or intent == "clarify" or not clauses) and not same:
            clauses.append(Clause(piece, intent, scores, ents, decision.prediction, decision.label, decision.options))
        else:
            # A clause without its own task ("it's ORD-10002"), or the same request again ("I
            # moved! Please send ORD-10038 to ..."), belongs to the previous one.
            prev = clauses[-1]
            prev.text += " " + piece
            prev.entities.merge(ents)
            for k, v in scores.items():
                prev.scores[k] = prev.scores.get(k, 0) + v
            if prev.intent is None:
                prev.intent, prev.label, prev.options = intent, decision.label, decision.options
                prev.prediction = decision.prediction
    whole = _classify(norm) if len(clauses) > 1 else None
    whole_scores = whole.scores if whole else dict(clauses[0].scores)
    entities = extract_entities(norm)
    intents: list[str] = []
    for c in clauses:
        if c.intent and c.intent not in intents:
            intents.append(c.intent)
    for intent, _s in sorted(whole_scores.items(), key=lambda kv: -kv[1]):
        if intent not in intents and intent in ("human", "complaint", "payment_issue"):
            intents.append(intent)
    scores = dict(whole_scores)
    for c in clauses:
        for k, v in c.scores.items():
            scores[k] = max(scores.get(k, 0), v)
    prediction = whole.prediction if whole else clauses[0].prediction
    if len(clauses) > 1 or len(pieces) > 1:
        for c in clauses:
            # "I don't want my profile and I want to cancel it": the object is in another clause.
            if c.intent in WRITE_INTENTS and _other_object(norm):
                c.intent, c.text = "info", norm
                c.label = _best_label(prediction, "info_or_decline") if prediction else None
        infos = [c for c in clauses if c.intent == "info"]
        clauses = [c for c in clauses if c.intent != "info" or c is infos[0]]  # one request, asked once
        intents = list(dict.fromkeys("info" if i in WRITE_INTENTS and _other_object(norm) else i for i in intents))
    return Analysis(norm, intents, scores, entities, clauses, frustration_score(text), prediction)
