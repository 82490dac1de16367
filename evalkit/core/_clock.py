"""Timestamps as evalkit writes them: UTC, to the second."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now_iso", "now_stamp"]


def now_iso() -> str:
    """Now as ISO 8601 in UTC, to the second (manifests, journals, reports)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def now_stamp() -> str:
    """Now as ``YYYYmmdd-HHMMSS`` in UTC: the sortable part of run ids and folder names."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
