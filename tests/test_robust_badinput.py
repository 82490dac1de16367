"""Bad input never crashes evalkit: one line on stderr naming file, field and problem; exit 2.

The corpus lives in ``tests/badinput/`` (one malformed scenario file or suite folder per
case); files too large to commit, corrupt run folders, bad flags and bad agent specs are
made here. Most cases run in-process through :func:`evalkit.cli.main` (fast); a
representative subset runs the real console entry in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _robust_helpers import Outcome, cli

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "badinput"
ECHO = "evalkit.testing.agents:EchoAgent"


def subprocess_cli(*args: str, cwd: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run(
        [sys.executable, "-m", "evalkit", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )
    return Outcome(p.returncode, p.stdout, p.stderr)


def assert_one_line_error(result: Outcome, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback, every fragment in that line."""
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.code == 2, (result.code, result.err)
    assert len(lines) == 1, result.err
    line = lines[0]
    assert re.match(r"^evalkit( \w+)?: error: ", line), line
    for fragment in fragments:
        assert fragment.lower() in line.lower(), f"{fragment!r} not in {line!r}"
    return line


# --------------------------------------------------------------------------------------
# The committed corpus: case -> (field named in the message or None, words of the problem)

CASES: dict[str, tuple[str | None, str]] = {
    "yaml_tab_indent.yaml": (None, "invalid YAML"),
    "yaml_unclosed_bracket.yaml": (None, "invalid YAML"),
    "yaml_bad_indent.yaml": (None, "invalid YAML"),
    "yaml_unclosed_quote.yaml": (None, "invalid YAML"),
    "yaml_duplicate_key.yaml": (None, "duplicate key 'title'"),
    "yaml_multi_document.yaml": (None, "another document"),
    "yaml_python_tag.yaml": (None, "could not determine a constructor"),
    "yaml_alias_bomb.yaml": (None, "YAML aliases"),
    "yaml_mapping_key_list.yaml": (None, "mapping key must be a plain value"),
    "type_id_list.yaml": ("id", "valid string"),
    "type_bad_id_chars.yaml": ("id", "pattern"),
    "type_trials_string.yaml": ("trials", "valid integer"),
    "type_trials_zero.yaml": ("trials", "greater than or equal to 1"),
    "type_max_turns_huge.yaml": ("max_turns", "less than or equal to 200"),
    "type_channel_unknown.yaml": ("channel", "'fax'"),
    "type_script_not_list.yaml": ("user.script", "valid list"),
    "type_empty_script.yaml": ("user", "at least one step"),
    "type_script_and_persona.yaml": ("user", "exactly one of"),
    "type_persona_no_goal.yaml": ("user.persona.goal", "required field is missing"),
    "type_typo_rate.yaml": ("user.persona.traits.typo_rate", "less than or equal to 0.5"),
    "type_tone_unknown.yaml": ("user.persona.traits.tone", "'sarcastic'"),
    "type_customer_string.yaml": ("customer", "valid dictionary"),
    "type_top_level_scalar.yaml": (None, "expected a scenario mapping"),
    "type_scenario_is_number.yaml": ("scenarios[0]", "must be a mapping"),
    "type_scenarios_not_list.yaml": ("scenarios", "must be a list"),
    "missing_id.yaml": ("id", "required field is missing"),
    "missing_user.yaml": ("user", "required field is missing"),
    "unknown_field.yaml": ("titel", "did you mean 'title'"),
    "unknown_top_level.yaml": ("settings", "unknown top-level field"),
    "unknown_judge.yaml": ("expect[0].tool_caled", "unknown judge 'tool_caled'"),
    "judge_unknown_arg.yaml": ("expect[0].tool_called.colour", "unknown argument 'colour'"),
    "judge_bad_arg_type.yaml": ("expect[0].latency.max_ms", "valid number"),
    "judge_bad_regex.yaml": ("expect[0].said.regex", "invalid regex"),
    "judge_two_keys.yaml": ("expect[0]", "exactly one judge name"),
    "judge_bad_module.yaml": ("expect[0]", "cannot import module 'no_such_module_xyz'"),
    "judge_in_step.yaml": ("user.script[0].expect[0].outcome", "unknown outcome 'vanished'"),
    "duplicate_ids.yaml": ("id", "duplicate scenario id 'same'"),
    "empty_file.yaml": (None, "file is empty"),
    "only_comments.yaml": (None, "file is empty"),
    "empty_list.yaml": (None, "no scenarios in file"),
    "non_utf8_latin1.yaml": (None, "not valid UTF-8"),
    "utf16_file.yaml": (None, "not a text file"),
    "binary_elf.yaml": (None, "not a text file"),
    "binary_png.yaml": (None, "not a text file"),
    "empty_suite": (None, "no scenarios found"),
    "include_cycle": (None, "include cycle"),
    "include_escape": ("include", "outside the suite folder"),
    "include_escape_abs": ("include", "outside the suite folder"),
    "include_missing": ("include", "does not exist"),
    "include_glob_none": ("include", "matches no file"),
    "suite_bad_field": ("trails", "did you mean 'trials'"),
    "suite_not_mapping": (None, "must be a mapping of settings"),
    "suite_bad_timeout": ("turn_timeout_s", "greater than 0"),
    "suite_dup_across_files": ("id", "duplicate scenario id 'twin'"),
}

