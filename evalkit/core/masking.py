"""Secrets evalkit knows about, and the masking that keeps them out of everything it writes.

A :class:`Secrets` value holds the configured secrets of one run: API keys (``OPENAI_API_KEY``,
``EVALKIT_API_KEY``, ``EVALKIT_<ROLE>_API_KEY``), the values of the environment variables
named in ``EVALKIT_SECRET_ENV`` (comma-separated: tokens an agent reads, a proxy password),
and credentials written into URLs (``https://user:pass@host``). ``mask_*`` replace each by
``***`` wherever it appears; the user-info part of any URL (``user:pass@``) is masked too,
whoever wrote it. Two places call it: the run folder (journal, manifest, everything derived
from them) and the model response cache, so a model endpoint echoing the ``Authorization``
header, or an agent repeating its token, never reaches a file.

Written here rather than taken from a library: the job is an exact-value replace over a
JSON-like value plus one URL pattern, and no masking library knows the run's own secrets.
Values shorter than :data:`MIN_SECRET_LENGTH` are masked only where they sit in a URL
(masking every ``pass`` in every transcript would mangle the data).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRET_ENV_VAR", "Secrets", "mask_url"]

MASK = "***"
MIN_SECRET_LENGTH = 6
# Names of further environment variables whose values are secrets (comma-separated).
SECRET_ENV_VAR = "EVALKIT_SECRET_ENV"
# Always secrets when set: the model keys evalkit itself reads, and the credentials in the
# base URLs it reads.
_KEY_VARS = ("OPENAI_API_KEY", "EVALKIT_API_KEY", "EVALKIT_SIMULATOR_API_KEY", "EVALKIT_JUDGE_API_KEY",
             "EVALKIT_AGENT_API_KEY")
_URL_VARS = ("OPENAI_BASE_URL", "EVALKIT_BASE_URL", "EVALKIT_SIMULATOR_BASE_URL", "EVALKIT_JUDGE_BASE_URL",
             "EVALKIT_AGENT_BASE_URL")

# scheme://user[:password]@ : the user-info of a URL, wherever it appears in text.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#@\"'<>\\]+)@")


def mask_url(url: str) -> str:
    """``url`` with its user-info (``user:pass@``) replaced by ``***@``."""
    return _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", url)


def _url_credentials(text: str) -> list[str]:
    """The secrets written into the URLs in ``text`` (decoded and as written): the password, or
    a lone user part (``https://TOKEN@host`` is a token). A user name beside a password is a
    name, not a secret: masking "evalkit" everywhere would mangle every file (the URL's own
    user-info is masked whole anyway)."""
    found: list[str] = []
    for m in _URL_USERINFO.finditer(text):
        user, _, password = m.group(2).partition(":")
        secret = password or user
        if secret:
            found += [secret, unquote(secret)]
        if password:  # as an HTTP client sends them: "Authorization: Basic <base64>"
            found.append(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode())
    try:
        parts = urlsplit(text)
        lone = parts.password or parts.username
        if lone:
            found.append(lone)
    except ValueError:
        pass
    return found


@dataclass(frozen=True)
class Secrets:
    """The secret values of one run; ``mask_*`` hide them (and URL credentials) in what is written."""

    values: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, names: Iterable[str] = ()) -> Secrets:
        """The model keys evalkit reads, plus the variables ``EVALKIT_SECRET_ENV`` (and ``names``) list."""
        env = os.environ if env is None else env
        wanted = [*_KEY_VARS, *names, *(n.strip() for n in env.get(SECRET_ENV_VAR, "").split(","))]
        return cls().plus(*(env.get(name) for name in wanted if name)).plus_urls(*(env.get(n) for n in _URL_VARS))

    def plus(self, *values: str | None) -> Secrets:
        """These secrets and ``values`` (a URL among them also gives its credentials)."""
        new = set(self.values)
        for v in values:
            if v:
                new.add(v)
                new.update(_url_credentials(v))
        return Secrets(frozenset(new))

    def plus_urls(self, *urls: str | None) -> Secrets:
        """These secrets and the credentials written into ``urls`` (not the URLs themselves)."""
        new = set(self.values)
        for url in urls:
            if url:
                new.update(_url_credentials(url))
        return Secrets(frozenset(new))

    def __bool__(self) -> bool:
        return bool(self.values)

    @cached_property
    def _ordered(self) -> list[str]:
        # Longest first, so a secret containing another is masked whole.
        return sorted((v for v in self.values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)

    @cached_property
    def _needles(self) -> list[str]:
        # Each secret as written and as it appears inside a JSON string.
        return sorted({n for v in self._ordered for n in (v, json.dumps(v, ensure_ascii=False)[1:-1])})

    def mask_text(self, text: str) -> str:
        """``text`` with every secret and every URL's user-info replaced by ``***``."""
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_url(text) if "@" in text else text

    def hits(self, serialized: str) -> bool:
        """Does ``serialized`` (JSON text) hold a secret or URL credentials? A cheap pre-check."""
        if "@" in serialized and _URL_USERINFO.search(serialized):
            return True
        return any(n in serialized for n in self._needles)

    def mask_value(self, value: Any) -> Any:
        """A JSON-like value with every string (mapping keys too) masked."""
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            return {(self.mask_text(k) if isinstance(k, str) else k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        return value
