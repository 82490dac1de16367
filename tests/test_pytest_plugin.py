"""The pytest plugin: scenario collection, trials, failures, -x, -k, fixtures, xdist, --evalkit-out."""

from __future__ import annotations

import json
import textwrap

# Imported here so in-process inner sessions reuse them: numpy cannot be imported twice in
# one process, and pytester unloads what an inner session imported.
import numpy  # noqa: F401
import pandas  # noqa: F401
import pandas.core.arrays.arrow.extension_types  # noqa: F401  (registers pyarrow extension types once)
import pyarrow  # noqa: F401
import pytest

import evalkit.reports.junit  # noqa: F401
import evalkit.reports.markdown  # noqa: F401
import evalkit.run.runfiles  # noqa: F401
import evalkit.run.runner  # noqa: F401
import evalkit.run.scoring  # noqa: F401

pytest_plugins = ["pytester"]

# Inner sessions: no plugins whose start-up warnings would trip `filterwarnings = error`,
# and none of the slow-to-import ones (deepeval's is tested on its own below).
INI = """\
[pytest]
addopts = -p no:asyncio -p no:benchmark -p no:cacheprovider -p no:deepeval -p no:hypothesispytest
"""


@pytest.fixture(autouse=True)
def _inner_ini(pytester):
    pytester.makeini(INI)

SUITE = """\
name: mini
agent: evalkit.testing.agents:EchoAgent
trials: 2
"""

SCENARIOS = """\
scenarios:
  - id: echo-ok
    title: Echo says hello back
    tags: [smoke]
    user:
      script:
        - say: hello
          expect:
            - said: "You said: hello"
  - id: echo-bad
    title: Expects something the echo agent never says
    tags: [broken]
    user:
      script:
        - hello
        - say: second message
          expect:
            - said: "refund issued"
  - id: no-judges
    user:
      script: [hi]
"""


@pytest.fixture()
def suite_dir(pytester):
    pytester.makefile(".yaml", **{"support/suite": SUITE, "support/basic": SCENARIOS})
    pytester.makefile(".yaml", **{"unrelated/config": "key: value\nlist: [1, 2]\n"})
    return pytester.path / "support"


def test_collects_each_scenario_and_trial(pytester, suite_dir):
    result = pytester.runpytest("support", "--collect-only", "-q")
    out = result.stdout.str()
    for sid in ("echo-ok", "echo-bad", "no-judges"):
        for trial in (0, 1):
            assert f"support/basic.yaml::{sid}[trial-{trial}]" in out
    assert "unrelated" not in out
    result = pytester.runpytest("support", "--collect-only", "-q", "--evalkit-trials", "1")
    assert "[trial-1]" not in result.stdout.str()


def test_unrelated_yaml_is_never_collected(pytester, suite_dir):
    result = pytester.runpytest("unrelated", "--collect-only", "-q")
    assert "no tests collected" in result.stdout.str() or result.ret == 5


def test_run_reports_failures_with_verdicts_and_transcript(pytester, suite_dir):
    result = pytester.runpytest("support")
    result.assert_outcomes(passed=2, failed=2, skipped=2)
    out = result.stdout.str()
    assert "scenario echo-bad trial 0 (Expects something the echo agent never says)" in out
    assert "FAILED said at turn 2: expected the agent to say 'refund issued'" in out
    assert ">> [2] user: second message" in out
    assert ">> [2] agent" in out and "You said: second message" in out
    assert "[1] user: hello" in out  # the exchange before the failing one
    assert "no deterministic verdict ran" in pytester.runpytest("support", "-rs").stdout.str()


def test_x_stops_at_first_failure_and_k_selects_by_name_or_tag(pytester, suite_dir):
    result = pytester.runpytest("support", "-x", "-k", "echo")
    result.assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest("support", "-k", "smoke")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest("support", "-k", "echo-bad and trial-1")
    result.assert_outcomes(failed=1)


def test_standalone_scenario_file_needs_an_agent(pytester):
    pytester.makefile(".scenario.yaml", single="id: lone\nuser:\n  script:\n    - say: ping\n      expect: [{said: ping}]\n")
    result = pytester.runpytest("single.scenario.yaml")
    result.assert_outcomes(failed=1)
    assert "evalkit: error: agent: no agent: pass --evalkit-agent SPEC" in result.stdout.str()
    result = pytester.runpytest("single.scenario.yaml", "--evalkit-agent", "evalkit.testing.agents:EchoAgent")
    result.assert_outcomes(passed=1)


