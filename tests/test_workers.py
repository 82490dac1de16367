"""``evalkit run --workers N``: the same results as one process, a dead worker loses nothing and
doubles nothing, Ctrl-C and SIGKILL of the driver leave a resumable run, limits stay global."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _workers_helpers import (
    ROOT,
    journal,
    keys,
    start_run,
    stderr,
    stop_mid_run,
    verdicts,
    wait_gone,
    write_suite,
)

from evalkit.core.errors import ConfigError
from evalkit.run.runner import RunConfig, Runner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and /proc are POSIX"),
]


def run(**kwargs) -> object:
    config = RunConfig(progress=False, handle_signals=False, seed=3, **kwargs)
    return Runner(config).run_sync()


def test_workers_give_the_same_verdicts_as_one_process(tmp_path: Path):
    suite = ROOT / "datasets" / "support"
    common = dict(suite=[suite], tags=["returns", "whatsapp"], trials=2)
    one = run(out=tmp_path / "one", **common)
    two = run(out=tmp_path / "two", workers=2, concurrency=4, **common)
    a, b = journal(tmp_path / "one"), journal(tmp_path / "two")
    assert len(a) == len(b) == one.manifest.n_planned and len(a) >= 40
    assert verdicts(a) == verdicts(b)
    turns = {(r["transcript"]["scenario_id"], r["transcript"]["trial"]): [t.get("content") for t in r["transcript"]["turns"]]
             for r in a}
    assert turns == {(r["transcript"]["scenario_id"], r["transcript"]["trial"]): [t.get("content") for t in r["transcript"]["turns"]]
                     for r in b}
    assert two.manifest.status == "complete"
    assert (two.manifest.extra["backend"], two.manifest.extra["workers"]) == ("processes", 2)
    assert (one.manifest.extra["backend"], one.manifest.extra["workers"]) == ("in-process", 1)
    # The tables are written by the driver from the same conversations.
    assert (tmp_path / "two" / "results.parquet").is_file() and (tmp_path / "two" / "report.html").is_file()


def test_a_killed_worker_loses_nothing_and_doubles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # w007 kills its worker process the first time it plays; w011 kills it every time.
    suite, agent = write_suite(tmp_path, 40, die_once=("w007",), die_always=("w011",))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run(suite=[suite], agent=agent, out=tmp_path / "run", workers=2, concurrency=4)
    counts = keys(tmp_path / "run")
    assert len(counts) == 40 and set(counts.values()) == {1}  # every item, exactly once
    by_id = {r["transcript"]["scenario_id"]: r for r in journal(tmp_path / "run")}
    assert by_id["w007"]["transcript"]["error"] is None  # played again by a fresh worker
    dead = by_id["w011"]["transcript"]
    assert dead["outcome"] == "error" and "worker process died" in dead["error"]
    others = [r for sid, r in by_id.items() if sid != "w011"]
    assert all(r["transcript"]["error"] is None for r in others)
    passed = [c.passed for c in result.conversations if c.transcript.scenario_id != "w011"]
    assert passed.count(True) == 20 and passed.count(False) == 19  # the even ones say "Done"
    assert result.manifest.status == "complete"


def test_ctrl_c_stops_every_worker_and_the_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    suite, agent = write_suite(tmp_path, 60, pause=0.2)
    out = tmp_path / "run"
    proc = start_run(tmp_path, suite, agent, out, "--workers", "2", "--concurrency", "2")
    workers = stop_mid_run(proc, out, 6, signal.SIGINT)
    assert proc.returncode == 130, stderr(out)
    t0 = time.monotonic()
    assert len(workers) >= 2 and not wait_gone(workers), "a worker outlived the stopped run"
    print(f"workers gone in {time.monotonic() - t0:.1f}s")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    first = keys(out)
    assert 6 <= len(first) < 60 and set(first.values()) == {1}
    monkeypatch.syspath_prepend(str(tmp_path))
    resumed = run(suite=[suite], agent=agent, out=out, resume=True, workers=2, concurrency=8)
    assert resumed.manifest.status == "complete"
    counts = keys(out)
    assert len(counts) == 60 and set(counts.values()) == {1}


def test_sigkill_of_the_driver_leaves_no_worker_and_a_resumable_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    suite, agent = write_suite(tmp_path, 60, pause=0.2)
    out = tmp_path / "run"
    proc = start_run(tmp_path, suite, agent, out, "--workers", "2", "--concurrency", "2")
    workers = stop_mid_run(proc, out, 6, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) >= 2 and not wait_gone(workers), "a worker outlived its killed driver"
    assert 6 <= len(keys(out)) < 60
    monkeypatch.syspath_prepend(str(tmp_path))
    resumed = run(suite=[suite], agent=agent, out=out, resume=True)  # in one process this time
    assert resumed.manifest.status == "complete" and resumed.manifest.extra["backend"] == "in-process"
    counts = keys(out)
    assert len(counts) == 60 and set(counts.values()) == {1}


LLM_SCENARIO = textwrap.dedent("""
    id: llm-{i}
    user:
      persona:
        goal: {{description: Find out the opening hours number {i}, intent: faq}}
        max_turns: 6