# Where the message must point when the case is a folder (the file at fault inside it).
_FILE_IN_CASE = {
    "include_escape": "suite.yaml",
    "include_escape_abs": "suite.yaml",
    "include_missing": "suite.yaml",
    "include_glob_none": "suite.yaml",
    "suite_bad_field": "suite.yaml",
    "suite_not_mapping": "suite.yaml",
    "suite_bad_timeout": "suite.yaml",
    "suite_dup_across_files": "b.yaml",
    "include_cycle": "sub",
}


def test_the_corpus_is_complete():
    """Every committed bad input has an expectation, and there are at least 40."""
    on_disk = {p.name for p in CORPUS.iterdir() if not p.name.startswith((".", "__")) and p.name != "conftest.py"}
    assert on_disk == set(CASES)
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_input_is_one_line(case: str, tmp_path: Path):
    field, problem = CASES[case]
    target = CORPUS / case
    named = target / _FILE_IN_CASE[case] if case in _FILE_IN_CASE else target
    out = tmp_path / "run"
    result = cli("run", str(target), "--agent", ECHO, "--out", str(out), "--no-progress")
    line = assert_one_line_error(result, str(named), problem, *([field] if field else []))
    if case not in ("empty_suite", "include_cycle") and not case.startswith(("binary", "utf16")):
        assert re.search(rf"{re.escape(str(named))}:\d+", line), f"no line number in {line!r}"
    assert not out.exists(), "a bad suite must not leave a half-made run folder"


@pytest.mark.parametrize("case", ["yaml_alias_bomb.yaml", "unknown_judge.yaml", "include_escape", "binary_elf.yaml"])
def test_validate_reports_the_same_problem(case: str):
    """`evalkit validate` prints every problem on stdout (one line each) and exits 2."""
    field, problem = CASES[case]
    result = cli("validate", str(CORPUS / case))
    assert result.code == 2 and "Traceback" not in result.out + result.err
    assert problem.lower() in result.out.lower()


# --------------------------------------------------------------------------------------
# Generated inputs: too big to commit, or dangerous to keep on disk


def test_absurdly_large_file_is_refused_without_reading_it(tmp_path: Path):
    big = tmp_path / "huge.yaml"
    with open(big, "wb") as fh:  # 11 MB of valid-looking YAML: refused by size, not parsed
        fh.write(b"id: huge\nuser:\n  script:\n")
        line = b"    - say: " + b"x" * 1000 + b"\n"
        for _ in range(11 * 1024):
            fh.write(line)
    assert_one_line_error(cli("run", str(big), "--agent", ECHO, "--out", str(tmp_path / "r")), str(big), "too large")


