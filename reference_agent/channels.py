"""Channel adapters: normalise input and format output for web, WhatsApp, Slack and voice.

Replies are composed once in light Markdown (``**bold**``, ``[text](url)``, ``- `` bullets)
and rendered per channel:

* ``web``: Markdown as is.
* ``whatsapp``: plain text (no Markdown), split into messages of at most
  :data:`WHATSAPP_LIMIT` characters (WhatsApp's cap is 4,096) on paragraph, then sentence
  (or line), then word boundaries.
* ``slack``: Slack mrkdwn: ``*bold*``, ``<url|text>`` links, ``•`` bullets.
* ``voice``: no Markdown, no URLs, ids and codes spelled out character by character
  ("ORD-10001" -> "O R D 1 0 0 0 1"), dollar amounts spoken ("$25.50" -> "25 dollars and
  50 cents"), long sentences cut into short ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CHANNELS", "WHATSAPP_LIMIT", "Formatted", "format_reply", "normalize_input", "spell_id",
           "strip_markdown", "split_messages", "to_slack", "to_voice"]

CHANNELS = ("web", "whatsapp", "slack", "voice")
WHATSAPP_LIMIT = 4000  # under WhatsApp's 4,096-character cap, with room for a counter

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_URL = re.compile(r"https?://\S+")
_ID = re.compile(r"\b(ORD|TCK|RET|REF|CUST)-(\d+)\b")
_MONEY = re.compile(r"\$(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?")


@dataclass
class Formatted:
    text: str  # the whole reply as the channel shows it
    messages: list[str]  # the reply as separate messages (more than one only on WhatsApp)


def normalize_input(text: str, channel: str) -> str:
    """Clean what a channel delivers: Slack ``<mailto:x|x>`` / ``<url|text>`` / user mentions,
    WhatsApp zero-width characters, voice filler words; collapse whitespace."""
    text = text.replace("\u200b", "").replace("\ufeff", "")
    if channel == "slack":
        text = re.sub(r"<mailto:([^|>]+)\|[^>]+>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<@[A-Z0-9]+>", "", text)
    if channel == "voice":
        text = re.sub(r"\b(um+|uh+|erm|hmm+)\b[,.]?\s*", "", text, flags=re.I)
    return re.sub(r"\s+", " ", text).strip()


def strip_markdown(text: str) -> str:
    text = _BOLD.sub(r"\1", text)
    text = _LINK.sub(r"\1: \2", text)
    text = re.sub(r"^#+\s*", "", text, flags=re.M)
    return text.replace("`", "")


def split_messages(text: str, limit: int = WHATSAPP_LIMIT) -> list[str]:
    """Split on paragraphs, then sentences, then words, so each part is <= ``limit``."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for para in text.split("\n\n"):
        if len(para) <= limit:
            pieces.append(para)
            continue
        # A list or an address block is a paragraph of lines: a line ends where a sentence does.
        for sentence in re.split(r"(?<=[.!?])\s+|\n", para):
            sentence = sentence.strip()  # a cut never leaves a message of blanks
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                pieces.append(sentence[:cut])
                sentence = sentence[cut:].lstrip()
            pieces.append(sentence)
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) + 2 + len(piece) <= limit:
            out[-1] += "\n\n" + piece
        else:
            out.append(piece)
    return out


def to_slack(text: str) -> str:
    text = _BOLD.sub(r"*\1*", text)
    text = _LINK.sub(r"<\2|\1>", text)
    text = re.sub(r"^#+\s*(.+)$", r"*\1*", text, flags=re.M)
    return re.sub(r"^- ", "• ", text, flags=re.M)


def spell_id(prefix: str, digits: str) -> str:
    return " ".join(prefix) + " " + " ".join(digits)


def _money(m: re.Match[str]) -> str:
    dollars = m.group(1).replace(",", "")
    cents = m.group(2)
    if cents and cents != "00":
        return f"{dollars} dollars and {int(cents)} cents"
    return f"{dollars} dollars"


def to_voice(text: str, max_words: int = 20) -> str:
    """Speakable text: no Markdown or URLs, short sentences, ids spelled out."""
    text = _BOLD.sub(r"\1", text)
    text = re.sub(r"\s*\(\[[^\]]+\]\(https?://[^)\s]+\)\)", "", text)  # "(link)" asides are dropped
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"^[-*•]\s+", "", text, flags=re.M)
    text = re.sub(r"[#*_`>|]", "", text)
    text = _MONEY.sub(_money, text)
    text = text.replace("(yes/no)", "Please say yes or no.").replace("e.g.", "for example")
    text = re.sub(r"(\d+) x ", r"\1 ", text)
    text = re.sub(r"\s*[()]\s*", ", ", text)
    text = re.sub(r"\s*\n+\s*", " ", text)
    # Cut long sentences (counted before ids are spelled out) at ; : or a conjunction.
    short: list[str] = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = s.strip(" ,")
        if not s:
            continue
        parts = [s]
        if len(s.split()) > max_words:
            parts = [p.strip(" ,.") for p in re.split(r"\s*[;:]\s*|,\s+(?=and |but |so |or |it )", s)]
        for part in parts:
            if part:
                part = part[0].upper() + part[1:]
                short.append(part if part[-1] in ".!?" else part + ".")
    out = " ".join(short)
    out = _ID.sub(lambda m: spell_id(m.group(1), m.group(2)), out)
    # Long codes (tracking numbers) are read character by character.
    out = re.sub(r"\b(?=[A-Z0-9]*\d)[A-Z0-9]{10,}\b", lambda m: " ".join(m.group(0)), out)
    out = re.sub(r"\s{2,}", " ", out).replace(" ,", ",")
    return re.sub(r",\s*([.?!])", r"\1", out).strip()


def format_reply(text: str, channel: str) -> Formatted:
    """Render a Markdown reply for ``channel``."""
    if channel == "whatsapp":
        plain = strip_markdown(text)
        return Formatted(plain, split_messages(plain))
    if channel == "slack":
        out = to_slack(text)
        return Formatted(out, [out])
    if channel == "voice":
        out = to_voice(text)
        return Formatted(out, [out])
    return Formatted(text, [text])
