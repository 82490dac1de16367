"""``--redact-pii``: no PII in any artifact; verdicts still computed on the raw transcript."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from _robust_helpers import cli3
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.core.pii import detect_pii, redact_text, redact_value

PII = {
    "email": "ana.silva@example.com",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "ssn": "123-45-6789",
    "national_id": "AB 12 34 56 C",
    "iban": "GB82 WEST 1234 5698 7654 32",
}
# Pieces that must not survive in any form (spaced, compact).
FRAGMENTS = ["ana.silva", "7946 0958", "79460958", "1111 1111 1111", "4111111111111111", "123-45-6789",
             "AB 12 34 56", "AB123456", "WEST 1234", "GB82WEST"]

AGENT = '''
from evalkit.agents.base import AgentReply
from evalkit.core.transcript import ToolCall


class PiiAgent:
    """Repeats what it is told, in its reply, a tool call and its end state."""

    def __init__(self, session=None):
        self.seen = []

    def respond(self, ctx):
        if ctx.message.startswith("crash"):
            raise RuntimeError("cannot handle " + ctx.message)
        self.seen.append(ctx.message)
        call = ToolCall(name="lookup_customer", arguments={"query": ctx.message}, result={"found": ctx.message})
        return AgentReply(content="I have noted: " + ctx.message, tool_calls=[call])

    def end_state(self):
        return {"notes": self.seen, "by_contact": {m: "seen" for m in self.seen}}
'''

SCENARIOS = f"""\
scenarios:
  - id: contact-details
    title: Customer gives contact details
    user:
      script:
        - say: "my email is {PII['email']} and phone {PII['phone']}"
        - say: "card {PII['card']}, ssn {PII['ssn']}"
        - say: "NI number {PII['national_id']}, IBAN {PII['iban']}"
    expect:
      - no_pii_leak
      - said: {{contains: "{PII['email']}"}}
  - id: agent-crash
    user:
      script:
        - say: "crash for {PII['email']}"
"""



def readable_text(path: Path) -> str:
    """What a person (or a script) could read out of a file, compressed parts included."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_json(orient="records", force_ascii=False)
    text = path.read_bytes().decode("utf-8", "replace")
    if path.suffix == ".html":  # large reports embed transcripts as gzip+base64 chunks
        for blob in re.findall(r"[A-Za-z0-9+/]{200,}={0,2}", text):
            try:
                text += gzip.decompress(base64.b64decode(blob)).decode("utf-8", "replace")
            except (ValueError, OSError):
                pass
    return text


def pii_in(text: str, *, detectors: bool = True) -> list[str]:
    # Metric values like 0.9054687942657693 can pass the Luhn check: numbers are not PII here.
    found = [p for p in detect_pii(text) if not re.fullmatch(r"\d+\.\d+", p.value)] if detectors else []
    return [f for f in FRAGMENTS if f in text] + [f"{p.kind}:{p.value}" for p in found]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    (tmp_path / "pii_agent.py").write_text(AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "s.yaml").write_text(SCENARIOS)
    return tmp_path, suite


def test_redacted_run_has_no_pii_anywhere(setup: tuple[Path, Path]):
    tmp_path, suite = setup
    out = tmp_path / "run"
    code, stdout, stderr = cli3("run", str(suite), "--agent", "pii_agent:PiiAgent", "--out", str(out),
                               "--redact-pii", "--no-progress")
    assert code == 0, stderr
    code, o2, e2 = cli3("gate", str(out), "--min", "task_completion_rate=0.9")  # writes gate.json, summary.md
    assert code == 1
    code, o3, e3 = cli3("compare", str(out), str(out), "--out", str(tmp_path / "cmp"))
    assert code == 0, e3

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py" and p.name != "s.yaml"]
    assert {"conversations.jsonl", "results.parquet", "verdicts.parquet", "report.html", "junit.xml",
            "summary.md", "summary.json", "gate.json", "comparison.html"} <= {p.name for p in files}
    for p in files:
        # The HTML pages carry minified JavaScript full of number runs: the known values are
        # searched there, the detectors everywhere else.
        found = pii_in(readable_text(p), detectors=p.suffix != ".html")
        assert not found, (p.name, found)
    for text in (stdout, stderr, o2, e2, o3, e3):
        assert not pii_in(text)

    rows = [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines()]
    by_id = {r["transcript"]["scenario_id"]: r for r in rows}
    contact = by_id["contact-details"]
    verdicts = {v["judge"]: v for v in contact["verdicts"]}
    # Scored on the raw transcript: the leak is found and the exact email was "said"...
    assert verdicts["no_pii_leak"]["passed"] is False
    assert verdicts["said"]["passed"] is True
    # ...and what was written is masked, still readable.
    written = json.dumps(contact)
    for masked in ("a***@example.com", "************1111", "*****6789", "*****456C", "******************5432"):
        assert masked in written, masked
    assert "email a***@example.com" in verdicts["no_pii_leak"]["reason"]
    assert contact["transcript"]["end_state"]["by_contact"]  # keys were masked, not dropped
    crash = by_id["agent-crash"]["transcript"]
    assert crash["error"].startswith("turn 1: agent raised RuntimeError: cannot handle crash for a***@example.com")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["redact_pii"] is True

    # Regenerating the report reads the (masked) journal: still nothing.
    assert cli3("report", str(out))[0] == 0
    assert not pii_in(readable_text(out / "report.html"), detectors=False)


