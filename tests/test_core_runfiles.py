"""Run folder files: atomic writes, the journal (torn last line, corruption), tables, summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evalkit.core.errors import RunFolderError
from evalkit.core.files import atomic_write
from evalkit.core.results import ConversationResult, RunManifest, RunResult, Verdict
from evalkit.core.transcript import AgentTurn, Handoff, Outcome, StopReason, Transcript, Usage, UserTurn
from evalkit.metrics.summary import HEADLINE_METRICS
from evalkit.metrics.table import TABLE_COLUMNS, conversation_table
from evalkit.run.runfiles import (
    JOURNAL,
    load_run,
    read_journal,
    summary_dict,
    verdicts_frame,
)
from evalkit.run.runfolder import Existing, RunFolder

REQUIRED = (
    "run_id variant scenario_id trial channel tags outcome stop_reason passed n_turns csat_proxy "
    "latency_p50_ms latency_max_ms ttft_ms tokens cost_usd error title seed n_failed_verdicts handoff "
    "source_verdict human_csat"
).split()


def conv(
    sid: str, trial: int = 0, variant: str = "default", passed: bool | None = True, **kw: object
) -> ConversationResult:
    t = Transcript(
        scenario_id=sid,
        trial=trial,
        variant=variant,
        seed=trial + 10,
        turns=[
            UserTurn(content="hi"),
            AgentTurn(
                content="hello",
                latency_ms=10.0,
                ttft_ms=4.0,
                usage=Usage(prompt_tokens=5, completion_tokens=7, cost_usd=0.01),
            ),
            UserTurn(content="human please"),
            AgentTurn(content="ok", latency_ms=30.0, handoff=Handoff(ticket_id="T")),
        ],
        outcome=Outcome.escalated,
        stop_reason=StopReason.transferred,
        **kw,  # type: ignore[arg-type]
    )
    verdicts = [] if passed is None else [Verdict(judge="said", passed=passed, reason="r", details={"k": 1})]
    return ConversationResult(
        run_id="R",
        title=f"T {sid}",
        tags=["a", "b"],
        transcript=t,
        verdicts=verdicts,
        metrics={"csat_proxy": 3.5, "human_csat": 4.0},
    )


def manifest(**kw: object) -> RunManifest:
    kw.setdefault("variants", {"default": "x:y"})
    return RunManifest(run_id="R", evalkit_version="0", **kw)  # type: ignore[arg-type]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, lambda fh: fh.write(b"old"))

    def broken(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"partial new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_journal_appends_and_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    with RunFolder(tmp_path).claim() as j:
        assert j.begin(manifest()) == []
        for i in range(3):
            j.append(conv(f"s{i}"))
    assert path.read_bytes().count(b"\n") == 3
    with open(path, "ab") as fh:
        fh.write(b'{"transcript": {"scenario_id": "s3", "tur')
    results, good_end, note = read_journal(path)
    assert [r.transcript.scenario_id for r in results] == ["s0", "s1", "s2"]
    assert note is not None and ":4: dropped a torn or corrupt last line" in note
    with RunFolder(tmp_path).claim(Existing.resume) as j2:
        assert len(j2.begin(manifest())) == 3
        assert path.stat().st_size == good_end  # the torn tail is cut off before appending
        j2.append(conv("s3"))
    assert [r.transcript.scenario_id for r in read_journal(path)[0]] == ["s0", "s1", "s2", "s3"]
    assert read_journal(path)[2] is None


def test_journal_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    lines = [conv("s0").model_dump_json(), "{not json", conv("s1").model_dump_json()]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunFolderError) as info:
        read_journal(path)
    assert str(info.value) == f"{path}:2: corrupt journal line: not valid JSON"
    path.write_text(
        conv("s0").model_dump_json()
        + "\n"
        + json.dumps({"transcript": {}})
        + "\n"
        + conv("s1").model_dump_json()
        + "\n"
    )
    with pytest.raises(RunFolderError, match=r":2: corrupt journal line: not a conversation"):
        read_journal(path)


def test_load_run_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(RunFolderError, match="not a run folder"):
        load_run(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(RunFolderError, match="corrupt manifest"):
        load_run(tmp_path)
    with RunFolder(tmp_path).claim(Existing.overwrite) as folder:
        folder.write_manifest(manifest())
    with pytest.raises(RunFolderError, match="no conversations.jsonl"):
        load_run(tmp_path)
    (tmp_path / JOURNAL).write_text(conv("a").model_dump_json() + "\n")
    run = load_run(tmp_path)
    assert run.manifest.run_id == "R" and [c.key for c in run.conversations] == [("default", "a", 0)]


def test_results_and_verdicts_frames(tmp_path: Path) -> None:
    run = RunResult(
        manifest=manifest(),
        conversations=[conv("a"), conv("b", passed=False), conv("c", passed=None, error="agent raised X")],
    )
    frame = conversation_table(run)
    assert set(REQUIRED) <= set(frame.columns)
    row = frame.iloc[0]
    assert (row.n_turns, row.latency_p50_ms, row.latency_max_ms, row.ttft_ms, row.tokens) == (
        2,
        20.0,
        30.0,
        4.0,
        12,
    )
    assert row.cost_usd == pytest.approx(0.01) and bool(row.handoff) and row.tags == ["a", "b"]
    assert list(frame.passed.astype(object).where(frame.passed.notna(), None)) == [True, False, False]
    assert frame.error.iloc[2] == "agent raised X" and frame.human_csat.iloc[0] == 4.0
    assert list(frame.n_failed_verdicts) == [0, 1, 0]
    v = verdicts_frame(run)
    assert len(v) == 2 and set(v.judge) == {"said"} and json.loads(v.details.iloc[0]) == {"k": 1}

    with RunFolder(tmp_path).claim() as folder:
        written = folder.write_tables(run)
    assert {p.name for p in written} >= {"results.parquet", "verdicts.parquet", "summary.json"}
    back = pd.read_parquet(tmp_path / "results.parquet")
    assert list(back.columns) == list(TABLE_COLUMNS) and list(back.scenario_id) == ["a", "b", "c"]
    assert list(back.tags.iloc[0]) == ["a", "b"]
    assert list(back.turn_latency_ms.iloc[0]) == [10.0, 30.0] and list(back.turn_ttft_ms.iloc[0]) == [4.0]


def test_empty_run_writes_typed_empty_tables(tmp_path: Path) -> None:
    run = RunResult(manifest=manifest())
    with RunFolder(tmp_path).claim() as folder:
        folder.write_tables(run)
    assert pd.read_parquet(tmp_path / "results.parquet").empty
    assert pd.read_parquet(tmp_path / "verdicts.parquet").empty
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_conversations"] == 0 and summary["variants"]["default"]["n_conversations"] == 0


def test_summary_has_headline_metrics_overall_and_per_variant() -> None:
    convs = [conv("a", t, v, passed=(t == 0)) for v in ("x", "y") for t in range(2)]
    summary = summary_dict(
        RunResult(manifest=manifest(variants={"x": "a:b", "y": "c:d"}), conversations=convs)
    )
    assert set(HEADLINE_METRICS) <= set(summary)
    assert summary["n_conversations"] == 4 and summary["run_id"] == "R"
    assert set(summary["variants"]) == {"x", "y"}
    assert summary["variants"]["x"]["task_completion_rate"] == 0.5
    assert summary["pass_hat_k"] == {"1": 0.5, "2": 0.0}
    assert summary["escalation_rate"] == 1.0 and summary["tokens_total"] == 48
