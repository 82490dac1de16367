"""`evalkit report RUN_DIR`: regenerates report.html from a saved run folder, errors in one line."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from report_factory import gate_result, make_run

from evalkit.core.results import RunResult
from evalkit.run.runfiles import JOURNAL
from evalkit.run.runfolder import RunFolder


def _write_folder(run: RunResult, folder: Path) -> Path:
    with RunFolder(folder).claim() as writer:
        writer.begin(run.manifest)
        for c in run.conversations:
            writer.append(c)
    return folder


def _invoke(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    from evalkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(SystemExit) as exc:
        main(["report", *args])
    return exc.value.code, out.getvalue(), err.getvalue()


def test_report_regenerates_from_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = _write_folder(make_run(5), tmp_path / "run")
    code, out, err = _invoke([str(folder)], monkeypatch)
    assert code == 0, err
    report = folder / "report.html"
    assert report.is_file() and f"wrote {report}" in out and "5 conversations" in out
    text = report.read_text()
    assert "sc-004" in text and "Automation rate" in text
    # --out writes elsewhere and leaves no temp file behind.
    target = tmp_path / "elsewhere" / "r.html"
    code, out, err = _invoke([str(folder), "--out", str(target)], monkeypatch)
    assert code == 0 and target.is_file()
    assert not [p for p in target.parent.iterdir() if p.name != "r.html"]


def test_report_shows_saved_gate_unless_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = make_run(4)
    folder = _write_folder(run, tmp_path / "run")
    (folder / "gate.json").write_text(gate_result(run, passed=True).model_dump_json())
    assert _invoke([str(folder)], monkeypatch)[0] == 0
    assert "CI gate: PASSED" in (folder / "report.html").read_text()
    assert _invoke([str(folder), "--no-gate"], monkeypatch)[0] == 0
    assert "CI gate" not in (folder / "report.html").read_text()


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing", "no such run folder"),
        ("no_manifest", "not a run folder"),
        ("bad_manifest", "corrupt manifest"),
        ("bad_journal", "corrupt journal line"),
    ],
)
def test_broken_run_folder_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakage: str, message: str
):
    folder = tmp_path / "run"
    if breakage != "missing":
        _write_folder(make_run(3), folder)
    if breakage == "no_manifest":
        (folder / "manifest.json").unlink()
    elif breakage == "bad_manifest":
        (folder / "manifest.json").write_text('{"run_id": 5}')
    elif breakage == "bad_journal":
        lines = (folder / JOURNAL).read_text().splitlines()
        lines[0] = "{not json"
        (folder / JOURNAL).write_text("\n".join(lines) + "\n")
    code, out, err = _invoke([str(folder)], monkeypatch)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("evalkit: error: ") and message in err
    assert "Traceback" not in err and not (folder / "report.html").exists()