def test_broken_scenario_file_is_a_one_line_collection_error(pytester, suite_dir):
    pytester.makefile(".yaml", **{"support/broken": "scenarios:\n  - id: x\n    usr: {script: [hi]}\n"})
    result = pytester.runpytest("support")
    out = result.stdout.str()
    assert "ERROR collecting support/broken.yaml" in out
    assert "broken.yaml:3: usr: unknown field 'usr' (did you mean 'user'?)" in out
    assert "Traceback" not in out
    result.assert_outcomes(errors=1)
    # The other files still run when the user asks pytest to go on.
    result = pytester.runpytest("support", "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, failed=2, skipped=2, errors=1)


def test_run_conversation_fixture(pytester):
    pytester.makepyfile(
        test_conv=textwrap.dedent(
            """
            import pytest
            from evalkit.core.errors import JudgeSpecError
            from evalkit.integrations.pytest_plugin import assert_conversation_passed
            from evalkit.testing.agents import EchoAgent, ScriptedAgent


            def test_echo(run_conversation):
                result = run_conversation(EchoAgent, script=["hi", "bye"], judges=[{"said": "You said: bye"}])
                assert result.passed is True
                assert result.transcript.scenario_id == "test_echo"
                assert len(result.transcript.agent_turns) == 2


            def test_spec_string_and_failure(run_conversation):
                result = run_conversation(
                    "evalkit.testing.agents:EchoAgent",
                    script=[{"say": "where is my order?", "expect": [{"tool_called": "check_order_status"}]}],
                )
                assert result.passed is False
                assert_conversation_passed(result)


            def test_bad_judge_is_misuse(run_conversation):
                with pytest.raises(JudgeSpecError, match="unknown judge"):
                    run_conversation(EchoAgent, script=["hi"], judges=["no_such_judge"])


            def test_agent_object(run_conversation):
                agent = ScriptedAgent(replies=["Your order shipped."])
                result = run_conversation(agent, script=["status?"], judges=[{"said": "shipped"}])
                assert result.passed and agent.calls == 1
            """
        )
    )
    result = pytester.runpytest("test_conv.py")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "FAILED tool_called at turn 1: expected check_order_status" in out
    assert ">> [1] user: where is my order?" in out


def test_deepeval_plugin_is_unregistered_and_blocked(monkeypatch):
    import pluggy

    from evalkit.integrations import pytest_plugin

    monkeypatch.delenv("EVALKIT_KEEP_DEEPEVAL_PLUGIN", raising=False)
    monkeypatch.delenv("DEEPEVAL_TELEMETRY_OPT_OUT", raising=False)

    class FakeDeepevalPlugin:
        pass

    pm = pluggy.PluginManager("pytest")
    pm.register(FakeDeepevalPlugin(), name="deepeval")
    pytest_plugin.pytest_addhooks(pm)
    assert pm.get_plugin("deepeval") is None and pm.is_blocked("deepeval")
    import os

    assert os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] == "YES"
    # Loaded after us: blocked, so pytest never imports it.
    pm2 = pluggy.PluginManager("pytest")
    pytest_plugin.pytest_addhooks(pm2)
    assert pm2.is_blocked("deepeval")
    # Opt-out for teams that use deepeval's own pytest integration.
    monkeypatch.setenv("EVALKIT_KEEP_DEEPEVAL_PLUGIN", "1")
    pm3 = pluggy.PluginManager("pytest")
    pytest_plugin.pytest_addhooks(pm3)
    assert not pm3.is_blocked("deepeval")


def test_plugin_is_active_in_inner_sessions(pytester):
    pytester.makepyfile(
        test_active="""
        def test_active(request, run_conversation):
            assert request.config.pluginmanager.has_plugin("evalkit")
            assert not request.config.pluginmanager.has_plugin("deepeval")
        """
    )
    pytester.runpytest("test_active.py").assert_outcomes(passed=1)


def test_evalkit_out_writes_a_run_folder(pytester, suite_dir):
    out = pytester.path / "run"
    pytester.runpytest("support", f"--evalkit-out={out}", "--evalkit-trials", "1")
    lines = (out / "conversations.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["transcript"]["scenario_id"] for x in lines) == ["echo-bad", "echo-ok", "no-judges"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_conversations"] == 3
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_xdist_runs_items_in_workers(pytester, suite_dir):
    pytest.importorskip("xdist")
    out = pytester.path / "run"
    result = pytester.runpytest_subprocess("support", "-n", "2", f"--evalkit-out={out}")
    result.assert_outcomes(passed=2, failed=2, skipped=2)
    assert len((out / "conversations.jsonl").read_text().splitlines()) == 6


@pytest.mark.parametrize(
    "user_ini",
    [
        "",  # a user project with no pytest configuration at all
        # a strict user project: every warning an error (pytest-asyncio wants its loop scope set there)
        "[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n",
    ],
    ids=["no-config", "strict-config"],
)
def test_plugin_works_with_the_plugins_deepeval_installs(tmp_path, user_ini):
    """In a user's own project, pytest-asyncio, -rerunfailures and -repeat stay loaded (evalkit's
    own test configuration turns them off; a user's does not) and the scenarios still run."""
    import subprocess
    import sys

    project = tmp_path / "project"
    (project / "support").mkdir(parents=True)
    (project / "support" / "suite.yaml").write_text(SUITE)
    (project / "support" / "basic.yaml").write_text(SCENARIOS)
    if user_ini:
        (project / "pytest.ini").write_text(user_ini)
    else:
        (project / "pytest.ini").write_text("[pytest]\n")  # stops rootdir search at the project
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "support", "-p", "no:cacheprovider", "--reruns", "0", "-rA"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in out, out[-3000:]
    assert "asyncio" in out and "rerunfailures" in out, out[:2000]  # the plugins really were active
    assert "PASSED support/basic.yaml::echo-ok[trial-0]" in out, out[-3000:]
    assert "FAILED support/basic.yaml::echo-bad[trial-1]" in out, out[-3000:]
    assert proc.returncode == 1, out[-3000:]


def test_bundled_suite_runs_as_tests_from_the_repository():
    """`python -m pytest datasets/support` from the repository root, with the project's own
    pytest configuration (which once made pytest-asyncio's start-up warning an INTERNALERROR)."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "datasets/support", "-q", "-k", "faq"],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in out, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    assert " passed" in out.splitlines()[-1], out[-1000:]
