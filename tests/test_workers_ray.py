"""``evalkit run --ray``: a local Ray with 2 CPUs plays the same items as one process, a dead
actor loses nothing and doubles nothing, a run begun with worker processes resumes on Ray, and
a cached re-run makes no model call. Marked ``ray``: ``pytest -m ray`` runs just these."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

import pytest
from _workers_helpers import ROOT, journal, keys, start_run, stop_mid_run, verdicts, write_suite

from evalkit.run.runner import RunConfig, Runner

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'evalkit-support[ray]')")

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray (2 CPUs) for the module: the runner uses the Ray it finds initialised and
    leaves it running. The test folders go on the workers' path as the driver's own code."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def run(**kwargs) -> object:
    config = RunConfig(progress=False, handle_signals=False, seed=3, **kwargs)
    return Runner(config).run_sync()


def test_ray_gives_the_same_verdicts_as_one_process(tmp_path: Path):
    common = dict(suite=[ROOT / "datasets" / "support"], tags=["returns"], trials=2)
    one = run(out=tmp_path / "one", **common)
    on_ray = run(out=tmp_path / "ray", ray="local", concurrency=4, **common)
    a, b = journal(tmp_path / "one"), journal(tmp_path / "ray")
    assert len(a) == len(b) == one.manifest.n_planned and len(a) >= 30
    assert verdicts(a) == verdicts(b)
    assert on_ray.manifest.status == "complete"
    assert (on_ray.manifest.extra["backend"], on_ray.manifest.extra["workers"]) == ("ray", 2)  # one per CPU


def test_a_dead_actor_loses_nothing_and_doubles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    suite, agent = write_suite(tmp_path, 30, die_once=("w004", "w017"))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run(suite=[suite], agent=agent, out=tmp_path / "run", ray="local", workers=2, concurrency=4)
    counts = keys(tmp_path / "run")
    assert len(counts) == 30 and set(counts.values()) == {1}
    assert all(c.transcript.error is None for c in result.conversations)
    assert [c.passed for c in result.conversations].count(True) == 15
    assert len(list((tmp_path / "flags").iterdir())) == 2  # both actors really died once


def test_a_run_begun_with_worker_processes_resumes_on_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    suite, agent = write_suite(tmp_path, 40, pause=0.2)
    out = tmp_path / "run"
    proc = start_run(tmp_path, suite, agent, out, "--workers", "2", "--concurrency", "2")
    stop_mid_run(proc, out, 4, signal.SIGKILL)
    assert 4 <= len(keys(out)) < 40
    monkeypatch.syspath_prepend(str(tmp_path))
    resumed = run(suite=[suite], agent=agent, out=out, resume=True, ray="local", concurrency=8)
    assert resumed.manifest.status == "complete" and resumed.manifest.extra["backend"] == "ray"
    counts = keys(out)
    assert len(counts) == 40 and set(counts.values()) == {1}


SCENARIO = textwrap.dedent("""
    id: hours-{i}
    user:
      persona:
        goal: {{description: Find out the opening hours, intent: faq}}
        max_turns: 4
    expect:
      - rubric: {{criteria: The agent answers the question asked.}}
""")


def test_a_cached_rerun_on_ray_makes_no_model_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from evalkit.cli._model_options import build_llm_for_run, build_model_roles
    from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

    suite = tmp_path / "suite"
    suite.mkdir()
    for i in range(6):
        (suite / f"h{i}.yaml").write_text(SCENARIO.format(i=i))
    _, agent = write_suite(tmp_path / "agent", 1, pause=0)
    monkeypatch.syspath_prepend(str(tmp_path / "agent"))
    for var in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_SIMULATOR_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)

    def customer(req):
        said = [m for m in req.messages if m["role"] == "assistant"]
        return {"message": "When are you open?", "end": "continue"} if not said else \
            {"message": "Thanks!", "end": "goal_met"}

    rules = [
        Rule(customer, schema="customer_turn"),
        Rule(lambda req: {"reason": "answered", "score": 4}, schema="rubric_verdict"),
        Rule(lambda req: {"reason": "goal met", "score": 5}, schema="goal_completion_verdict"),
    ]
    with FakeOpenAIServer(rules=rules) as srv:
        def once(out: str, cache: str):
            roles = build_model_roles(model="fake-model", base_url=srv.base_url)
            llm = build_llm_for_run(roles, cache=cache, cache_dir=tmp_path / "cache")
            return run(suite=[suite], agent=agent, out=tmp_path / out, simulator="llm", llm=llm, ray="local",
                       trials=2, preflight=False)

        first = once("first", "read-write")
        asked = len(srv.chat_requests)
        assert asked >= 12 and first.manifest.cache["writes"] >= 12  # the workers wrote the shared cache
        again = once("again", "read-only")
        assert len(srv.chat_requests) == asked  # every answer came from the cache
    assert again.manifest.cache["hits"] == asked and again.manifest.cache["misses"] == 0
    assert verdicts(journal(tmp_path / "again")) == verdicts(journal(tmp_path / "first"))
    assert all(v.score == 4 for c in again.conversations for v in c.verdicts if v.judge == "rubric")
