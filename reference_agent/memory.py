"""Memory: a short-term message window and a long-term customer profile.

* :class:`ShortTermMemory` keeps the last 20 messages of the conversation (user and agent,
  PII already redacted). The rules engine uses it for ticket summaries; an LLM engine
  sends it as the chat history.
* :class:`ProfileStore` keeps one long-term profile per customer in SQLite (the
  ``customer_profiles`` table): preferred language, communication style, past issues and
  number of visits. The agent greets a returning customer by name, mentions their last
  issue, and records this conversation's issues when it ends.

By default the profile store is the conversation's own store copy (so the seeded
"returning customers" of the fixtures are recognised, and nothing leaks between
conversations). A service that wants profiles to persist across conversations passes a
shared ``ProfileStore.open(path)``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from reference_agent.store import fixtures_dir

__all__ = ["SHORT_TERM_WINDOW", "Message", "ShortTermMemory", "Profile", "ProfileStore",
           "detect_language", "detect_style"]

SHORT_TERM_WINDOW = 20


@dataclass(frozen=True)
class Message:
    role: str  # user | agent
    text: str


class ShortTermMemory:
    """The last ``size`` messages (older ones fall out of the window)."""

    def __init__(self, size: int = SHORT_TERM_WINDOW) -> None:
        self.size = size
        self._messages: deque[Message] = deque(maxlen=size)
        self.total = 0  # messages seen in the whole conversation

    def add(self, role: str, text: str) -> None:
        self._messages.append(Message(role, text))
        self.total += 1

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)

    def user_texts(self) -> list[str]:
        return [m.text for m in self._messages if m.role == "user"]

    def summary(self, limit: int = 400) -> str:
        """A one-paragraph summary for a human agent: the customer's last messages."""
        said = " | ".join(self.user_texts()[-5:])
        return (said[: limit - 1] + "…") if len(said) > limit else said

    def clear(self) -> None:
        self._messages.clear()
        self.total = 0


@dataclass
class Profile:
    customer_id: str
    language: str = "en"
    style: str = "friendly"
    past_issues: list[str] = field(default_factory=list)
    visits: int = 0
    last_seen: str | None = None

    @property
    def returning(self) -> bool:
        return self.visits > 0


_PROFILE_SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_profiles (
    customer_id TEXT PRIMARY KEY,
    language TEXT NOT NULL DEFAULT 'en',
    style TEXT NOT NULL DEFAULT 'friendly',
    past_issues TEXT NOT NULL DEFAULT '[]',
    visits INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT
)
"""


class ProfileStore:
    """Long-term customer profiles in a SQLite ``customer_profiles`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> ProfileStore:
        """A profile store in its own SQLite file (or memory), seeded from the fixtures
        when the table is new."""
        conn = sqlite3.connect(":memory:" if path is None else os.fspath(path), check_same_thread=False)
        conn.execute(_PROFILE_SCHEMA)
        (count,) = conn.execute("SELECT COUNT(*) FROM customer_profiles").fetchone()
        if count == 0:
            seed = json.loads((fixtures_dir() / "profiles.json").read_text(encoding="utf-8"))
            conn.executemany(
                "INSERT INTO customer_profiles VALUES (:customer_id, :language, :style, :past_issues,"
                " :visits, :last_seen)",
                [{**p, "past_issues": json.dumps(p["past_issues"])} for p in seed],
            )
        conn.commit()
        return cls(conn)

    def load(self, customer_id: str) -> Profile | None:
        with self._lock:
            cur = self.conn.execute(
                "SELECT customer_id, language, style, past_issues, visits, last_seen"
                " FROM customer_profiles WHERE customer_id = ?", (customer_id,))
            row: Any = cur.fetchone()
        if row is None:
            return None
        if isinstance(row, dict):
            row = tuple(row.values())
        issues = json.loads(row[3]) if isinstance(row[3], str) else list(row[3])
        return Profile(row[0], row[1], row[2], issues, int(row[4]), row[5])

    def save(self, profile: Profile) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO customer_profiles VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(customer_id) DO UPDATE SET"
                " language=excluded.language, style=excluded.style, past_issues=excluded.past_issues,"
                " visits=excluded.visits, last_seen=excluded.last_seen",
                (profile.customer_id, profile.language, profile.style,
                 json.dumps(profile.past_issues[-20:]), profile.visits, profile.last_seen),
            )
            self.conn.commit()


_LANG_WORDS = {
    "es": {"hola", "pedido", "dónde", "donde", "está", "gracias", "quiero", "por", "favor", "mi", "el", "la",
           "devolver", "reembolso", "necesito", "ayuda"},
    "de": {"hallo", "bestellung", "wo", "ist", "meine", "danke", "ich", "möchte", "bitte", "und", "nicht",
           "rückgabe", "erstattung", "hilfe"},
    "fr": {"bonjour", "commande", "où", "est", "merci", "je", "voudrais", "veux", "mon", "ma", "retour",
           "remboursement", "aide", "s'il", "vous", "plaît"},
}


def detect_language(texts: list[str]) -> str:
    """A small stop-word vote between English, Spanish, German and French."""
    words = [w for t in texts for w in re.findall(r"[\wáéíóúñäöüßàèêçô']+", t.lower())]
    best, best_hits = "en", 1  # need at least 2 hits to switch away from English
    for lang, vocab in _LANG_WORDS.items():
        hits = sum(w in vocab for w in words)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best


def detect_style(texts: list[str]) -> str:
    """concise (short messages), formal (polite markers) or friendly (the default)."""
    if not texts:
        return "friendly"
    joined = " ".join(texts).lower()
    if re.search(r"\b(kindly|would you be so kind|dear|sir|madam|i would be grateful|regards)\b", joined):
        return "formal"
    if sum(len(t.split()) for t in texts) / len(texts) <= 4:
        return "concise"
    return "friendly"
