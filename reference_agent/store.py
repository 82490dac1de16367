"""AcmeCorp's store: a SQLite database seeded from the fixture files in ``datasets/store/``.

The seeded database is built ONCE per process in memory (the *template*); every
conversation gets its own copy through SQLite's backup API (about a millisecond), so
conversations never see one another's changes. Triggers record every row a
conversation inserts or updates, which is what :meth:`Store.end_state` returns.

The store has its own fixed clock (``store_date``, 2026-06-01 in the fixtures) so every
date rule (e.g. the 30-day return window) is deterministic whatever the real date is.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

__all__ = [
    "FIXTURES_DIR",
    "TRACKED_TABLES",
    "Store",
    "StoreError",
    "open_store",
    "fixtures_dir",
]

#: Default fixture folder (the repository's ``datasets/store``); override with the
#: ``REFERENCE_AGENT_FIXTURES`` environment variable or ``open_store(fixtures=...)``.
FIXTURES_DIR = Path(__file__).resolve().parents[1] / "datasets" / "store"

#: Tables whose changed rows :meth:`Store.end_state` reports, with their key column.
TRACKED_TABLES = {
    "orders": "order_id",
    "returns": "return_id",
    "refunds": "refund_id",
    "tickets": "ticket_id",
}

_SCHEMA = """
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone TEXT,
    language TEXT NOT NULL DEFAULT 'en',
    address TEXT,
    created_at TEXT
);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered',
        'cancelled', 'lost_in_transit', 'returned', 'refunded')),
    items TEXT NOT NULL,              -- JSON list of {sku, name, unit_price, quantity}
    total REAL NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    placed_at TEXT,
    shipped_at TEXT,
    delivered_at TEXT,
    carrier TEXT,
    tracking_number TEXT,
    shipping_address TEXT,
    note TEXT NOT NULL DEFAULT '',
    updated_at TEXT
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE TABLE returns (
    return_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(order_id),
    customer_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    label_url TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE refunds (
    refund_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(order_id),
    customer_id TEXT NOT NULL,
    amount REAL NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE tickets (
    ticket_id TEXT PRIMARY KEY,
    customer_id TEXT,
    order_id TEXT,
    reason TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL DEFAULT 'normal',
    created_at TEXT NOT NULL
);
CREATE TABLE customer_profiles (
    customer_id TEXT PRIMARY KEY,
    language TEXT NOT NULL DEFAULT 'en',
    style TEXT NOT NULL DEFAULT 'friendly',
    past_issues TEXT NOT NULL DEFAULT '[]',   -- JSON list of "intent:ORD-xxxxx"
    visits INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT
);
CREATE TABLE feedback (
    feedback_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    rating TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE faq (
    faq_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    keywords TEXT NOT NULL            -- JSON list
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE _changes (tbl TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT);
"""


def _triggers() -> str:
    parts = []
    for table, key in TRACKED_TABLES.items():
        for event in ("INSERT", "UPDATE"):
            parts.append(
                f"CREATE TRIGGER track_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN INSERT INTO _changes(tbl, key) VALUES ('{table}', NEW.{key}); END;"
            )
    return "\n".join(parts)


class StoreError(Exception):
    """The fixture folder is missing or malformed (misuse, raised early)."""


def fixtures_dir() -> Path:
    env = os.environ.get("REFERENCE_AGENT_FIXTURES")
    return Path(env) if env else FIXTURES_DIR


def _load(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: fixture file missing (run datasets/store/generate.py)") from None
    except json.JSONDecodeError as err:
        raise StoreError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None


def _build_template(folder: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(_SCHEMA)
    meta = _load(folder, "meta.json")
    conn.execute("INSERT INTO meta VALUES ('store_date', ?)", (meta["store_date"],))
    conn.executemany(
        "INSERT INTO customers VALUES (:customer_id, :name, :email, :phone, :language, :address, :created_at)",
        _load(folder, "customers.json"),
    )
    conn.executemany(
        "INSERT INTO orders VALUES (:order_id, :customer_id, :status, :items, :total, :currency,"
        " :placed_at, :shipped_at, :delivered_at, :carrier, :tracking_number, :shipping_address,"
        " :note, NULL)",
        [{**o, "items": json.dumps(o["items"])} for o in _load(folder, "orders.json")],
    )
    conn.executemany(
        "INSERT INTO faq VALUES (:faq_id, :question, :answer, :keywords)",
        [{**f, "keywords": json.dumps(f["keywords"])} for f in _load(folder, "faq.json")],
    )
    conn.executemany(
        "INSERT INTO tickets VALUES (:ticket_id, :customer_id, :order_id, :reason, :summary,"
        " :status, :priority, :created_at)",
        _load(folder, "tickets.json"),
    )
    conn.executemany(
        "INSERT INTO customer_profiles VALUES (:customer_id, :language, :style, :past_issues,"
        " :visits, :last_seen)",
        [{**p, "past_issues": json.dumps(p["past_issues"])} for p in _load(folder, "profiles.json")],
    )
    # Triggers go in after seeding so the template starts with no recorded changes.
    conn.executescript(_triggers())
    conn.commit()
    return conn


# Process-wide on purpose: the seeded template of each fixtures folder, and what is read from it
# (FAQ, emails, phones), are read-only once built; every conversation gets its own copy of the
# database, so no run can see what another wrote.
_templates: dict[Path, sqlite3.Connection] = {}
_shared: dict[Path, dict[str, Any]] = {}
_templates_lock = threading.Lock()


def _template(folder: Path) -> sqlite3.Connection:
    folder = folder.resolve()
    with _templates_lock:
        conn = _templates.get(folder)
        if conn is None:
            conn = _templates[folder] = _build_template(folder)
            _shared[folder] = {}
        return conn


_JSON_COLUMNS = {"items", "keywords", "past_issues"}


def _row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    out = {}
    for (name, *_), value in zip(cursor.description, row, strict=True):
        out[name] = json.loads(value) if name in _JSON_COLUMNS and isinstance(value, str) else value
    return out


@dataclass
class Store:
    """One conversation's private copy of the AcmeCorp database."""

    conn: sqlite3.Connection
    store_date: date = field(init=False)
    # Read-only tables, shared by every copy of one template (customers and the FAQ never
    # change during a conversation), so each copy does not re-read them.
    shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.conn.row_factory = _row
        (value,) = self.conn.execute("SELECT value FROM meta WHERE key='store_date'").fetchone().values()
        self.store_date = date.fromisoformat(value)

    # -- reads -------------------------------------------------------------------------
    def one(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.conn.execute(sql, params).fetchall()

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM orders WHERE order_id = ?", (order_id,))

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM customers WHERE customer_id = ?", (customer_id,))

    def customer_by_email(self, email: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM customers WHERE email = ?", (email.strip(),))

    def orders_of(self, customer_id: str) -> list[dict[str, Any]]:
        return self.all(
            "SELECT * FROM orders WHERE customer_id = ? ORDER BY placed_at DESC, order_id DESC",
            (customer_id,),
        )

    def returns_for(self, order_id: str) -> list[dict[str, Any]]:
        return self.all("SELECT * FROM returns WHERE order_id = ?", (order_id,))

    def refunded_total(self, order_id: str) -> float:
        row = self.one(
            "SELECT COALESCE(SUM(amount), 0) AS s FROM refunds WHERE order_id = ? AND status = 'approved'",
            (order_id,),
        )
        return float(row["s"]) if row else 0.0

    def faq_entries(self) -> list[dict[str, Any]]:
        """The FAQ (static during a conversation, so read once)."""
        if "faq" not in self.shared:
            self.shared["faq"] = self.all("SELECT * FROM faq ORDER BY faq_id")
        return self.shared["faq"]  # type: ignore[no-any-return]

    def all_emails(self) -> frozenset[str]:
        """Every customer email (the customers table never changes during a conversation)."""
        if "emails" not in self.shared:
            self.shared["emails"] = frozenset(r["email"].lower() for r in self.all("SELECT email FROM customers"))
        return self.shared["emails"]  # type: ignore[no-any-return]

    def all_phones(self) -> frozenset[str]:
        if "phones" not in self.shared:
            self.shared["phones"] = frozenset(r["phone"] for r in self.all("SELECT phone FROM customers") if r["phone"])
        return self.shared["phones"]  # type: ignore[no-any-return]

    # -- writes ------------------------------------------------------------------------
    def _next_id(self, table: str, key: str, prefix: str) -> str:
        row = self.one(
            f"SELECT MAX(CAST(SUBSTR({key}, {len(prefix) + 1}) AS INTEGER)) AS n FROM {table}"
        )
        return f"{prefix}{((row or {}).get('n') or 0) + 1:05d}"

    def update_order(self, order_id: str, **changes: Any) -> dict[str, Any]:
        cols = ", ".join(f"{k} = ?" for k in changes)
        self.conn.execute(
            f"UPDATE orders SET {cols}, updated_at = ? WHERE order_id = ?",
            (*changes.values(), self.store_date.isoformat(), order_id),
        )
        order = self.get_order(order_id)
        assert order is not None
        return order

    def create_return(self, order_id: str, customer_id: str, reason: str) -> dict[str, Any]:
        return_id = self._next_id("returns", "return_id", "RET-")
        self.conn.execute(
            "INSERT INTO returns VALUES (?, ?, ?, ?, 'authorized', ?, ?)",
            (return_id, order_id, customer_id, reason,
             f"https://acme.example.com/returns/{return_id}/label.pdf", self.store_date.isoformat()),
        )
        return self.one("SELECT * FROM returns WHERE return_id = ?", (return_id,)) or {}

    def create_refund(self, order_id: str, customer_id: str, amount: float) -> dict[str, Any]:
        refund_id = self._next_id("refunds", "refund_id", "REF-")
        self.conn.execute(
            "INSERT INTO refunds VALUES (?, ?, ?, ?, 'approved', ?)",
            (refund_id, order_id, customer_id, round(amount, 2), self.store_date.isoformat()),
        )
        return self.one("SELECT * FROM refunds WHERE refund_id = ?", (refund_id,)) or {}

    def create_ticket(
        self,
        reason: str,
        summary: str,
        *,
        customer_id: str | None = None,
        order_id: str | None = None,
        priority: str = "normal",
    ) -> dict[str, Any]:
        ticket_id = self._next_id("tickets", "ticket_id", "TCK-")
        self.conn.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
            (ticket_id, customer_id, order_id, reason, summary, priority,
             self.store_date.isoformat()),
        )
        return self.one("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,)) or {}

    def add_feedback(self, session_id: str, rating: str, comment: str | None = None) -> int:
        cur = self.conn.execute(
            "INSERT INTO feedback(session_id, rating, comment, created_at) VALUES (?, ?, ?, ?)",
            (session_id, rating, comment, self.store_date.isoformat()),
        )
        return int(cur.lastrowid or 0)

    # -- end state ---------------------------------------------------------------------
    def end_state(self) -> dict[str, list[dict[str, Any]]]:
        """Only the rows this conversation inserted or updated, by table, in key order."""
        out: dict[str, list[dict[str, Any]]] = {t: [] for t in TRACKED_TABLES}
        changed = self.all("SELECT DISTINCT tbl, key FROM _changes ORDER BY tbl, key")
        for ch in changed:
            table, key = ch["tbl"], ch["key"]
            row = self.one(f"SELECT * FROM {table} WHERE {TRACKED_TABLES[table]} = ?", (key,))
            if row is not None:
                out[table].append(row)
        return out

    def close(self) -> None:
        self.conn.close()


def open_store(path: str | os.PathLike[str] | None = None, *, fixtures: Path | None = None) -> Store:
    """A fresh, seeded copy of the store.

    ``path=None`` gives a private in-memory copy (the normal case: one per conversation);
    a file path writes the seeded copy there (handy for inspecting it with ``sqlite3``).
    """
    folder = (fixtures or fixtures_dir()).resolve()
    template = _template(folder)
    target = sqlite3.connect(":memory:" if path is None else os.fspath(path), check_same_thread=False)
    with _templates_lock:  # the template connection is shared between threads
        template.backup(target)
    return Store(target, shared=_shared[folder])
