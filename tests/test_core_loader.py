"""Scenario loading: formats, suites, includes and every error kind, each with file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _core_helpers import write

from evalkit.core.errors import JudgeSpecError, ScenarioError
from evalkit.scenarios import load_suite, validate_paths
from evalkit.scenarios.loader import MAX_FILE_BYTES

ONE = """
id: track-1
title: Track an order
tags: [orders, smoke]
user:
  script:
    - say: Where is my order ORD-1?
      expect:
        - said: {contains: ORD-1}
    - thanks
expect:
  - outcome: resolved
"""


def messages(paths) -> list[str]:
    return [str(e) for e in validate_paths(paths)]


def test_single_file_one_scenario(tmp_path: Path) -> None:
    f = write(tmp_path / "one.yaml", ONE)
    suite = load_suite([f])
    assert [s.id for s in suite.scenarios] == ["track-1"]
    s = suite.scenarios[0]
    assert s.user.script is not None and s.user.script[1].say == "thanks"
    assert s.expect[0].name == "outcome" and s.expect[0].args == {"value": "resolved"}
    assert s._file == str(f) and s._line == 1
    assert s.user.script[0].expect[0]._line == 8
    assert str(s.channel) == "web" and s.max_turns == 12  # suite defaults applied
    assert suite.files == [f]


def test_list_and_scenarios_mapping(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "- id: a1\n  user: {script: [hi]}\n- id: a2\n  user: {script: [yo]}\n")
    write(tmp_path / "b.yml", "scenarios:\n  - id: b1\n    user: {script: [hey]}\n")
    suite = load_suite([tmp_path])
    assert [s.id for s in suite.scenarios] == ["a1", "a2", "b1"]
    assert suite.get("a2")._line == 3


def test_folder_with_suite_defaults_and_nested_override(tmp_path: Path) -> None:
    write(tmp_path / "suite.yaml", "channel: whatsapp\nmax_turns: 7\nagent: x:y\njudges: [no_pii_leak]\n")
    write(tmp_path / "a.yaml", "id: a\nuser: {script: [hi]}\n")
    write(tmp_path / "b.yaml", "id: b\nchannel: slack\nmax_turns: 3\nuser: {script: [hi]}\n")
    write(tmp_path / "p.yaml", "id: p\nuser: {persona: {goal: {description: g}, max_turns: 4}}\n")
    write(tmp_path / "sub" / "suite.yaml", "channel: voice\ntrials: 3\nagent: other:make\n")
    write(tmp_path / "sub" / "c.yaml", "id: c\nuser: {script: [hi]}\n")
    suite = load_suite([tmp_path])
    by = {s.id: s for s in suite.scenarios}
    assert suite.config.agent == "x:y" and suite.config.max_turns == 7
    assert (str(by["a"].channel), by["a"].max_turns) == ("whatsapp", 7)
    assert (str(by["b"].channel), by["b"].max_turns) == ("slack", 3)
    assert by["p"].max_turns == 4  # the persona's own limit beats the suite default
    assert (str(by["c"].channel), by["c"].max_turns) == ("voice", 7)  # nested suite inherits
    assert [j.name for j in suite.judges_for(by["c"])] == ["no_pii_leak"]
    assert (suite.agent_for(by["a"]), suite.trials_for(by["a"])) == ("x:y", 1)
    assert (suite.agent_for(by["c"]), suite.trials_for(by["c"])) == ("other:make", 3)


def test_include_limits_files_and_cannot_escape(tmp_path: Path) -> None:
    write(tmp_path / "suite.yaml", "include:\n  - keep.yaml\n  - more\n")
    write(tmp_path / "keep.yaml", "id: keep\nuser: {script: [hi]}\n")
    write(tmp_path / "skip.yaml", "id: skip\nuser: {script: [hi]}\n")
    write(tmp_path / "more" / "m.yaml", "id: m\nuser: {script: [hi]}\n")
    assert [s.id for s in load_suite([tmp_path]).scenarios] == ["keep", "m"]

    write(tmp_path / "suite.yaml", "include:\n  - keep.yaml\n  - ../outside.yaml\n  - missing.yaml\n")
    got = messages([tmp_path])
    assert got == [
        f"{tmp_path / 'suite.yaml'}:3: include: '../outside.yaml' is outside the suite folder",
        f"{tmp_path / 'suite.yaml'}:4: include: 'missing.yaml' does not exist",
    ]


def test_include_globs(tmp_path: Path) -> None:
    write(tmp_path / "suite.yaml", "include:\n  - 'orders/*.yaml'\n  - 'none/*.yaml'\n")
    write(tmp_path / "orders" / "a.yaml", "id: a\nuser: {script: [hi]}\n")
    write(tmp_path / "orders" / "b.yaml", "id: b\nuser: {script: [hi]}\n")
    write(tmp_path / "orders" / "notes.txt", "not yaml")
    write(tmp_path / "other.yaml", "id: other\nuser: {script: [hi]}\n")
    assert messages([tmp_path]) == [f"{tmp_path / 'suite.yaml'}:3: include: 'none/*.yaml' matches no file"]
    write(tmp_path / "suite.yaml", "include: ['orders/*.yaml']\n")
    assert [s.id for s in load_suite([tmp_path]).scenarios] == ["a", "b"]


def test_include_cycle_detected(tmp_path: Path) -> None:
    write(tmp_path / "suite.yaml", "include: [sub]\n")
    write(tmp_path / "sub" / "suite.yaml", "include: [loop]\n")
    os.symlink(tmp_path / "sub", tmp_path / "sub" / "loop")
    got = messages([tmp_path])
    assert len(got) == 1 and "include cycle" in got[0] and got[0].startswith(str(tmp_path / "sub" / "loop"))


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "id: same\nuser: {script: [hi]}\n")
    write(tmp_path / "b.yaml", "- id: other\n  user: {script: [hi]}\n- id: same\n  user: {script: [hi]}\n")
    with pytest.raises(ScenarioError) as info:
        load_suite([tmp_path])
    assert str(info.value) == (
        f"{tmp_path / 'b.yaml'}:3: id: duplicate scenario id 'same' (first defined at {tmp_path / 'a.yaml'}:1)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: a\nuser: {script: [hi]}\nchanel: web\n",
            "3: chanel: unknown field 'chanel' (did you mean 'channel'?)",
        ),
        (
            "id: a\nuser:\n  script: [hi]\n  persona: {goal: {description: x}}\n",
            "2: user: give exactly one of",
        ),
        ("id: a\nuser: {script: [hi]}\nmax_turns: lots\n", "3: max_turns: Input should be a valid integer"),
        ("id: a\nuser: {script: [hi]}\ntags: notalist\n", "3: tags: Input should be a valid list"),
        ("id: a\ntitle: t\n", "1: user: required field is missing"),
        ("id: 'bad id!'\nuser: {script: [hi]}\n", "1: id: String should match pattern"),
        (
            "id: a\nuser:\n  persona:\n    goal: {description: x}\n    traits: {tone: grumpy}\n",
            "5: user.persona.traits.tone: Input should be",
        ),
        ("id: a\nuser: {script: []}\n", "2: user: 'script' must have at least one step"),
        ("id: a\nid: b\nuser: {script: [hi]}\n", "2: duplicate key 'id' (also on line 1)"),
        ("id: a\n  user: [\n", "invalid YAML"),
        ("42\n", "1: expected a scenario mapping or a list of scenarios, got int"),
        ("", "1: file is empty"),
        ("scenarios: {id: a}\n", "1: scenarios: must be a list of scenarios"),
        ("scenarios: []\nversion: 2\n", "2: version: unknown top-level field 'version'"),
        ("- 7\n", "1: [0]: a scenario must be a mapping, got int"),
    ],
)
def test_errors_are_one_line_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path / "s.yaml", text) if text else tmp_path / "s.yaml"
    if not text:
        f.write_bytes(b"")
    got = messages([f])
    assert got, "expected a problem"
    assert any(m.startswith(f"{f}:") and expected in m for m in got), got
    assert all("\n" not in m for m in got)


def test_judge_errors_carry_file_line_and_field(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.yaml",
        """
        id: a
        user:
          script:
            - say: hi
              expect:
                - tool_called: {name: x, bogus: 1}
        expect:
          - no_such_judge
          - outcome: {value: resolved, extra: 2}
        max_turns: oops
        """,
    )
    errors = validate_paths([f])
    judge_errors = [e for e in errors if isinstance(e, JudgeSpecError)]
    text = [str(e) for e in judge_errors]
    # Judge problems are reported even though the scenario also has a plain field error.
    assert any(isinstance(e, ScenarioError) and e.field == "max_turns" for e in errors)
    assert any(
        m.startswith(f"{f}:8: expect[0].no_such_judge: unknown judge 'no_such_judge'") for m in text
    ), text
    assert any(m.startswith(f"{f}:6: user.script[0].expect[0].tool_called") and "bogus" in m for m in text), (
        text
    )
    only_judge = write(tmp_path / "j.yaml", "id: j\nuser: {script: [hi]}\nexpect: [no_such_judge]\n")
    with pytest.raises(JudgeSpecError) as info:
        load_suite([only_judge])
    assert str(info.value).startswith(f"{only_judge}:3: expect[0].no_such_judge: unknown judge")


def test_user_judge_by_module_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "myjudges.py",
        """
        from evalkit.judges.base import Judge

        class Polite(Judge):
            name = "polite"
            word: str = "please"

            def evaluate(self, ctx):
                return self.verdict(True, "ok")
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    f = write(
        tmp_path / "s.yaml", "id: a\nuser: {script: [hi]}\nexpect:\n  - myjudges:Polite: {word: thanks}\n"
    )
    assert load_suite([f]).scenarios[0].expect[0].args == {"word": "thanks"}
    write(tmp_path / "s.yaml", "id: a\nuser: {script: [hi]}\nexpect:\n  - myjudges:Polite: {wrod: thanks}\n")
    # Loading for a run builds the judge (the suite's code runs: it is trusted) and checks
    # its arguments; `validate` executes none of the suite's code, so it cannot.
    with pytest.raises(JudgeSpecError) as info:
        load_suite([f])
    assert str(info.value) == (
        f"{f}:4: expect[0].myjudges:Polite.wrod: unknown argument 'wrod' for judge 'myjudges:Polite' "
        "(did you mean 'word'?)"
    )
    assert messages([f]) == []


