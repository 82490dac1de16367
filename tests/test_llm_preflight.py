"""Model flags reach model-backed agents as configuration; models are checked before a run;
a run whose every conversation failed to start is a configuration error (issue #11, 2.1-2.2)."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from pathlib import Path

import pytest
from _recorded_helpers import make_cli, one_file_suite

from evalkit.agents.base import AgentConfig, SessionInfo
from evalkit.agents.python import PythonAgentProvider
from evalkit.llm.settings import ModelSettings
from evalkit.testing.fake_openai import Failure, FakeOpenAIServer, Rule

KEY = "sk-preflight-secret-4242"
REF_LLM = "reference_agent:create_agent?engine=llm&prompt=support_v1"


@pytest.fixture()
def evalkit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """``evalkit(*args)`` -> CompletedProcess, in this process, with no model configured by
    the environment (the flags alone decide)."""
    monkeypatch.chdir(tmp_path)
    return make_cli(monkeypatch, capsys, unset=("EVALKIT_", "OPENAI_", "REFERENCE_AGENT_"))


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    return one_file_suite(tmp_path / "suite", """
        scenarios:
          - id: hours
            user: {script: ["When are you open?"]}
          - id: returns
            user: {script: ["How long do I have to return something?"]}
    """)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 2.1: the model flags reach the agent ------------------------------------------------------


def test_agent_model_flags_reach_the_reference_agent_llm_engine(evalkit, suite: Path, tmp_path: Path) -> None:
    before = dict(os.environ)
    with FakeOpenAIServer() as srv:
        out = evalkit("run", str(suite), "--variant", f"v1={REF_LLM}", "--agent-model", "fake-model",
                      "--base-url", srv.base_url, "--out", str(tmp_path / "r"), "--no-progress")
        agent_calls = [r for r in srv.chat_requests if r.tool_names]  # the engine offers its shop tools
    assert out.returncode == 0, out.stderr
    # The flags travelled as configuration (AgentConfig): the process environment is untouched.
    assert {k: v for k, v in os.environ.items() if not k.startswith("DEEPEVAL_")} == {
        k: v for k, v in before.items() if not k.startswith("DEEPEVAL_")}
    assert agent_calls and {r.body["model"] for r in agent_calls} == {"fake-model"}
    rows = [json.loads(line) for line in (tmp_path / "r" / "conversations.jsonl").read_text().splitlines()]
    assert [r["transcript"]["error"] for r in rows] == [None, None]
    assert all(r["transcript"]["turns"][1]["content"].startswith("fake reply to: ") for r in rows)


def test_the_spec_wins_over_the_run_model_and_the_key_travels_with_the_model(monkeypatch) -> None:
    from reference_agent.adapter import _from_config

    run_model = ModelSettings(model="run-model", base_url="http://127.0.0.1:1/v1", api_key=KEY)
    config = AgentConfig(model=run_model)
    assert _from_config({"prompt": "support_v1"}, config) == {
        "prompt": "support_v1", "model": "run-model", "base_url": "http://127.0.0.1:1/v1", "api_key": KEY,
    }
    # A model named in the spec keeps its own endpoint and key (never the run's key).
    assert _from_config({"model": "spec-model"}, config) == {"model": "spec-model"}
    assert _from_config({"model": "spec-model"}, None) == {"model": "spec-model"}


def test_agent_config_goes_only_to_factories_that_name_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cfg_agents.py").write_text(textwrap.dedent("""
        def wants(session=None, agent_config=None):
            return {"config": agent_config}

        def plain(session=None, **kwargs):
            return {"kwargs": kwargs}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = AgentConfig(model=ModelSettings(model="m"))
    info = SessionInfo(session_id="s", scenario_id="x")
    wants = PythonAgentProvider("cfg_agents:wants", config=config)
    assert wants.new_session(info)["config"] is config
    assert wants.model_settings() == [config.model]
    plain = PythonAgentProvider("cfg_agents:plain", config=config)
    assert plain.new_session(info) == {"kwargs": {}}
    assert plain.model_settings() == []  # it cannot use the model: nothing to check


def test_openai_chat_agent_follows_base_url_without_touching_the_environment(evalkit, suite, tmp_path) -> None:
    with FakeOpenAIServer() as srv:
        out = evalkit("run", str(suite), "--agent", "openai-chat:fake-model", "--base-url", srv.base_url,
                      "--out", str(tmp_path / "r"), "--no-progress")
        assert len(srv.chat_requests) == 2, out.stderr
    assert out.returncode == 0, out.stderr
    assert "EVALKIT_BASE_URL" not in os.environ


# -- 2.2: pre-flight ---------------------------------------------------------------------------


def test_missing_api_key_fails_before_the_run(evalkit, suite: Path, tmp_path: Path) -> None:
    out = evalkit("run", str(suite), "--agent", REF_LLM, "--agent-model", "gpt-4o-mini",
                  "--out", str(tmp_path / "r"), "--no-progress")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "evalkit: error: no API key for the agent model 'gpt-4o-mini': set OPENAI_API_KEY "
        "(or EVALKIT_AGENT_API_KEY), or point --base-url at a local server"
    ]
    assert not (tmp_path / "r").exists()  # nothing written


