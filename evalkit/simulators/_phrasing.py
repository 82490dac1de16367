"""Templates and typos for the offline persona: what a user says, phrased many ways.

Templates hold ``{fact}`` placeholders; fact values are inserted verbatim after typos are
applied to the template words, so an order id or an email is never misspelt.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence

__all__ = [
    "OPENINGS",
    "PUSH_GOAL",
    "ASK_HUMAN",
    "TEMPLATES",
    "DECORATIONS",
    "EXTRA_DETAIL",
    "DEFAULT_ANSWERS",
    "Phraser",
    "add_typos",
    "fact_text",
    "lower_first",
]

OPENINGS: dict[str, list[str]] = {
    "track_order": [
        "Where is my order?",
        "I'd like to know the status of my order.",
        "My order still hasn't arrived. Can you check on it?",
        "Can you track my order for me?",
        "I'm waiting for a package, when will it get here?",
        "what's the status of my order",
    ],
    "return": [
        "I'd like to return something I bought.",
        "I want to return an item.",
        "How do I send back an item from my order?",
        "I need to return a product, it's not what I expected.",
        "Can I return my order?",
    ],
    "refund": [
        "I want a refund for my order.",
        "I'd like to get my money back for an order.",
        "Can I get a refund please?",
        "I was charged for an order and I want a refund.",
        "I'm asking for a refund on a purchase.",
    ],
    "cancel": [
        "I need to cancel my order.",
        "Please cancel my order.",
        "Can I still cancel an order I placed?",
        "I changed my mind, I want to cancel my order.",
        "I'd like to cancel a recent order.",
    ],
    "change_address": [
        "I need to change the delivery address on my order.",
        "Can I update the shipping address for my order?",
        "I moved, can you send my order to a different address?",
        "The address on my order is wrong, can you change it?",
    ],
    "faq": [
        "I have a question: {question}",
        "{question}",
        "Quick question. {question}",
        "Could you tell me something? {question}",
    ],
    "human": [
        "I'd like to speak to a human, please.",
        "Can I talk to a real person?",
        "Please connect me with a human agent.",
        "I want to talk to someone from customer service.",
    ],
    "other": [
        "I need some help.",
        "Can you help me?",
        "I have a problem and need some help.",
    ],
}
# FAQ openings without a `question` fact to ask.
OPENINGS["faq_no_question"] = [
    "I have a question.",
    "Quick question about your store.",
    "Can you help me with a question?",
]

PUSH_GOAL: dict[str, list[str]] = {
    "track_order": [
        "So where is my order?",
        "Can you just tell me when my order will arrive?",
        "I still need to know where my order is.",
    ],
    "return": ["So can I return it?", "How do I return it then?", "I still want to return the item."],
    "refund": ["So will I get my refund?", "I still want my money back.", "Can you process the refund?"],
    "cancel": ["Can you cancel it?", "So is my order cancelled?", "I still need the order cancelled."],
    "change_address": [
        "Can you change the address?",
        "So will you update the address?",
        "I still need the delivery address changed.",
    ],
    "faq": [
        "Can you answer my question? {question}",
        "That doesn't answer my question: {question}",
        "{question}",
    ],
    "faq_no_question": ["Can you answer my question?", "I still have my question."],
    "human": [
        "I just want to talk to a human.",
        "Please put me through to a person.",
        "Can you transfer me to a human agent?",
    ],
    "other": ["I still need help with this.", "Can you help me with that?", "So can you help me or not?"],
}

ASK_HUMAN = [
    "Can I speak to a human, please?",
    "I'd like to talk to a real person.",
    "Please transfer me to a human agent.",
    "Can you get me someone from your support team?",
    "I want to talk to a human.",
]

TEMPLATES: dict[str, list[str]] = {
    # One fact: {label} is its human name, {value} the fact itself.
    "answer": [
        "My {label} is {value}.",
        "It's {value}.",
        "Sure, it's {value}.",
        "{Label}: {value}",
        "{value}",
    ],
    "answer_reason": ["{value}.", "The reason is: {value}.", "Well, {value}."],
    "already_told": ["I already told you.", "Like I said before:", "Again:", "I said that already."],
    "dont_know": [
        "I don't know my {label}, sorry.",
        "I don't have my {label} with me.",
        "Sorry, I'm not sure what my {label} is.",
        "I don't remember the {label}.",
    ],
    "confirm_yes": ["Yes, please.", "Yes, go ahead.", "Yes.", "That's right.", "Yes, please do that."],
    "confirm_no": ["No, please don't.", "No, I don't want that.", "No."],
    "thanks": [
        "Thank you, that's all I needed!",
        "Great, thanks for your help.",
        "Perfect, thanks!",
        "Thanks, that's everything.",
    ],
    "nothing_else": [
        "No, that's all. Thanks!",
        "Nope, that's everything, thank you.",
        "No thanks, I'm all set.",
    ],
    "rephrase": ["Sorry, let me rephrase.", "What I mean is:", "Let me say it differently.", "I mean,"],
    "accept_handoff": [
        "Yes, please connect me with a human.",
        "Yes, I'd like to talk to a person, please.",
        "Please do, put me through to someone.",
    ],
    "decline_handoff": [
        "No, I don't want to be transferred. Can't you help me?",
        "I'd rather you sorted it out yourself.",
        "No need to transfer me, I just need this done.",
    ],
    "complain_repeat": [
        "You already said that.",
        "You're repeating yourself.",
        "That's the same answer as before.",
    ],
    "complain_fail": ["That doesn't help me.", "This isn't getting anywhere.", "That's not good enough."],
    "not_done": [
        "Actually, my problem isn't solved yet.",
        "Well, you haven't helped me yet.",
        "Not really, that's not done.",
    ],
    "give_up": ["Forget it, I'll try somewhere else.", "Never mind, this is pointless.", "I give up. Bye."],
}

# What a user says when asked for something it has no fact for but an obvious answer to.
DEFAULT_ANSWERS: dict[str, list[str]] = {
    "amount": ["The full amount, please.", "All of it.", "The whole order total, please."],
    "item": ["The whole order.", "Everything in the order.", "All of the items."],
    "reason": ["I just don't want it anymore.", "I changed my mind.", "I'd rather not say."],
}

# Per tone: (prefixes for the opening, prefixes later on, suffixes); "" means none.
DECORATIONS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "polite": (
        ["Hi,", "Hello,", "Hi there!", "Good morning,"],
        ["", "Okay,", "Alright,"],
        ["Thanks.", "Thank you!", ""],
    ),
    "impatient": (
        ["Look,", "Quickly please:", ""],
        ["Look,", "Come on,", ""],
        ["I'm in a hurry.", "Can we speed this up?", ""],
    ),
    "angry": (
        ["This is ridiculous.", "I'm really annoyed.", ""],
        ["Seriously?", "Unbelievable.", ""],
        ["This is unacceptable!", "Fix this now!", ""],
    ),
    "confused": (
        ["Um,", "Sorry, I'm not very good with this,", "I'm not sure how this works, but"],
        ["Um,", "Uh, okay,", ""],
        ["Is that right?", "I think?", ""],
    ),
    "terse": ([""], [""], [""]),
}

EXTRA_DETAIL = [
    "I've been waiting for a while now.",
    "It's really important to me.",
    "I hope you can sort this out quickly.",
    "I already tried to do it on the website but couldn't.",
]

_KEYBOARD = {
    "a": "qwsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
_WORD = re.compile(r"[A-Za-z]{4,}")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)  # keep the first and last letters: still readable
    op = rng.choice(("swap", "drop", "double", "neighbour"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    near = _KEYBOARD.get(word[i].lower())
    return word[:i] + (rng.choice(near) if near else word[i]) + word[i + 1 :]


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """Misspell each word of four letters or more with probability ``rate``."""
    if rate <= 0:
        return text
    return _WORD.sub(lambda m: _typo(m.group(0), rng) if rng.random() < rate else m.group(0), text)


def fact_text(value: object) -> str:
    """A fact value as the user would type it."""
    if isinstance(value, list):
        return ", ".join(fact_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fact_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class Phraser:
    """Picks templates (never the same one twice in a row for an act), fills in facts,
    decorates by tone and verbosity and adds typos outside fact values."""

    def __init__(self, rng: random.Random, *, typo_rate: float, verbosity: str) -> None:
        self.rng = rng
        self.typo_rate = typo_rate
        self.verbosity = verbosity
        self._last: dict[str, str] = {}

    def pick(self, key: str, options: Sequence[str], avoid: str | None = None) -> str:
        """A template for ``key``, different from the last one used (and from ``avoid``)."""
        pool = [o for o in options if o != self._last.get(key) and o != avoid] or list(options)
        choice = self.rng.choice(pool)
        self._last[key] = choice
        return choice

    def fill(self, template: str, values: Mapping[str, str]) -> str:
        """Typos go into the template's words; values are inserted verbatim."""
        out = []
        for literal, field, _, _ in string.Formatter().parse(template):
            out.append(add_typos(literal, self.typo_rate, self.rng))
            if field is not None:
                out.append(values.get(field, ""))
        text = "".join(out)
        return re.sub(r"([.!?])\.+", r"\1", text).strip()

    def decorate(self, text: str, tone: str, *, opening: bool = False, fact_first: bool = False) -> str:
        """Tone prefixes/suffixes: always considered on the opening, sometimes later; never
        at low verbosity, more often at high verbosity. ``fact_first``: the text starts with a
        fact value, which must keep its case."""
        if tone == "terse":
            text = text.rstrip(".!")
            return text if fact_first else lower_first(text)
        if self.verbosity == "low":
            return text
        chance = {"normal": 0.35, "high": 0.7}.get(self.verbosity, 0.35)
        openers, later, suffixes = DECORATIONS.get(tone, DECORATIONS["polite"])
        prefixes = openers if opening else later
        if (opening or self.rng.random() < chance) and not fact_first:
            pre = add_typos(self.rng.choice(prefixes), self.typo_rate, self.rng)
            if pre:
                text = f"{pre} {lower_first(text) if pre.endswith(',') else text}"
        if self.rng.random() < chance:
            suf = add_typos(self.rng.choice(suffixes), self.typo_rate, self.rng)
            if suf:
                text = f"{text} {suf}"
        if opening and self.verbosity == "high":
            text = f"{text} {add_typos(self.rng.choice(EXTRA_DETAIL), self.typo_rate, self.rng)}"
        return text


def lower_first(text: str) -> str:
    """Lower-case an ordinary first word ("Where" -> "where"), never "I'd" or an id."""
    if re.match(r"[A-Z][a-z]", text) and not re.match(r"I\b", text):
        return text[0].lower() + text[1:]
    return text
