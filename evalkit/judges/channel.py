"""``channel_messages``: how a reply was split into the messages a channel delivered.

Channels with a message cap (WhatsApp: 4,096 characters, SMS) make an agent send a long
reply as several messages. An agent that reports them puts them in its turn's metadata as
``messages``: a list of strings, in the order sent (the reference agent does). The judge
checks each such turn against the reply's ``content``:

* every message is non-empty and at most ``max_chars`` characters;
* no text is lost, added, changed or reordered: the messages' words, in order, are the
  reply's words (whitespace is not compared: a splitter may turn a space into a blank line);
* no needless split (``compact``): two consecutive messages that fit in one
  (``len(a) + 2 + len(b) <= max_chars``, joined by a blank line) are "fragmented";
* units are kept whole (``keep_whole``): a paragraph, sentence or word is never split across
  messages unless it alone is longer than ``max_chars``.

Written here rather than taken from a library: no text-splitting library checks a split it
did not make (they split; this compares someone else's split with the text it came from).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from itertools import pairwise
from typing import ClassVar, Literal

from pydantic import Field, JsonValue, field_validator

from evalkit.core.results import Verdict
from evalkit.judges._common import describe_scope, fmt_turns
from evalkit.judges.base import Judge, JudgeContext
from evalkit.judges.matching import fmt_value
from evalkit.scenarios.models import Channel

__all__ = ["ChannelMessages", "message_problems"]

Unit = Literal["paragraph", "sentence", "word"]
_UNITS: tuple[Unit, ...] = ("paragraph", "sentence", "word")

_WORD = re.compile(r"\S+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! or ? (closing quotes or brackets may follow) before whitespace, or
# at a line break (list items, lines of an address).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+|\s*\n\s*")
_SHOWN = 5  # problems listed in a reason


def _spans(text: str, breaks: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of the non-blank stretches between ``breaks``, without edge whitespace."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in [*breaks.finditer(text), None]:
        stop = len(text) if m is None else m.start()
        seg = text[pos:stop]
        if seg.strip():
            lead = len(seg) - len(seg.lstrip())
            out.append((pos + lead, pos + len(seg.rstrip())))
        if m is not None:
            pos = m.end()
    return out


def _around(text: str, limit: int = 30) -> str:
    """The start of a unit, shortened, for a reason."""
    flat = " ".join(text.split())
    return fmt_value(flat if len(flat) <= limit else flat[:limit] + "…")


def _position(text: str, k: int) -> int:
    """Where the ``k``-th non-whitespace character of ``text`` is."""
    seen = 0
    for m in _WORD.finditer(text):
        if seen + len(m.group()) > k:
            return m.start() + k - seen
        seen += len(m.group())
    return len(text)


def _text_difference(content: str, messages: list[str]) -> str:
    """How the messages' words differ from the reply's, in a few words."""
    ours = "".join(content.split())
    theirs = "".join("".join(m.split()) for m in messages)
    if ours == theirs:
        return "change where words break (the same characters, spaced differently)"
    if ours.startswith(theirs):
        return f"lose the reply's end: {_around(content[_position(content, len(theirs)):])}"
    if theirs.startswith(ours):
        return f"add {_around(theirs[len(ours):])} after the reply's end"
    a, b = content.split(), [w for m in messages for w in m.split()]
    first = next(
        op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"
    )
    tag, i1, i2, j1, j2 = first
    lost, added = " ".join(a[i1:i2]), " ".join(b[j1:j2])
    if Counter(ours) == Counter(theirs):
        return f"reorder the reply's text (first difference: {_around(lost or added)})"
    if tag == "delete":
        return f"lose {_around(lost)}"
    if tag == "insert":
        return f"add {_around(added)}"
    return f"change {_around(lost)} to {_around(added)}"


def _starts(content: str, messages: list[str]) -> list[int | None] | None:
    """Where each message starts in ``content`` (None for a blank message), or None when the
    messages' words are not the reply's words. A word may continue from the end of one
    message into the next (a cut)."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(content)]
    starts: list[int | None] = []
    ci, done = 0, 0  # content word, characters of it already sent
    for msg in messages:
        mwords = msg.split()
        if not mwords:
            starts.append(None)
            continue
        for wi, w in enumerate(mwords):
            if ci >= len(words):
                return None
            word, at = words[ci]
            if wi == 0:
                starts.append(at + done)
            rest = word[done:]
            if w == rest:
                ci, done = ci + 1, 0
            elif wi == len(mwords) - 1 and rest.startswith(w):
                done += len(w)  # the word goes on in the next message
            else:
                return None
    return starts if ci == len(words) else None