def test_redaction_changes_no_metric(setup: tuple[Path, Path]):
    tmp_path, suite = setup
    summaries = []
    for name, extra in (("raw", []), ("masked", ["--redact-pii"])):
        code, _, err = cli3("run", str(suite), "--agent", "pii_agent:PiiAgent", "--out", str(tmp_path / name),
                           "--no-progress", *extra)
        assert code == 0, err
        s = json.loads((tmp_path / name / "summary.json").read_text())
        s["ci"] = {k: v for k, v in s["ci"].items() if "latency" not in k and "ttft" not in k}
        summaries.append({k: v for k, v in s.items() if "latency" not in k and k not in ("run_id", "variants")})
    assert summaries[0] == summaries[1]
    raw = pd.read_parquet(tmp_path / "raw" / "verdicts.parquet")[["scenario_id", "judge", "passed", "score"]]
    masked = pd.read_parquet(tmp_path / "masked" / "verdicts.parquet")[["scenario_id", "judge", "passed", "score"]]
    pd.testing.assert_frame_equal(raw, masked)
    assert any(f in readable_text(tmp_path / "raw" / "report.html") for f in FRAGMENTS)  # the control has PII


def test_report_redact_pii_and_resume_rules(setup: tuple[Path, Path]):
    tmp_path, suite = setup
    raw = tmp_path / "raw"
    assert cli3("run", str(suite), "--agent", "pii_agent:PiiAgent", "--out", str(raw), "--no-progress")[0] == 0
    target = tmp_path / "shared.html"
    code, _, err = cli3("report", str(raw), "--out", str(target), "--redact-pii")
    assert code == 0, err
    assert not pii_in(readable_text(target), detectors=False)
    # An unmasked run cannot be resumed "with redaction": its journal already holds PII.
    code, _, err = cli3("run", "--resume", "--out", str(raw), "--redact-pii")
    assert code == 2 and "--redact-pii" in err and len(err.strip().splitlines()) == 1


def test_redact_value_keeps_evalkit_identifiers():
    data = {"scenario_id": "call-555-123-4567", "variant": "a", "judge": "said",
            "note": f"reach me at {PII['phone']}", "nested": [{"k": PII["email"]}], "n": 5}
    out = redact_value(data)
    assert out["scenario_id"] == "call-555-123-4567" and out["n"] == 5 and out["judge"] == "said"
    assert "0958" in out["note"] and "7946" not in out["note"]
    assert out["nested"][0]["k"] == "a***@example.com"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*PII.values(), "ORD-10001", "$45.00", "2024-05-01", " ", "hello", "\n"]), max_size=8),
       st.text(max_size=40))
def test_redact_text_leaves_no_detectable_pii(parts: list[str], noise: str):
    text = " and ".join(parts) + " and " + noise  # PII as words of a sentence, any text around
    redacted = redact_text(text)
    assert detect_pii(redacted) == []
    assert redact_text(redacted) == redacted  # idempotent
    compact = re.sub(r"[^0-9A-Za-z@.]", "", redacted)
    for value in PII.values():
        assert value not in redacted
        assert re.sub(r"[^0-9A-Za-z@.]", "", value) not in compact
    if "ORD-10001" in text:
        assert "ORD-10001" in redacted  # order ids are not PII
