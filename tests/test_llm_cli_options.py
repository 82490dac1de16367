"""The model option group and the fake-server pytest fixture."""

from __future__ import annotations

import json
import urllib.request

import click
from click.testing import CliRunner

from evalkit.cli._model_options import build_llm_for_run, build_model_roles, model_options
from evalkit.llm import ModelClients
from evalkit.testing.pytest_fixtures import fake_openai  # noqa: F401 - the fixture under test


def test_options_build_roles_and_clients(tmp_path, monkeypatch):
    for var in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_SIMULATOR_MODEL", "EVALKIT_AGENT_MODEL",
                "EVALKIT_BASE_URL", "OPENAI_BASE_URL", "EVALKIT_CACHE", "EVALKIT_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"cheap": {"input": 1, "output": 2}}))
    seen = {}

    @click.command()
    @model_options
    def cmd(**kwargs):
        roles = build_model_roles(**kwargs)
        seen["roles"] = roles
        seen["llm"] = build_llm_for_run(roles, **kwargs)

    result = CliRunner().invoke(cmd, ["--model", "cheap", "--judge-model", "strong", "--base-url",
                                      "http://127.0.0.1:9/v1", "--cache", "read-only", "--cache-dir",
                                      str(tmp_path / "c"), "--prices", str(prices)])
    assert result.exit_code == 0, result.output
    llm = seen["llm"]
    assert isinstance(llm, ModelClients)
    assert llm.models() == {"simulator": "cheap @ http://127.0.0.1:9/v1", "judge": "strong @ http://127.0.0.1:9/v1",
                            "agent": "cheap @ http://127.0.0.1:9/v1"}
    assert llm.cache.mode == "read-only" and llm.judge.cache is llm.cache
    assert llm.agent.cache_reads is False and llm.judge.cache_reads is True  # the agent is never replayed
    assert llm.simulator.prices.cost("cheap", 1_000_000, 0) == 1.0
    assert llm.cache_stats() == {"hits": 0, "misses": 0, "writes": 0}

    result = CliRunner().invoke(cmd, [])
    assert result.exit_code == 0 and seen["llm"] is None  # nothing configured: offline
    result = CliRunner().invoke(cmd, ["--cache", "sometimes"])
    assert result.exit_code == 2


def test_fake_openai_fixture(fake_openai):  # noqa: F811
    fake_openai.add_rule("pong", contains="ping")
    req = urllib.request.Request(
        fake_openai.base_url + "/chat/completions",
        data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        body = json.load(resp)
    assert body["choices"][0]["message"]["content"] == "pong"
    assert body["usage"]["prompt_tokens"] > 0
    assert fake_openai.chat_requests[0].last_user == "ping"