def _split_units(
    content: str, starts: list[int | None], max_chars: int, keep_whole: list[Unit]
) -> list[str]:
    """Units that fit in one message yet were split between two, as phrases."""
    units = {
        "paragraph": _spans(content, _PARAGRAPH_BREAK),
        "sentence": _spans(content, _SENTENCE_BREAK),
        "word": [(m.start(), m.end()) for m in _WORD.finditer(content)],
    }
    unit_starts = {unit: [s for s, _ in spans] for unit, spans in units.items()}
    found: list[str] = []
    placed = [(i, p) for i, p in enumerate(starts) if p is not None]
    for (prev, _), (i, p) in pairwise(placed):
        for unit in (u for u in _UNITS if u in keep_whole):
            spans = units[unit]
            k = bisect.bisect_right(unit_starts[unit], p) - 1
            if k < 0:
                continue
            start, end = spans[k]
            if start < p < end and end - start <= max_chars:
                found.append(
                    f"messages {prev + 1} and {i + 1} split the {unit} {_around(content[start:end])} "
                    f"({end - start:,} characters), which fits in one message"
                )
                break  # the largest unit split is the one to report
    return found


def message_problems(
    content: str,
    messages: list[str],
    max_chars: int,
    *,
    compact: bool = True,
    keep_whole: list[Unit] | None = None,
) -> list[str]:
    """What is wrong with ``messages`` as the channel's delivery of ``content``, as phrases
    (empty when nothing is)."""
    keep = list(_UNITS) if keep_whole is None else keep_whole
    total = len(messages)
    problems: list[str] = []
    for i, msg in enumerate(messages, 1):
        if not msg.strip():
            problems.append(f"message {i} of {total} is empty")
        elif len(msg) > max_chars:
            problems.append(f"message {i} of {total} has {len(msg):,} characters (max {max_chars:,})")
    starts = _starts(content, messages)
    if starts is None:
        problems.append(f"the messages {_text_difference(content, messages)}")
    if compact:
        for i in range(total - 1):
            a, b = messages[i], messages[i + 1]
            if a.strip() and b.strip() and len(a) + 2 + len(b) <= max_chars:
                problems.append(
                    f"messages {i + 1} and {i + 2} ({len(a):,} + {len(b):,} characters) fit in one "
                    f"message of {max_chars:,} (fragmented)"
                )
    if starts is not None:
        problems += _split_units(content, starts, max_chars, keep)
    return problems


class ChannelMessages(Judge):
    """Each agent turn that reports the messages a channel delivered (metadata ``messages``,
    a list of strings) sent its reply whole, in order, in non-empty messages of at most
    ``max_chars`` characters, with no needless split (``compact``) and no paragraph, sentence
    or word split across messages when it fits in one (``keep_whole``)."""

    name: ClassVar[str] = "channel_messages"
    primary: ClassVar[str | None] = "max_chars"

    max_chars: int = Field(
        ge=1, description="The longest message the channel may deliver, in characters (WhatsApp: 4096)."
    )
    channel: Channel | None = Field(
        default=None, description="Only conversations on this channel (others: skipped)."
    )
    compact: bool = Field(
        default=True,
        description="Two consecutive messages that fit in one (joined by a blank line) fail as fragmented.",
    )
    keep_whole: list[Unit] = Field(
        default_factory=lambda: list(_UNITS),
        description="Units never split across messages unless alone longer than max_chars: paragraph, sentence, word.",
    )

    @field_validator("keep_whole", mode="before")
    @classmethod
    def _one_unit(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        if self.channel is not None and ctx.transcript.channel != self.channel:
            return self.skip(f"the conversation is on {ctx.transcript.channel}, not {self.channel}")
        # A failed turn (agent raised, timed out) is reported as such elsewhere, not as a split.
        reported = [(n, a) for n, a in ctx.agent_turns() if "messages" in a.metadata and a.error is None]
        if not reported:
            return self.skip(
                f"no agent turn{describe_scope(ctx)} reports the messages it sent (metadata 'messages')"
            )
        problems: list[tuple[int, str]] = []
        n_messages = 0
        for n, a in reported:
            messages = _strings(a.metadata["messages"])
            if messages is None:
                problems.append((n, "metadata 'messages' is not a list of strings"))
                continue
            n_messages += len(messages)
            problems += [
                (n, p) for p in message_problems(a.content, messages, self.max_chars,
                                                 compact=self.compact, keep_whole=self.keep_whole)
            ]
        turns = [n for n, _ in reported]
        if problems:
            shown = "; ".join(f"turn {n}: {p}" for n, p in problems[:_SHOWN])
            more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
            return self.verdict(
                False,
                f"expected each reply sent whole in messages of at most {self.max_chars:,} characters "
                f"with no needless split; {shown}{more}",
                turn=problems[0][0],
                problems=len(problems),
            )
        whose = "its reply" if len(turns) == 1 else "their replies"
        return self.verdict(
            True,
            f"{fmt_turns(turns)} sent {whose} whole in {n_messages} message{'s' if n_messages != 1 else ''} "
            f"of at most {self.max_chars:,} characters, with no needless split",
            messages=n_messages,
        )


def _strings(value: JsonValue) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if isinstance(v, str)]
    return None
