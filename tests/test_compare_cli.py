"""evalkit compare on run folders: formats, --variants, errors."""

from __future__ import annotations

import io
import json
import sys

import pytest
from _results_factory import conv, run, write_run_folder

from evalkit.cli import main


def _invoke(args, monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(SystemExit) as exc:
        main(["compare", *args])
    return exc.value.code, out.getvalue(), err.getvalue()


def _convs(fail=(), variant="default", n=12):
    return [conv(f"s{i}", variant=variant, passed=i not in fail) for i in range(n)]


@pytest.fixture()
def two_runs(tmp_path):
    base = write_run_folder(tmp_path / "base", run(_convs()))
    cand = write_run_folder(tmp_path / "cand", run(_convs(fail={1, 4}), run_id="run-2"))
    return base, cand


def test_markdown_to_stdout_and_fail_on_regression(two_runs, monkeypatch):
    base, cand = two_runs
    code, out, _ = _invoke([str(base), str(cand), "--resamples", "200"], monkeypatch)
    assert code == 0
    assert out.startswith("## evalkit comparison") and "`s1`" in out and "`s4`" in out
    code, _, _ = _invoke([str(base), str(cand), "--resamples", "200", "--fail-on-regression"], monkeypatch)
    assert code == 1
    code, _, _ = _invoke([str(base), str(base), "--resamples", "200", "--fail-on-regression"], monkeypatch)
    assert code == 0


def test_json_file_round_trips(two_runs, tmp_path, monkeypatch):
    from evalkit.metrics.compare import Comparison

    base, cand = two_runs
    target = tmp_path / "out" / "cmp.json"
    code, out, _ = _invoke([str(base), str(cand), "--out", str(target)], monkeypatch)
    assert code == 0 and "2 regressions, 0 fixes" in out
    cmp = Comparison.model_validate_json(target.read_text())
    assert [f.scenario_id for f in cmp.regressions] == ["s1", "s4"]
    assert cmp.base.path == str(base)


def test_output_folder_gets_every_format(two_runs, tmp_path, monkeypatch):
    base, cand = two_runs
    folder = tmp_path / "cmp"
    code, out, err = _invoke([str(base), str(cand), "--out", str(folder)], monkeypatch)
    assert code == 0
    assert json.loads((folder / "comparison.json").read_text())["n_common_scenarios"] == 12
    assert (folder / "comparison.md").read_text().startswith("## evalkit comparison")
    # HTML is written by the HTML report module when installed; otherwise a warning says so.
    assert (folder / "comparison.html").exists() or "not available" in err


def test_variants_inside_one_run(tmp_path, monkeypatch):
    ab = write_run_folder(tmp_path / "ab", run(_convs(variant="A") + _convs(fail={3}, variant="B")))
    code, out, _ = _invoke([str(ab), "--variants", "A,B", "--format", "json"], monkeypatch)
    assert code == 0
    data = json.loads(out)
    assert (data["base"]["variant"], data["cand"]["variant"]) == ("A", "B")
    assert data["flipped"][0]["cand_key"] == ["B", "s3", 0]


def test_usage_errors_are_one_line_exit_2(two_runs, tmp_path, monkeypatch):
    base, cand = two_runs
    for args, needle in (
        ([str(base)], "CANDIDATE"),
        ([str(base), "--variants", "A"], "two variant names"),
        ([str(base), str(cand), "--variants", "A,B"], "ONE run"),
        ([str(base), "--variants", "A,B"], "no variant 'A'"),
        ([str(tmp_path / "nope"), str(cand)], "no such run folder"),
        ([str(base), str(cand), "--out", str(tmp_path / "x.txt")], "cannot tell the format"),
    ):
        code, _, err = _invoke(args, monkeypatch)
        assert code == 2, args
        assert needle in err and err.count("\n") == 1, (args, err)
