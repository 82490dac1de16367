"""Two runs in one process see none of each other's state (issue #12 §5)."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest

from evalkit.run.runner import RunConfig, Runner
from evalkit.scenarios import load_suite

AGENT = textwrap.dedent('''
    import threading

    _LOCAL = threading.local()
    RUN = ["?"]
    SEEN = []  # (run, what this worker thread remembered from an earlier call)

    class Agent:
        def respond(self, ctx):  # sync: evalkit calls it on a worker thread
            SEEN.append((RUN[0], getattr(_LOCAL, "run", None)))
            _LOCAL.run = RUN[0]
            return "Hello, how can I help?"

    def create():
        return Agent()
''')


@pytest.fixture()
def agent_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "isolation_agent.py").write_text(AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    import isolation_agent

    yield isolation_agent


def _suite(tmp_path: Path) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    steps = '["hi", "where is my order?", "thanks"]'
    (folder / "s.yaml").write_text("scenarios:\n" + "".join(
        f"  - id: s{i}\n    user: {{script: {steps}}}\n" for i in range(6)))
    return folder


def _agent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "evalkit-agent"]


def test_worker_threads_belong_to_one_run(tmp_path: Path, agent_module) -> None:
    suite = load_suite([_suite(tmp_path)])
    for run in ("one", "two"):
        agent_module.RUN[0] = run
        Runner(RunConfig(suite=suite, agent="isolation_agent:create", out=tmp_path / run, concurrency=2,
                         progress=False, handle_signals=False)).run_sync()
        deadline = time.monotonic() + 5
        while _agent_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _agent_threads() == []  # the run's idle workers ended with it
    seen = agent_module.SEEN
    assert len(seen) == 36
    # Threads are reused within a run (so a thread remembers the run it works for) ...
    assert ("one", "one") in seen and ("two", "two") in seen
    # ... and never across runs: nothing run two's agent saw on its threads came from run one.
    assert {before for run, before in seen if run == "two"} <= {None, "two"}
