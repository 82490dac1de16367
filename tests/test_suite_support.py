"""The bundled support suite (datasets/support): its shape, and that the reference agent passes it."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from evalkit.scenarios import load_suite

SUITE = Path(__file__).resolve().parents[1] / "datasets" / "support"
TOPICS = {
    "tracking.yaml": "tracking",
    "returns.yaml": "returns",
    "refunds.yaml": "refunds",
    "orders.yaml": "orders",
    "faq.yaml": "faq",
    "handoff.yaml": "handoff",
    "guardrails.yaml": "guardrails",
    "multi_intent.yaml": "multi_intent",
    "memory.yaml": "memory",
    "channels.yaml": "channels",
}
# What the issue asks the suite to cover, as tags.
REQUIRED_TAGS = {
    "tracking", "returns", "refunds", "orders", "faq", "handoff", "guardrails", "multi_intent",
    "memory", "channels", "boundary", "ownership", "wrong_id", "clarification", "cancel", "address",
    "frustration", "repeated_failure", "complaint", "banned_topic", "pii", "injection",
    "system_prompt", "long", "returning_customer", "persona", "voice", "whatsapp", "slack", "web",
}


@pytest.fixture(scope="module")
def suite():
    return load_suite(SUITE)


def test_suite_config_names_the_agent_and_gate(suite):
    cfg = suite.config
    assert cfg.agent == "reference_agent:create_agent"
    assert cfg.channel.value == "web" and cfg.trials == 1
    assert cfg.gate.min.get("task_completion_rate", 0) >= 0.95
    assert {j.name for j in cfg.judges} >= {"no_pii_leak", "never_said", "latency"}


def test_at_least_80_scenarios_with_unique_ids(suite):
    ids = [s.id for s in suite.scenarios]
    assert len(ids) >= 80
    assert len(ids) == len(set(ids))


def test_every_topic_file_is_present_and_tagged(suite):
    by_file = Counter(Path(s._file).name for s in suite.scenarios)
    assert set(TOPICS) <= set(by_file), set(TOPICS) - set(by_file)
    for s in suite.scenarios:
        topic = TOPICS.get(Path(s._file).name)
        if topic is None:
            # Extra files (e.g. selftest_gaps.yaml) still file each scenario under a topic.
            assert set(TOPICS.values()) & set(s.tags), f"{s.id} ({Path(s._file).name}) has no topic tag"
        else:
            assert topic in s.tags, f"{s.id} in {topic}.yaml lacks the '{topic}' tag"
    assert all(by_file[name] >= 6 for name in TOPICS), by_file


def test_all_channels_and_required_tags_are_covered(suite):
    channels = Counter((s.channel or suite.config.channel).value for s in suite.scenarios)
    assert set(channels) == {"web", "whatsapp", "slack", "voice"}
    assert min(channels.values()) >= 4, channels
    tags = {t for s in suite.scenarios for t in s.tags}
    assert REQUIRED_TAGS <= tags, REQUIRED_TAGS - tags


def test_scripted_and_persona_scenarios_all_have_expectations(suite):
    kinds = Counter(s.kind for s in suite.scenarios)
    assert kinds["script"] >= 60 and kinds["persona"] >= 10, kinds
    for s in suite.scenarios:
        step_expects = sum(len(step.expect) for step in (s.user.script or []))
        assert s.expect or step_expects, f"{s.id} has no expectations of its own"
        if s.user.persona is not None:
            assert s.user.persona.goal.done_when or s.user.persona.goal.intent == "human", s.id


def test_every_judge_in_the_suite_builds(suite):
    from evalkit.judges.registry import build_judge

    specs = list(suite.config.judges)
    for s in suite.scenarios:
        specs += s.expect
        for step in s.user.script or []:
            specs += step.expect
        if s.user.persona is not None:
            specs += s.user.persona.goal.done_when
    for spec in specs:
        build_judge(spec)  # raises JudgeSpecError on a bad argument


def test_scenarios_use_real_fixture_ids(suite):
    """Order ids and emails in the suite exist in datasets/store (except deliberate unknowns)."""
    import json
    import re

    store = SUITE.parent / "store"
    orders = {o["order_id"] for o in json.loads((store / "orders.json").read_text())}
    emails = {c["email"] for c in json.loads((store / "customers.json").read_text())}
    unknown_on_purpose = {"ORD-99999"}
    for path in SUITE.glob("*.yaml"):
        text = path.read_text()
        for oid in set(re.findall(r"\bORD-\d{5}\b", text)) - unknown_on_purpose:
            assert oid in orders, f"{path.name}: {oid} is not in the store fixtures"
    for s in suite.scenarios:
        if s.customer and "email" in s.customer:
            assert s.customer["email"] in emails, s.id


@pytest.mark.skipif(importlib.util.find_spec("reference_agent.agent") is None, reason="reference agent not built")
def test_reference_agent_passes_the_whole_suite(tmp_path):
    from evalkit.run.runner import RunConfig, Runner

    result = Runner(
        RunConfig(suite=[str(SUITE)], out=tmp_path / "run", progress=False, handle_signals=False, concurrency=4)
    ).run_sync()
    convs = result.conversations
    assert len(convs) >= 80
    errors = [c.transcript.scenario_id for c in convs if c.transcript.error]
    assert errors == []
    failed = {
        c.transcript.scenario_id: [v.reason for v in c.verdicts if v.passed is False]
        for c in convs
        if c.passed is not True
    }
    assert failed == {}


def test_bundled_yaml_parses_the_same_without_the_c_parser():
    """evalkit uses libyaml when PyYAML has it; a machine without it must read the same files."""
    import yaml

    from evalkit.core._yaml import parse_yaml

    for path in sorted(SUITE.parent.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=yaml.SafeLoader) == parse_yaml(text), path.name
