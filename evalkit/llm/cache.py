"""On-disk response cache: a re-run of a cached run is fast, free and gives identical verdicts.

Entries are keyed by a SHA-256 of the full request as the model sees it: model, messages,
tools, tool choice, response format and sampling parameters (never the API key or the base
URL, which do not change the answer). Each entry is one JSON file, written atomically
(temporary file + ``os.replace``), so concurrent writers and crashes never leave a torn
entry. Modes: ``read-write`` (default), ``read-only`` (hits are served, nothing is
written) and ``off``.

No configured secret reaches the cache (``secrets``, see :mod:`evalkit.core.masking`): the copy of
the request is masked, and an answer holding a secret (an endpoint echoing the
``Authorization`` header) is not written (counted as ``withheld``).

With ``redact_pii`` (set by a ``--redact-pii`` run) no PII reaches the cache: the copy of
the request kept beside the answer is masked, and an answer that itself contains PII is not
written at all (counted as ``withheld``; a later run asks the model again). Answers are
never stored masked: a replay must give what the model said.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from evalkit.core.errors import ConfigError
from evalkit.core.masking import Secrets

__all__ = ["CacheMode", "CacheStats", "ResponseCache", "request_key", "DEFAULT_CACHE_DIR"]

DEFAULT_CACHE_DIR = ".evalkit-cache/llm"
CACHE_FORMAT = 1


class CacheMode(StrEnum):
    read_write = "read-write"
    read_only = "read-only"
    off = "off"


def request_key(request: dict[str, Any]) -> str:
    """A stable hash of a request (keys sorted, no whitespace), with a format version."""
    canonical = json.dumps({"v": CACHE_FORMAT, **request}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """Counts for the run manifest (``manifest.cache``)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    withheld: int = 0  # answers holding a secret (or PII in a --redact-pii run): not written
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        out = {"hits": self.hits, "misses": self.misses, "writes": self.writes}
        if self.withheld:
            out["withheld"] = self.withheld
        return out


@dataclass
class ResponseCache:
    """A folder of cached responses (``<dir>/<key[:2]>/<key>.json``)."""

    directory: Path
    mode: CacheMode = CacheMode.read_write
    stats: CacheStats = field(default_factory=CacheStats)
    redact_pii: bool = False
    # Secrets never written: a request copy is masked, an answer holding one is withheld.
    secrets: Secrets = field(default_factory=Secrets.from_env)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        try:
            self.mode = CacheMode(self.mode)
        except ValueError:
            raise ConfigError(f"'{self.mode}' is not one of read-write, read-only, off", field="--cache") from None

    @property
    def enabled(self) -> bool:
        return self.mode != CacheMode.off

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response for ``key`` (counted as a hit or a miss)."""
        if not self.enabled:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
            response = entry["response"]
        except (OSError, ValueError, KeyError, TypeError):
            self.stats.add("misses")
            return None
        self.stats.add("hits")
        return response

    def put(self, key: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Store a response (no-op unless read-write). ``request`` must hold no secret."""
        if self.mode != CacheMode.read_write:
            return
        if self.secrets.hits(json.dumps(response, ensure_ascii=False, default=str)):
            self.stats.add("withheld")
            return
        request = self.secrets.mask_value(request)
        if self.redact_pii:
            from evalkit.core.pii import redact_value  # the PII detectors load only when asked

            if redact_value(response) != response:
                self.stats.add("withheld")
                return
            request = redact_value(request)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"format": CACHE_FORMAT, "key": key, "request": request, "response": response},
                          ensure_ascii=False, default=str)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stats.add("writes")