def test_deeply_nested_yaml_is_refused(tmp_path: Path):
    """`[[[[...` 200,000 deep used to crash the YAML composer (RecursionError or a segfault)."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("id: deep\ninitial_state: {x: " + "[" * 200_000 + "]" * 200_000 + "}\n")
    nested = tmp_path / "dashes.yaml"
    nested.write_text("- " * 5000 + "x\n")
    for f in (deep, nested):
        assert_one_line_error(cli("run", str(f), "--agent", ECHO, "--out", str(tmp_path / "r")), str(f), "nested")


def test_very_long_line_and_many_scenarios_stay_one_line(tmp_path: Path):
    f = tmp_path / "long.yaml"
    f.write_text("id: long\ntitle: " + "y" * 500_000 + "\nbogus: 1\nuser: {script: [hi]}\n")
    line = assert_one_line_error(cli("run", str(f), "--agent", ECHO, "--out", str(tmp_path / "r")), "bogus")
    assert len(line) < 400  # the long value is not echoed back


def test_symlink_out_of_the_suite_is_refused(tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("id: secret\nuser: {script: [hi]}\n")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "ok.yaml").write_text("id: ok\nuser: {script: [hi]}\n")
    (suite / "link.yaml").symlink_to(outside)
    assert_one_line_error(
        cli("run", str(suite), "--agent", ECHO, "--out", str(tmp_path / "r")),
        str(suite / "link.yaml"),
        "outside the suite folder",
    )


def test_missing_file_and_folder(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(cli("run", str(missing), "--agent", ECHO), str(missing), "no such file")
    r = cli("validate", str(tmp_path / "nodir"))
    assert r.code == 2 and "no such file or folder" in r.out


def test_yaml_loaders_are_safe_everywhere():
    """No unsafe YAML loading anywhere in evalkit (only the guarded safe loader)."""
    offenders = []
    for path in (ROOT / "evalkit").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"yaml\.load\(", r"yaml\.unsafe_load", r"yaml\.full_load", r"Loader\s*=\s*yaml\.(Unsafe|Full)?Loader\b"):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert offenders == []


def test_python_tags_never_execute(tmp_path: Path):
    marker = tmp_path / "pwned"
    f = tmp_path / "tag.yaml"
    f.write_text(f'id: t\ntitle: !!python/object/apply:os.system ["touch {marker}"]\nuser: {{script: [hi]}}\n')
    assert_one_line_error(cli("run", str(f), "--agent", ECHO, "--out", str(tmp_path / "r")), "constructor")
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Bad flags and bad agent specs

OK_SCENARIO = "id: ok\nuser:\n  script:\n    - say: hi\n"

BAD_FLAGS: list[tuple[list[str], list[str]]] = [
    (["--concurrency", "0"], ["--concurrency", "range"]),
    (["--trials", "-3"], ["--trials", "range"]),
    (["--turn-timeout", "abc"], ["--turn-timeout", "abc"]),
    (["--turn-timeout", "0"], ["--turn-timeout"]),
    (["--conversation-timeout", "-1"], ["--conversation-timeout"]),
    (["--simulator", "robot"], ["--simulator", "robot"]),
    (["--seed", "1.5"], ["--seed", "1.5"]),
    (["--cache", "sometimes"], ["--cache", "sometimes"]),
    (["--bogus-flag"], ["--bogus-flag"]),
    (["--variant", "nospec"], ["--variant", "NAME=SPEC"]),
    (["--variant", "a=x:y", "--variant", "a=x:z"], ["--variant", "twice"]),
    (["--base-url", "ftp://x", "--model", "m"], ["--base-url", "ftp://x"]),
]


@pytest.mark.parametrize("extra,fragments", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_run_flags(extra: list[str], fragments: list[str], tmp_path: Path):
    scenario = tmp_path / "ok.yaml"
    scenario.write_text(OK_SCENARIO)
    args = ["run", str(scenario), "--out", str(tmp_path / "r"), *extra]
    if "--variant" not in extra:
        args += ["--agent", ECHO]
    assert_one_line_error(cli(*args), *fragments)
    assert not (tmp_path / "r").exists()


def test_bad_prices_files(tmp_path: Path):
    scenario = tmp_path / "ok.yaml"
    scenario.write_text(OK_SCENARIO)
    cases = {
        "missing.yaml": (None, "does not exist"),
        "binary.yaml": (b"\xff\xfe\x00\x01", "UTF-8"),
        "bomb.yaml": ((CORPUS / "yaml_alias_bomb.yaml").read_bytes(), "aliases"),
        "list.yaml": (b"- a\n- b\n", "mapping"),
        "bad.json": (b"{oops", "JSON"),
        "field.yaml": (b"gpt-x: {input: cheap, output: 1}\n", "gpt-x"),
    }
    for name, (content, problem) in cases.items():
        f = tmp_path / name
        if content is not None:
            f.write_bytes(content)
        result = cli("run", str(scenario), "--agent", ECHO, "--prices", str(f), "--out", str(tmp_path / "r"))
        assert_one_line_error(result, name, problem)


BAD_AGENTS: list[tuple[str, list[str]]] = [
    ("no_such_mod_abc:make", ["no module named 'no_such_mod_abc'"]),
    ("evalkit.testing.agents:NoSuchThing", ["has no 'NoSuchThing'"]),
    ("evalkit.testing.agents:EchoAgent?prefix", ["bad query"]),
    ("evalkit.testing.agents:EchoAgent?nope=1", ["unexpected keyword argument 'nope'"]),
    ("http://", ["http(s)://HOST"]),
    ("http://127.0.0.1:notaport", ["not a valid URL"]),
    ("http://127.0.0.1:99999", ["not a valid URL"]),
    ("http://[::1", ["not a valid URL"]),
    ("http://127.0.0.1:9/agent?x=1", ["no query"]),
    ("http://127.0.0.1:9", ["health check failed"]),  # nothing listens on port 9 (discard)
    ("openai-chat:", ["needs a model"]),
    (":::", ["expected 'module:factory'"]),
    ("json", ["expected 'module:factory'"]),
    ("   ", ["no agent given"]),
]


@pytest.mark.parametrize("spec,fragments", BAD_AGENTS, ids=[s for s, _ in BAD_AGENTS])
def test_bad_agent_specs(spec: str, fragments: list[str], tmp_path: Path):
    scenario = tmp_path / "ok.yaml"
    scenario.write_text(OK_SCENARIO)
    result = cli("run", str(scenario), "--agent", spec, "--out", str(tmp_path / "r"), "--no-progress")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------------------
# Corrupt run folders given to report / compare / gate / run --resume / score


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("goodrun")
    scenario = base / "ok.yaml"
    scenario.write_text(OK_SCENARIO)
    out = base / "run"
    result = cli("run", str(scenario), "--agent", ECHO, "--out", str(out), "--no-progress", "--trials", "3")
    assert result.code == 0, result.err
    return out


def _insert_line(path: Path, line: bytes) -> None:
    lines = path.read_bytes().splitlines(True)
    lines.insert(1, line)
    path.write_bytes(b"".join(lines))


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


CORRUPTIONS = {
    "manifest_not_json": (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json", "corrupt manifest"),
    "manifest_wrong_type": (lambda d: (d / "manifest.json").write_text('{"run_id": 5}'), "run_id", "corrupt manifest"),
    "manifest_list": (lambda d: (d / "manifest.json").write_text("[]"), "manifest.json", "corrupt manifest"),
    "manifest_binary": (lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe\x00\x01"), "manifest.json", "corrupt"),
    "manifest_missing": (lambda d: (d / "manifest.json").unlink(), "", "no manifest.json"),
    "manifest_is_dir": (lambda d: _replace_with_dir(d / "manifest.json"), "", "no manifest.json"),
    "journal_bad_line": (
        lambda d: _insert_line(d / "conversations.jsonl", b"garbage\n"),
        "conversations.jsonl:2",
        "not valid JSON",
    ),
    "journal_not_a_conversation": (
        lambda d: _insert_line(d / "conversations.jsonl", b'{"a": 1}\n'),
        "conversations.jsonl:2",
        "not a conversation",
    ),
    "journal_binary": (
        lambda d: (d / "conversations.jsonl").write_bytes(b"\x00\xff\xfe" * 10 + b"\nx"),
        "conversations.jsonl:1",
        "not valid JSON",
    ),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", ["report", "compare", "gate", "resume", "score"])
def test_corrupt_run_folder(corruption: str, command: str, good_run: Path, tmp_path: Path):
    mutate, where, problem = CORRUPTIONS[corruption]
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    mutate(run)
    args = {
        "report": ["report", str(run)],
        "compare": ["compare", str(good_run), str(run), "--out", str(tmp_path / "cmp.html")],
        "gate": ["gate", str(run), "--min", "task_completion_rate=0", "--no-write"],
        "resume": ["run", "--resume", "--out", str(run), "--no-progress"],
        "score": ["score", str(run), "--scenarios", str(good_run.parent / "ok.yaml"), "--out", str(tmp_path / "s")],
    }[command]
    assert_one_line_error(cli(*args), str(run), where, problem)


def test_a_file_or_nothing_given_as_run_folder(good_run: Path, tmp_path: Path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    for args in (["report", str(f)], ["gate", str(f)], ["compare", str(f), str(good_run)]):
        assert_one_line_error(cli(*args), str(f), "is a file, not a run folder")
    nothing = tmp_path / "nothing"
    assert_one_line_error(cli("report", str(nothing)), str(nothing), "no such run folder")
    assert_one_line_error(cli("run", "--resume", "--out", str(nothing)), str(nothing), "nothing to resume")


def test_bad_gate_flags(good_run: Path):
    assert_one_line_error(cli("gate", str(good_run), "--min", "task_completion_rate=lots"), "--min", "'lots'")
    assert_one_line_error(cli("gate", str(good_run), "--min", "no_such_metric=0.5"), "unknown metric")
    assert_one_line_error(cli("gate", str(good_run), "--min", "noequals"), "METRIC=VALUE")


def test_resume_with_changed_settings(good_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    assert_one_line_error(cli("run", "--resume", "--out", str(run), "--seed", "7"), "--seed 7", "differs")
    assert_one_line_error(cli("run", "--resume", "--out", str(run), "--trials", "9"), "--trials 9", "differs")
    again = cli("run", str(good_run.parent / "ok.yaml"), "--agent", ECHO, "--out", str(run))
    assert_one_line_error(again, str(run), "already holds a run")


def test_gate_suite_file_with_alias_bomb(good_run: Path, tmp_path: Path):
    suite = tmp_path / "suite.yaml"
    shutil.copy(CORPUS / "yaml_alias_bomb.yaml", suite)
    assert_one_line_error(cli("gate", str(good_run), "--suite", str(suite), "--no-write"), str(suite), "aliases")


# --------------------------------------------------------------------------------------
# The real console entry: a representative subset in fresh processes


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["run", "{corpus}/yaml_alias_bomb.yaml", "--agent", ECHO], ["yaml_alias_bomb.yaml:6", "aliases"]),
        (["run", "{tmp}/ok.yaml", "--agent", "http://127.0.0.1:notaport"], ["not a valid URL"]),
        (["run", "{tmp}/ok.yaml", "--concurrency", "zero"], ["--concurrency"]),
        (["report", "{tmp}/ok.yaml"], ["is a file"]),
    ],
)
def test_console_entry_subprocess(args: list[str], fragments: list[str], tmp_path: Path):
    (tmp_path / "ok.yaml").write_text(OK_SCENARIO)
    argv = [a.format(corpus=CORPUS, tmp=tmp_path) for a in args] + (["--out", str(tmp_path / "r")] if args[0] == "run" else [])
    assert_one_line_error(subprocess_cli(*argv, cwd=tmp_path), *fragments)


def test_stdout_stays_clean_on_error(tmp_path: Path):
    """Errors go to stderr only: a script reading stdout (e.g. JSON) never gets half a line."""
    result = cli("run", str(CORPUS / "missing_id.yaml"), "--agent", ECHO, "--out", str(tmp_path / "r"))
    assert result.out == ""
    assert json.dumps(result.err)  # printable