""")


def test_model_rate_limits_are_global_across_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two workers share the simulator's 480 requests a minute (8 a second): the fake model
    server never sees more than the limit allows, though each worker alone could go that fast."""
    from evalkit.cli._model_options import build_llm_for_run, build_model_roles
    from evalkit.testing.fake_openai import FakeOpenAIServer, Rule

    suite = tmp_path / "suite"
    suite.mkdir()
    for i in range(16):
        (suite / f"llm{i}.yaml").write_text(LLM_SCENARIO.format(i=i))
    _, agent = write_suite(tmp_path / "agent", 1, pause=0)
    monkeypatch.syspath_prepend(str(tmp_path / "agent"))
    for var in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_SIMULATOR_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)

    def customer(req):  # three user turns, then done
        said = [m for m in req.messages if m["role"] == "assistant"]
        return {"message": f"question {len(said)}", "end": "continue" if len(said) < 3 else "goal_met"}

    with FakeOpenAIServer(rules=[Rule(customer, schema="customer_turn")]) as srv:
        roles = build_model_roles(simulator_model="fake-model", base_url=srv.base_url)
        monkeypatch.setenv("EVALKIT_SIMULATOR_RPM", "480")
        limited = build_model_roles(simulator_model="fake-model", base_url=srv.base_url)
        assert limited.simulator is not None and limited.simulator.rpm == 480 and roles.simulator.rpm is None
        llm = build_llm_for_run(limited, cache="off")
        done = run(suite=[suite], agent=agent, out=tmp_path / "run", simulator="llm", llm=llm, workers=2,
                   concurrency=8, trials=1)
        stamps = sorted(r.at for r in srv.chat_requests if r.schema_name == "customer_turn")
        asked = sum(1 for r in srv.chat_requests if r.schema_name is not None)  # the preflight has none
    assert done.manifest.status == "complete"
    assert len(stamps) == 16 * 4
    # Each worker gets 240 a minute: a leaky bucket of 4 a second holding one second's worth.
    # Over w seconds both together send at most 8*w + 8 (+4, half a second, for the server's
    # clock, which a busy machine's stalls can bunch); with the limit not shared it would be
    # 16*w + 16 (64 requests in about 3 s). The whole run is the window.
    span = stamps[-1] - stamps[0]
    assert len(stamps) <= 8 * span + 12, f"{len(stamps)} requests in {span:.2f}s"
    assert done.manifest.extra["llm_usage"]["simulator"]["calls"] == asked  # the workers' calls, counted


def test_a_limit_smaller_than_the_workers_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from evalkit.cli._model_options import build_llm_for_run, build_model_roles
    from evalkit.run.backends import LLMRecipe

    monkeypatch.setenv("EVALKIT_JUDGE_RPM", "3")
    llm = build_llm_for_run(build_model_roles(judge_model="m", base_url="http://127.0.0.1:9/v1"), cache="off")
    with pytest.raises(ConfigError, match=r"judge\.rpm.*cannot be shared by 4 workers"):
        LLMRecipe.of(llm, 4)
    recipe = LLMRecipe.of(llm, 2)
    assert recipe is not None and recipe.clients[0].settings.rpm == 1


def test_ray_address_is_checked(tmp_path: Path):
    from evalkit.run.backends import ray_address

    assert ray_address("local") is None and ray_address("auto") == "auto"
    assert ray_address("10.0.0.5:6379") == "10.0.0.5:6379" and ray_address("ray://head:10001") == "ray://head:10001"
    with pytest.raises(ConfigError, match="not a Ray address"):
        ray_address("my-suite")


def test_cli_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    from _recorded_helpers import make_cli

    invoke = make_cli(monkeypatch, capsys)
    helped = invoke("run", "--help")
    assert "--workers" in helped.stdout and "--ray [ADDRESS]" in helped.stdout
    bad = invoke("run", str(tmp_path), "--ray", "no-such-place")
    assert bad.returncode == 2 and "--ray: 'no-such-place' is not a Ray address" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    zero = invoke("run", str(tmp_path), "--workers", "0")
    assert zero.returncode == 2 and "--workers" in zero.stderr


def test_ray_flag_followed_by_the_suite_means_a_local_ray(tmp_path: Path):
    from evalkit.cli.run import _ray_or_suite

    suite = tmp_path / "suite"
    suite.mkdir()
    assert _ray_or_suite((), str(suite)) == ((suite,), "local")
    assert _ray_or_suite((suite,), "auto") == ((suite,), "auto")


def test_a_setup_that_cannot_reach_the_workers_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    suite, agent = write_suite(tmp_path, 2)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="cannot be sent to worker processes"):
        run(suite=[suite], agent=agent, out=tmp_path / "run", workers=2,
            simulator_factory=lambda scenario, **kw: None)  # a lambda does not pickle


def test_a_batch_is_journaled_with_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import os

    from evalkit.core.results import ConversationResult, RunManifest
    from evalkit.core.transcript import Transcript
    from evalkit.run.runfolder import Existing, RunFolder

    syncs = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd))[1])
    with RunFolder(tmp_path / "run").claim(Existing.new) as folder:
        folder.begin(RunManifest(run_id="r", evalkit_version="x", suites=[], seed=0, status="running"))
        before = len(syncs)
        written = folder.append_many(
            [ConversationResult(run_id="r", transcript=Transcript(scenario_id="s", trial=i)) for i in range(8)]
        )
        assert len(syncs) - before == 1 and [r.transcript.trial for r in written] == list(range(8))
    assert [r["transcript"]["trial"] for r in journal(tmp_path / "run")] == list(range(8))
