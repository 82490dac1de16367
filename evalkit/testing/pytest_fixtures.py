"""pytest fixtures for offline model tests.

Import them in your ``conftest.py``::

    from evalkit.testing.pytest_fixtures import fake_openai  # noqa: F401

then use ``fake_openai`` in a test: a running :class:`FakeOpenAIServer` (configure it with
``fake_openai.add_rule(...)`` / ``fake_openai.enqueue(...)``; point clients at
``fake_openai.base_url``). It is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evalkit.testing.fake_openai import FakeOpenAIServer

__all__ = ["fake_openai"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server on 127.0.0.1, fresh for each test."""
    with FakeOpenAIServer() as server:
        yield server
