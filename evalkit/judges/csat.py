"""The offline CSAT proxy: what the user would likely answer in a post-chat survey (1-5).

No model, no network, deterministic: a handful of principled signals read from the
transcript, each turned into a signed contribution (in survey points) around a neutral
baseline, then clipped to 1..5. ``csat_signals`` returns every component so a report can
say *why* a conversation scored what it did.

The signals, in order of weight:

* the user's sentiment over the conversation (a small lexicon with negation, intensifiers,
  CAPS and "!" emphasis), weighted towards the last user turns, because a survey answer
  is dominated by how the conversation ended;
* explicit gratitude and explicit complaints, and the user correcting the agent ("no,
  I said ...");
* the agent failing: "sorry, I can't / no results / I don't understand" replies, errors;
  and the opposite, the agent confirming it got something done ("booked", "refunded",
  "your reference number is ...");
* the agent's manner: rude, dismissive or blaming replies ("figure it out yourself", "not
  my problem", "you should have read ...", "as I already told you"), and refusing to help
  with no way forward offered (no alternative, question, link or handoff in the reply);
* effort: user turns beyond a short conversation, user repeating themselves, agent
  looping (near-identical replies);
* how it ended: escalated, abandoned, cut off, failed (for recorded conversations, whose
  outcome was not observed, only an outcome the importer set explicitly counts);
* slow replies (agent turns slower than ``SLOW_REPLY_MS``).

The weights are few and were set by hand, then checked against human dialogue-level
ratings (see ``docs/csat.md`` and ``benchmarks/csat_uss.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from evalkit.core.transcript import AgentTurn, Outcome, StopReason, Transcript, UserTurn

__all__ = [
    "SLOW_REPLY_MS",
    "SATISFIED_MIN",
    "csat_proxy",
    "csat_signals",
    "sentiment",
]

# A reply slower than this is "slow" for the user (the same default as slow_turn_rate).
SLOW_REPLY_MS = 3000.0
# A proxy score at or above this counts as a satisfied answer (4 or 5 on the survey).
SATISFIED_MIN = 3.5
# Weights, in survey points. Set by hand from what each signal means, then checked on
# human-rated dialogues by fitting on one corpus and testing on the other (docs/csat.md).
W_SENTIMENT = 4.0  # times the shrunk, recency-weighted user sentiment in [-1, 1]
SHRINK_TURNS = 3.0
W_COMPLAINT = -0.5  # per explicit complaint (up to 3)
W_ALTERNATIVE = -0.8  # times the share of user replies asking for something else
W_CORRECTION = -0.5  # times the share of user replies correcting the agent
W_REPEAT = -0.3  # per user message repeating an earlier one (up to 3)
W_AGENT_FAILURE = -0.6  # times the share of agent replies saying it cannot help
W_LOOP = -0.3  # per agent reply repeating an earlier one (up to 3)
W_ERROR = -0.4  # per agent or tool error (up to 3)
W_UNANSWERED = -0.4  # the transcript ends on a user request with no reply
W_RUDE = -1.0  # per rude, dismissive or blaming agent reply (up to 2)
W_DEAD_END = -0.5  # times the share of agent replies refusing to help with no alternative
W_CONFIRMED = 0.25  # the agent confirmed doing what was asked (booked, cancelled, ref number): 1 or 2+
W_RESOLVED = 0.6  # outcome resolved (observed by the runner, not a recording's default)
W_EFFORT = -0.3  # per doubling of user turns beyond EFFORT_FREE_TURNS
EFFORT_FREE_TURNS = 16
W_SLOW = -0.8  # times the share of slow agent replies
# The score of a conversation with no signal at all: users who say nothing either way
# tend to answer "3 - neutral" on a 5-point survey.
_BASELINE = 3.0

# --- the lexicon -------------------------------------------------------------------------
# Valence in [-1, 1]. Small on purpose: words people use about service, not a general
# sentiment dictionary. Multi-word cues are matched on the normalised text first.
_POSITIVE: dict[str, float] = {
    "great": 0.8, "perfect": 0.9, "excellent": 0.9, "awesome": 0.9, "wonderful": 0.9,
    "fantastic": 0.9, "amazing": 0.9, "good": 0.5, "nice": 0.5, "fine": 0.3, "cool": 0.4,
    "helpful": 0.8, "happy": 0.7, "glad": 0.6, "love": 0.8, "lovely": 0.7, "appreciate": 0.7,
    "appreciated": 0.7, "brilliant": 0.9, "super": 0.6, "sounds": 0.1, "works": 0.4,
    "worked": 0.4, "solved": 0.7, "resolved": 0.6, "fixed": 0.6, "easy": 0.5, "quick": 0.4,
    "fast": 0.4, "thanks": 0.6, "thank": 0.6, "thx": 0.5, "ty": 0.3, "pleased": 0.7,
    "satisfied": 0.7, "exactly": 0.5, "ideal": 0.7, "beautiful": 0.6, "correct": 0.3,
    "right": 0.1, "yes": 0.15, "yeah": 0.1, "sure": 0.15, "ok": 0.1, "okay": 0.1,
    "definitely": 0.3, "best": 0.6, "enjoy": 0.5, "fun": 0.5, "interesting": 0.3,
    "haha": 0.4, "lol": 0.3, "wow": 0.3,
}
_NEGATIVE: dict[str, float] = {
    "bad": -0.6, "terrible": -0.9, "awful": -0.9, "horrible": -0.9, "worst": -0.9,
    "useless": -0.9, "stupid": -0.8, "ridiculous": -0.8, "annoying": -0.7, "annoyed": -0.7,
    "frustrating": -0.8, "frustrated": -0.8, "angry": -0.8, "upset": -0.7, "disappointed": -0.8,
    "disappointing": -0.8, "unhappy": -0.7, "hate": -0.9, "wrong": -0.6, "incorrect": -0.5,
    "mistake": -0.5, "error": -0.4, "broken": -0.6, "problem": -0.3, "issue": -0.2,
    "unacceptable": -0.9, "waste": -0.7, "wasted": -0.7, "confused": -0.4, "confusing": -0.5,
    "unclear": -0.4, "slow": -0.4, "late": -0.3, "never": -0.3, "nobody": -0.3,
    "complaint": -0.6, "complain": -0.6, "refund": -0.1, "cancel": -0.1, "sorry": -0.1,
    "unfortunately": -0.4, "sadly": -0.4, "bother": -0.3, "hassle": -0.5, "pointless": -0.8,
    "rude": -0.8, "ugh": -0.6, "seriously": -0.3, "again": -0.2, "already": -0.2,
    "still": -0.2, "unable": -0.4, "cannot": -0.2, "can't": -0.2, "nothing": -0.2,
    "too": -0.05, "expensive": -0.3, "boring": -0.5, "not": 0.0, "no": -0.15,
    "weird": -0.4, "huh": -0.3,
}
_PHRASES: dict[str, float] = {
    "thank you": 0.6, "thanks a lot": 0.8, "thank you so much": 0.9, "thanks so much": 0.9,
    "that's all": 0.2, "that is all": 0.2, "that's it": 0.1, "you've been": 0.2,
    "you have been": 0.2, "no problem": 0.3, "no worries": 0.3, "not bad": 0.3,
    "sounds good": 0.6, "sounds great": 0.8, "works for me": 0.5, "that works": 0.5,
    "have a nice day": 0.4, "have a good day": 0.4, "have a great day": 0.5,
    "what a waste": -0.8, "not helpful": -0.8, "not what i": -0.6, "doesn't help": -0.7,
    "does not help": -0.7, "didn't help": -0.7, "did not help": -0.7, "not working": -0.6,
    "doesn't work": -0.6, "does not work": -0.6, "i said": -0.4, "i already": -0.5,
    "i told you": -0.7, "already told": -0.7, "you don't understand": -0.8,
    "you do not understand": -0.8, "real person": -0.5, "human agent": -0.4,
    "speak to a human": -0.6, "talk to a human": -0.6, "speak to someone": -0.5,
    "talk to someone": -0.5, "a manager": -0.5, "never mind": -0.5, "nevermind": -0.5,
    "forget it": -0.7, "don't bother": -0.6, "not at all": -0.3, "at all": -0.1,
    "not really": -0.3, "that's not": -0.4, "that is not": -0.4, "come on": -0.5,
    "are you kidding": -0.8,
    "doesn't make sense": -0.7,
    "does not make sense": -0.7,
    "makes no sense": -0.7,
    "what do you mean": -0.4,
    "i don't understand": -0.5,
    "i do not understand": -0.5,
    "you already said": -0.6,
    "you keep saying": -0.6,
    "check it out": 0.4,
    "look forward": 0.5,
    "good to know": 0.4, "give up": -0.6, "no thanks": 0.0, "no thank you": 0.1,
}
# Emoticons and emoji, and a few Chinese cues (customer-service chat), matched as
# substrings of the raw text because neither is split by spaces.
_SYMBOLS: dict[str, float] = {
    ":)": 0.5, ":-)": 0.5, "👍": 0.6, "🙏": 0.5, "😊": 0.6, "🙂": 0.4, "😀": 0.6,
    "😃": 0.6, "❤": 0.7, "🎉": 0.6, ":(": -0.5, ":-(": -0.5, "😡": -0.9, "😠": -0.8,
    "🤬": -0.9, "👎": -0.7, "🙁": -0.5, "☹": -0.5, "😞": -0.6, "😤": -0.7, "🙄": -0.6,
    "谢谢": 0.6, "感谢": 0.7, "多谢": 0.6, "满意": 0.7, "不错": 0.5, "很好": 0.6, "太好了": 0.8,
    "辛苦": 0.4, "解决了": 0.6, "好的": 0.2, "赞": 0.6, "棒": 0.7, "可以了": 0.3,
    "不满意": -0.8, "差评": -0.9, "投诉": -0.8, "垃圾": -0.9, "太慢": -0.6, "怎么还": -0.5,
    "为什么": -0.3, "还没": -0.4, "没收到": -0.5, "没有收到": -0.5, "生气": -0.8, "失望": -0.8,
    "无语": -0.7, "烦": -0.5, "骗": -0.8, "不行": -0.4, "不好": -0.5, "到底": -0.4, "算了": -0.6,
    "人工": -0.3, "催": -0.4,
}
_NEGATORS = frozenset(
    "not no never n't dont don't doesn't didn't isn't wasn't aren't won't can't cannot "
    "couldn't shouldn't wouldn't hardly barely neither nor without".split()
)
_INTENSIFIERS: dict[str, float] = {
    "very": 0.3, "really": 0.3, "so": 0.25, "extremely": 0.5, "super": 0.3, "totally": 0.3,
    "absolutely": 0.4, "completely": 0.4, "incredibly": 0.4, "quite": 0.1, "too": 0.2,
    "most": 0.2, "such": 0.2,
}
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SYMBOLS_BY_LENGTH = sorted(_SYMBOLS, key=len, reverse=True)
# (first word, " phrase ", valence), longest first: a phrase is only looked for when its
# first word is among the message's words (the proxy runs on every message of a run).
_PHRASE_NEEDLES = [(p.split()[0], f" {p} ", _PHRASES[p]) for p in sorted(_PHRASES, key=len, reverse=True)]
_RAW_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")

# The cue patterns below are matched against lower-cased text (csat_signals lowers each
# message once): twice as fast as re.IGNORECASE on these alternations.

# The user ending the conversation on their own terms.
_CLOSING = re.compile(
    r"\b(thank(s| you)|bye|goodbye|that'?s (all|it|everything)|that is (all|it|everything)|"
    r"that will be all|have a (nice|good|great)|i'?m (all set|done)|all set)\b|谢谢|再见|拜拜|没有了|没事了",

)
# Things users say that are about the service (not the content) and move the survey answer.
_GRATITUDE = re.compile(
    r"\b(thank(s| you)|thx|ty|appreciate|cheers|helpful|perfect|great help)\b|谢谢|感谢|多谢"
)
_COMPLAINT = re.compile(
    r"\b(useless|terrible|awful|horrible|worst|ridiculous|unacceptable|frustrat\w*|annoy\w*|"
    r"complain\w*|disappoint\w*|waste of|not helpful|doesn'?t help|didn'?t help|not what i|"
    r"i (already|just) (said|told)|i told you|you don'?t understand|forget it|never ?mind|"
    r"speak to (a|an) (human|person|agent|manager)|talk to (a|an|someone|a real)|real person|"
    r"come on|are you kidding|seriously\?)\b|投诉|差评|垃圾|算了|无语|不满意",

)
# The user turning down what was offered and asking for something else.
_ALTERNATIVE = re.compile(
    r"\b(anything else|something else|other options?|more options|any others?|another|different|"
    r"what else|try again|other (ones|suggestions|choices))\b|换一个|别的|其他的|还有吗",

)
# The user turning down or correcting what the agent said: a reply that starts with "no"
# (but not "no thanks, that's all"), or says the agent got it wrong.
_CORRECTION = re.compile(
    r"^\W*(no|nope|nah)\b(?![\s,.!]+(thanks|thank|that'?s (all|it|everything)|that is (all|it|everything)|"
    r"i'?m (good|all set|fine)|i am (good|all set|fine)|problem|worries|more|further|other|need|nothing))|"
    r"\b(that'?s|that is|it'?s|it is) (wrong|incorrect|not (right|correct|what))|\bi (meant|said)\b|"
    r"\bnot what i\b|^\W*(不是|不对)|我说的是|我是说",

)
# The agent confirming it did what was asked: the transcript's own evidence of resolution.
_CONFIRMED = re.compile(
    r"\b(successfully|(is|are) (now )?(booked|confirmed|reserved|scheduled|cancell?ed|complete|done|on (its|the) way)|"
    r"(has|have) been (booked|confirmed|reserved|scheduled|cancell?ed|processed|placed|made|completed|"
    r"issued|refunded|updated|sent|shipped|resolved)|"
    r"(booking|reservation|order|appointment|transfer|payment|refund|request) (was|is) (successful|confirmed|complete)|"
    r"(reference|confirmation|tracking) (number|code)|i (have|'ve) (booked|reserved|confirmed|scheduled|made|"
    r"cancell?ed|issued|refunded|updated|sent|processed|started|created|submitted|arranged|placed|changed))\b|"
    r"已(经)?(为|帮|给)您|已(经)?(处理|提交|退款|发货|取消|修改|安排|登记)|办理成功|操作成功",

)
# The agent failing to help: no results, cannot do it, did not understand, an error.
_AGENT_FAILURE = re.compile(
    r"\b(sorry|unfortunately|apologi[sz]e|i'?m afraid|regret)\b|"
    r"\b(can(no|')t|could(n'?t| not)|unable to|not able to|was not able|wasn'?t able|"
    r"don'?t (have|see|understand)|do not (have|see|understand)|did not (find|understand)|"
    r"didn'?t (find|understand)|no (results?|matches|availability|records?|options?|such)|"
    r"(is|are) not available|isn'?t available|aren'?t available|(fully|completely) booked|"
    r"not (find|found)|nothing (found|available|matches)|no [a-z]+ (match|matches|matching)|"
    r"(there|it) (is|are) no\b|doesn'?t (exist|match)|failed|an error)|"
    r"抱歉|不好意思|对不起|无法|没有办法|没办法|查不到|不能",

)
# The agent being rude, dismissive or blaming: what a customer remembers of a conversation
# whatever else happened. Directed at the customer ("you", "yourself", "your fault"), so an
# agent saying "let me figure it out" or "no problem" never counts.
_RUDE = re.compile(
    r"\b((it'?s|that'?s|it is|that is) (your|you're) (own )?(problem|fault|issue|mistake)|"
    r"your (own )?(fault|mistake)|that'?s on you|"
    r"not (my|our) (problem|job|concern|department|fault|responsibility)|"
    r"(i|we) (really )?(don'?t|do not|couldn'?t|could not) care|(deal|live) with it|"
    r"calm down|stop (complaining|whining|bothering|asking|wasting)|go away|leave me alone|shut up|get lost|"
    r"what (more |else )?do you (want|expect) from (me|us)|that'?s (just )?how it is|too bad|"
    r"how many times|(as|like) i (already )?(said|told you|explained)|i (already|just) (told|explained to) you|"
    r"read the (manual|faq|instructions|website|docs|documentation)|"
    r"you (should|could) (have|'ve) (read|checked|known|listened|looked)|"
    r"you (didn'?t|did not|failed to|never) (read|check|follow|listen|pay attention)|"
    r"stupid|idiot\w*|dumb|moron\w*|pathetic|incompetent|clueless)\b|"
    r"^\W*(whatever|so what)\W*$"
)
# Sending the customer off to help themselves: rude when nothing else is offered ("Figure it
# out yourself."), self-service advice when the reply says where or how ("you can do it
# yourself in the app, or I can do it for you").
_YOURSELF = re.compile(
    r"\b((figure|work|sort) (it|that|this) out|(do|look|find|search|check) (it|that|this)( up)?)"
    r"( all)? (yourself|on your own|for yourself)\b|"
    r"\byou('ll| will)? (have|need) to (figure|work|sort) (it|that|this) out\b|\bgoogle it\b"
)
# The agent refusing to help (itself, not reporting a fact such as "pets are not allowed").
_REFUSAL = re.compile(
    r"\b((i|we) (really )?(can(no|')t|won'?t|will not|am unable to|are unable to|am not able to|are not able to|"
    r"refuse to|am not going to|are not going to|do not|don'?t) (help|assist|do (that|this|anything|it)|deal with|"
    r"handle|support)|nothing (more )?(i|we) can do|not (something|anything) (i|we) (can|will) (help|do)|no way)\b"
)
# ... and offering a way forward in the same reply: an alternative, a question, a link, a person.
_WAY_FORWARD = re.compile(
    r"\?|\b(instead|however|alternatively|but|you (can|could|may|might)|(i|we) (can|could|will|would)(?!'|n'?t| not)|"
    r"(i|we)'ll|would|let me|try|how about|what about|options?|other|another|contact|call|visit|email|"
    r"transfer\w*|connect\w*|escalat\w*|human|colleague|team|here'?s|here is|link|https?://)\b"
)


@dataclass(frozen=True)
class _TurnSentiment:
    score: float  # in [-1, 1]
    n_cues: int


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def sentiment(text: str) -> float:
    """Valence of one utterance in [-1, 1] (0 when it carries no sentiment cue).

    Lexicon words and phrases, flipped and damped by a preceding negator (within three
    words), scaled up by intensifiers, words in CAPS and exclamation marks.
    """
    return _sentiment(text).score


def _sentiment(text: str, tokens: list[str] | None = None) -> _TurnSentiment:
    """``tokens``: ``_tokens(text)`` when the caller has it already."""
    if not text.strip():
        return _TurnSentiment(0.0, 0)
    total = 0.0
    n = 0
    raw = text.lower()
    # Symbols and CJK cues first, longest first, blanked once counted ("不满意" before "满意").
    for cue in _SYMBOLS_BY_LENGTH if (":" in raw or not raw.isascii()) else ():
        while cue in raw:
            total += _SYMBOLS[cue]
            n += 1
            raw = raw.replace(cue, " ", 1)
    tokens = _tokens(text) if tokens is None else tokens
    low = " " + " ".join(tokens) + " "
    # Phrases first; blank them out so their words are not counted twice. Blanking only
    # removes words, so a phrase whose first word is not in the message never matches.
    present = set(tokens)
    for first, needle, value in _PHRASE_NEEDLES:
        if first not in present:
            continue
        while needle in low:
            total += value
            n += 1
            low = low.replace(needle, " _ ", 1)
    caps: set[str] | None = None  # words in CAPS, found when a cue word needs them
    words = low.split()
    for i, w in enumerate(words):
        val = _POSITIVE.get(w, _NEGATIVE.get(w))
        if not val:
            continue
        boost = 1.0
        if i > 0 and words[i - 1] in _INTENSIFIERS:
            boost += _INTENSIFIERS[words[i - 1]]
        if caps is None:
            caps = {x.lower() for x in _RAW_WORD.findall(text.replace("’", "'")) if len(x) >= 3 and x.isupper()}
        if w in caps:
            boost += 0.3
        window = words[max(0, i - 3) : i]
        if any(x in _NEGATORS or x.endswith("n't") for x in window):
            # "not good" is mildly negative; "not bad" mildly positive (VADER's damping).
            val = -0.6 * val
        total += val * boost
        n += 1
    if n == 0:
        return _TurnSentiment(0.0, 0)
    bangs = min(text.count("!") + text.count("！"), 3)
    if bangs:
        total *= 1.0 + 0.1 * bangs
    # Squash the sum into (-1, 1) so long messages do not dominate.
    return _TurnSentiment(total / math.sqrt(total * total + 1.5), n)


_CJK = re.compile(r"[\u3400-\u9fff]+")


def _content_words(text: str, tokens: list[str] | None = None) -> frozenset[str]:
    """Words of 3+ letters; for Chinese (no spaces) character pairs stand in for words."""
    words = {w for w in (_tokens(text) if tokens is None else tokens) if len(w) >= 3}
    for run in _CJK.findall(text):
        words.update(run[i : i + 2] for i in range(len(run) - 1))
    return frozenset(words)


def _overlap(sa: frozenset[str], sb: frozenset[str]) -> float:
    """Jaccard overlap of two utterances' content words (length >= 3); 0 when either is short."""
    if len(sa) < 4 or len(sb) < 4:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def _trajectory(scores: list[float]) -> tuple[float, float, float]:
    """(recency-weighted mean, the same shrunk towards 0, last third minus first third)."""
    if not scores:
        return 0.0, 0.0, 0.0
    n = len(scores)
    # Weight grows linearly towards the end: the last turns weigh most (peak-end effect).
    weights = [1.0 + 2.0 * i / max(n - 1, 1) for i in range(n)]
    weighted = sum(w * s for w, s in zip(weights, scores, strict=True))
    mean = weighted / sum(weights)
    # A prior of SHRINK_TURNS neutral turns: two polite words are weaker evidence than ten.
    shrunk = weighted / (sum(weights) + SHRINK_TURNS)
    third = max(1, n // 3)
    trend = sum(scores[-third:]) / third - sum(scores[:third]) / third
    return mean, shrunk, trend


def csat_signals(transcript: Transcript) -> dict[str, float | int | str | None]:
    """Every component of the proxy: the raw measurements and their contributions.

    Keys ending in ``_pts`` are contributions in survey points; ``csat_proxy`` is the
    baseline plus every ``_pts``, clipped to 1..5. An empty conversation gives
    ``csat_proxy: None``.
    """
    users: list[UserTurn] = transcript.user_turns
    agents: list[AgentTurn] = transcript.agent_turns
    out: dict[str, float | int | str | None] = {}
    if not users and not agents:
        out["csat_proxy"] = None
        out["reason"] = "empty conversation"
        return out

    user_texts = [u.content for u in users]
    agent_texts = [a.content for a in agents if a.content]
    user_low = [t.lower() for t in user_texts]
    agent_low = [t.lower() for t in agent_texts]
    # Each cue is looked for once per message (the proxy runs on every conversation of a run).
    thanks = [bool(_GRATITUDE.search(t)) for t in user_low]
    complaints = [bool(_COMPLAINT.search(t)) for t in user_low]
    alternatives = [bool(_ALTERNATIVE.search(t)) for t in user_low]
    user_tokens = [_tokens(t) for t in user_texts]  # once per message, for every use below
    user_words = [_content_words(t, tk) for t, tk in zip(user_texts, user_tokens, strict=True)]
    later = user_texts[1:]  # reactions to the agent (the opening message states the need)
    n_later = max(len(later), 1)

    # 1. Sentiment: recency-weighted, shrunk towards neutral when there is little evidence.
    scores = [_sentiment(t, tk).score for t, tk in zip(user_texts, user_tokens, strict=True)]
    mean, shrunk, trend = _trajectory(scores)
    out["user_sentiment_mean"] = round(mean, 3)
    out["user_sentiment_trend"] = round(trend, 3)
    out["sentiment_pts"] = W_SENTIMENT * shrunk

    # 2. Explicit complaints (rare, strong): a late one weighs double an early one that the
    # agent then recovered from (peak-end again).
    n_user = len(user_texts)
    complaint_weight = sum(
        0.5 + 0.5 * i / max(n_user - 1, 1) for i, bad in enumerate(complaints) if bad
    )
    out["n_thanks"] = sum(thanks)
    out["n_complaints"] = sum(complaints)
    out["complaint_pts"] = W_COMPLAINT * min(complaint_weight, 3.0)

    # How the user left: closing the conversation ("thanks, that's all") or left hanging
    # on a request the agent never answered.
    closed = any(_CLOSING.search(t) for t in user_low[-2:])
    unanswered = isinstance(transcript.turns[-1], UserTurn) and not closed
    out["closed_by_user"] = int(closed)
    out["ended_unanswered"] = int(unanswered)
    out["ending_pts"] = W_UNANSWERED * unanswered

    # 3. Friction: the user rejecting offers, correcting the agent, repeating themselves.
    n_alternatives = sum(alternatives[1:])
    n_corrections = sum(1 for t in user_low[1:] if _CORRECTION.search(t))
    # A repeat is a request said again within the last three messages. Saying "yes, that
    # works" twice is not one, nor is asking for more options (counted above).
    n_repeats = sum(
        1
        for i in range(1, len(user_texts))
        if scores[i] <= 0.0
        and not alternatives[i]
        and any(_overlap(user_words[i], p) >= 0.7 for p in user_words[max(0, i - 3) : i])
    )
    out["n_alternatives"] = n_alternatives
    out["n_corrections"] = n_corrections
    out["n_user_repeats"] = n_repeats
    out["friction_pts"] = (
        W_ALTERNATIVE * n_alternatives / n_later
        + W_CORRECTION * n_corrections / n_later
        + W_REPEAT * min(n_repeats, 3)
    )

    # 4. The agent failing: "no results / cannot / sorry", looping, errors.
    n_fail = sum(1 for t in agent_low if _AGENT_FAILURE.search(t))
    # A loop is the same substantive reply twice in a row ("anything else?" closers are short).
    agent_words = [_content_words(t) for t in agent_texts]
    n_loops = sum(1 for i in range(1, len(agent_words)) if _overlap(agent_words[i], agent_words[i - 1]) >= 0.8)
    n_errors = sum(1 for a in agents if a.error) + sum(1 for c in transcript.tool_calls if c.error)
    out["n_agent_failures"] = n_fail
    out["n_agent_loops"] = n_loops
    out["n_agent_errors"] = n_errors
    out["agent_failure_pts"] = (
        W_AGENT_FAILURE * (n_fail / len(agent_texts) if agent_texts else 0.0)
        + W_LOOP * min(n_loops, 3)
        + W_ERROR * min(n_errors, 3)
    )

    # The agent's manner: rude, dismissive or blaming replies, and refusals with no way forward.
    stuck = [not _WAY_FORWARD.search(t) for t in agent_low]  # the reply offers no way forward
    n_rude = sum(1 for t, no_way in zip(agent_low, stuck, strict=True)
                 if _RUDE.search(t) or (no_way and _YOURSELF.search(t)))
    n_dead_ends = sum(1 for t, no_way in zip(agent_low, stuck, strict=True) if no_way and _REFUSAL.search(t))
    out["n_agent_rude"] = n_rude
    out["n_agent_dead_ends"] = n_dead_ends
    out["agent_manner_pts"] = W_RUDE * min(n_rude, 2) + W_DEAD_END * (
        n_dead_ends / len(agent_texts) if agent_texts else 0.0
    )

    # The agent confirming it got something done (bookings, refunds, reference numbers).
    n_confirmed = sum(1 for t in agent_low if _CONFIRMED.search(t))
    out["n_agent_confirmations"] = n_confirmed
    out["resolution_pts"] = W_CONFIRMED * min(n_confirmed, 2) / 2

    # 5. Effort: only a long conversation costs (length alone did not predict lower ratings
    # on human-rated task dialogues; wasted turns are counted by friction above).
    out["n_user_turns"] = len(users)
    out["n_user_words"] = sum(len(tk) for tk in user_tokens)
    out["effort_pts"] = W_EFFORT * math.log2(max(len(users), EFFORT_FREE_TURNS) / EFFORT_FREE_TURNS)

    # 6. How it ended, and 7. slow replies.
    out["outcome"] = transcript.outcome.value
    out["outcome_pts"] = _outcome_pts(transcript)
    latencies = [a.latency_ms for a in agents if a.latency_ms is not None]
    slow_share = sum(1 for x in latencies if x > SLOW_REPLY_MS) / len(latencies) if latencies else 0.0
    out["slow_reply_share"] = round(slow_share, 3)
    out["latency_pts"] = W_SLOW * slow_share

    total = _BASELINE + sum(float(v or 0.0) for k, v in out.items() if k.endswith("_pts"))
    for k in list(out):
        if k.endswith("_pts"):
            out[k] = round(float(out[k] or 0.0), 3)
    out["csat_proxy"] = round(min(5.0, max(1.0, total)), 3)
    return out


def _outcome_pts(t: Transcript) -> float:
    recorded = t.stop_reason == StopReason.recorded
    if t.error is not None or t.outcome == Outcome.error:
        return -1.2
    if t.outcome == Outcome.abandoned:
        return -1.0
    if t.outcome == Outcome.max_turns:
        return -0.8
    if t.outcome == Outcome.escalated or t.handoff is not None:
        # A handoff the user asked for is not a failure of the survey; still costs effort.
        return -0.4
    # A recorded conversation defaults to "resolved" without anyone having checked it.
    # Observed resolution with nothing else said: most customers answer 4 ("satisfied").
    return 0.0 if recorded else W_RESOLVED


def csat_proxy(transcript: Transcript) -> float | None:
    """The offline CSAT estimate (1.0-5.0) for one conversation; None when it is empty."""
    value = csat_signals(transcript)["csat_proxy"]
    return None if value is None else float(value)