def test_typos_in_judge_arguments_get_a_did_you_mean(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.yaml",
        """
        id: a
        user: {script: [hi]}
        expect:
          - tool_called: {nme: lookup_order}
          - said: {contain: hi}
          - said: {prefx: hi}
          - said: {zzz: hi}
        """,
    )
    # The typo is named, not the argument it made "missing" (it used to say "name: Field required").
    assert messages([f]) == [
        f"{f}:4: expect[0].tool_called.nme: unknown argument 'nme' for judge 'tool_called' (did you mean 'name'?)",
        f"{f}:5: expect[1].said.contain: unknown argument 'contain' for judge 'said' (did you mean 'contains'?)",
        f"{f}:6: expect[2].said.prefx: unknown argument 'prefx' for judge 'said' (did you mean 'regex'?)",
        f"{f}:7: expect[3].said.zzz: unknown argument 'zzz' for judge 'said' "
        "(it takes: contains, any_of, regex, where, turn, case_sensitive)",
    ]


def test_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert messages([missing]) == [f"{missing}: no such file or folder"]

    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"id: a\x00\x01\x02")
    assert messages([binary]) == [f"{binary}: not a text file (contains NUL bytes)"]

    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"id: a\ntitle: caf\xe9\n")
    assert messages([latin]) == [f"{latin}:2: not valid UTF-8 (byte 0xe9)"]

    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(11_000_000)  # "11 MB": once shown as "(10 MB; limit 10 MB)"
    assert big.stat().st_size > MAX_FILE_BYTES
    assert messages([big]) == [
        f"{big}: file is too large: 11,000,000 bytes (10.5 MiB); the limit is 10,485,760 bytes (10.0 MiB)"
    ]

    bom = write(tmp_path / "bom.yaml", "")
    bom.write_bytes("\ufeffid: a\nuser: {script: [hi]}\n".encode())
    assert [s.id for s in load_suite([bom]).scenarios] == ["a"]