def test_unreachable_base_url_fails_before_the_run(evalkit, suite: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    out = evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--judge-model", "j",
                  "--base-url", url, "--out", str(tmp_path / "r"), "--no-progress")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"evalkit: error: cannot reach {url} for the judge model 'j' (")
    assert not (tmp_path / "r").exists()


def test_unknown_model_fails_and_a_refused_key_is_never_printed(evalkit, suite, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer(rules=[Rule(Failure("404"), model="gpt-5-typo"), Rule(Failure("401"), model="locked")],
                          models=["fake-model", "other"]) as srv:
        out = evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--simulator-model",
                      "gpt-5-typo", "--base-url", srv.base_url, "--out", str(tmp_path / "r"), "--no-progress")
        assert out.returncode == 2
        assert out.stderr.strip() == (
            f"evalkit: error: unknown simulator model 'gpt-5-typo' at {srv.base_url} (it lists: fake-model, other)"
        )
        out = evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--judge-model", "locked",
                      "--base-url", srv.base_url, "--out", str(tmp_path / "r"), "--no-progress")
        assert out.returncode == 2
        assert "refused the API key for the judge model 'locked' (HTTP 401)" in out.stderr
        assert KEY not in out.stderr + out.stdout
        # One check per distinct model: --model for every role is listed once, no chat call.
        before = len(srv.chat_requests)
        out = evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--model", "fake-model",
                      "--base-url", srv.base_url, "--out", str(tmp_path / "ok"), "--no-progress")
        assert out.returncode == 0, out.stderr
        assert len(srv.chat_requests) == before
        assert sum(1 for r in srv.requests if r.path.endswith("/models")) == 3
    assert not (tmp_path / "r").exists()


def test_a_model_served_under_any_name_passes_with_one_tiny_call(evalkit, suite, tmp_path) -> None:
    # llama.cpp's server lists its model file but answers to any name: one 1-token call decides.
    with FakeOpenAIServer(models=["models/llama-3-8b.gguf"]) as srv:
        out = evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--judge-model", "local",
                      "--base-url", srv.base_url, "--out", str(tmp_path / "r"), "--no-progress")
        assert out.returncode == 0, out.stderr
        (probe,) = srv.chat_requests
        assert probe.body["max_tokens"] == 1 and probe.body["model"] == "local"


# -- 2.2: every conversation failed to start the same way --------------------------------------


def test_a_run_whose_every_conversation_failed_to_start_alike_is_a_config_error(evalkit, suite, tmp_path) -> None:
    # The reference agent's LLM engine with no model anywhere: each conversation fails to start.
    out = evalkit("run", str(suite), "--agent", REF_LLM, "--out", str(tmp_path / "r"), "--no-progress")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("evalkit: error: all 2 conversations failed the same way before the agent answered "
                           "once, so nothing was measured (a configuration problem, not a result): "
                           "creating the agent failed: ")
    assert "needs a model" in line
    assert (tmp_path / "r" / "conversations.jsonl").read_text().count("\n") == 2  # the data is kept


def test_score_checks_the_judge_model_first(evalkit, suite: Path, tmp_path: Path) -> None:
    assert evalkit("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--out", str(tmp_path / "r"),
                   "--no-progress").returncode == 0
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    out = evalkit("score", str(tmp_path / "r"), "--scenarios", str(suite), "--judge-model", "j", "--base-url", url)
    assert out.returncode == 2 and f"cannot reach {url} for the judge model 'j'" in out.stderr
    out = evalkit("score", str(tmp_path / "r"), "--scenarios", str(suite), "--judge-model", "j", "--base-url", url,
                  "--no-preflight")
    assert out.returncode == 0, out.stderr


def test_a_user_agent_missing_its_own_key_everywhere_is_a_config_error(evalkit, suite, tmp_path) -> None:
    """evalkit cannot check a model inside the user's agent; every conversation failing alike
    on the first message (here: a 401 from its endpoint) still reads as configuration."""
    with FakeOpenAIServer(default=Failure("401")) as srv:
        (tmp_path / "keyless_agent.py").write_text(textwrap.dedent(f"""
            import openai

            def create(session=None):
                class Agent:
                    def respond(self, ctx):
                        client = openai.OpenAI(base_url="{srv.base_url}", api_key="unset", max_retries=0)
                        answer = client.chat.completions.create(model="m", messages=[{{"role": "user",
                                                                 "content": ctx.message}}])
                        return answer.choices[0].message.content
                return Agent()
        """))
        out = evalkit("run", str(suite), "--agent", "keyless_agent:create", "--out", str(tmp_path / "r"),
                      "--no-progress")
    assert out.returncode == 2
    assert "nothing was measured" in out.stderr and "AuthenticationError" in out.stderr
    # Agents that answer and then fail are results: exit 0 (tests/test_core_cli.py).