def test_empty_suite_and_tag_filter(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match="no scenarios found"):
        load_suite([tmp_path / "empty"])
    write(
        tmp_path / "s" / "a.yaml",
        "- id: a\n  tags: [x]\n  user: {script: [hi]}\n- id: b\n  tags: [y]\n  user: {script: [hi]}\n",
    )
    assert [s.id for s in load_suite([tmp_path / "s"], tags=["y"]).scenarios] == ["b"]
    with pytest.raises(ScenarioError, match="no scenario has any of the tags"):
        load_suite([tmp_path / "s"], tags=["zzz"])


def test_alias_bomb_and_dates(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 150)]
    bomb = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    got = messages([bomb])
    assert len(got) == 1 and "YAML aliases" in got[0]
    dated = write(tmp_path / "d.yaml", "id: a\ndescription: 2024-05-01\nuser: {script: [hi]}\n")
    assert load_suite([dated]).scenarios[0].description == "2024-05-01"


def test_several_paths_collect_every_problem(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", "id: g\nuser: {script: [hi]}\n")
    bad1 = write(tmp_path / "bad1.yaml", "id: b1\nuser: {script: [hi]}\nfoo: 1\n")
    bad2 = write(tmp_path / "bad2.yaml", "id: b2\nuser: {script: [hi]}\nbar: 1\n")
    got = messages([good, bad1, bad2])
    assert [m.split(":")[0] for m in got] == [str(bad1), str(bad2)]
    assert validate_paths([good]) == []
