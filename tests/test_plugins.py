"""One plugin of each kind (judge, simulated user, agent adapter, importer) loaded through the
entry-point path, with nothing installed.

The plugins and their entry-point table are the README's "Extending evalkit" examples, taken
from the README itself: the module is written to a temporary folder beside a
``my_plugins-0.1.dist-info`` folder (``METADATA`` and ``entry_points.txt``, what ``pip install``
leaves), the folder goes on ``sys.path``, and :mod:`importlib.metadata` finds them as it would
find an installed package's.
"""

from __future__ import annotations

import importlib
import json
import random
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from _recorded_helpers import make_cli

from evalkit.agents import load_agent
from evalkit.agents.base import SessionInfo, TurnContext
from evalkit.core.errors import ConfigError, JudgeSpecError
from evalkit.core.transcript import AgentTurn, Transcript, UserTurn
from evalkit.integrations.importers import read_recordings
from evalkit.judges import JudgeContext, build_judge
from evalkit.scenarios.models import JudgeSpec, Scenario
from evalkit.simulators import SimulatorContext, UserMessage, make_simulator

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_blocks() -> tuple[str, str]:
    """The "Extending evalkit" section's entry-point table (TOML) and plugin module (Python)."""
    section = README.read_text(encoding="utf-8").split("\n## Extending evalkit\n", 1)[1].split("\n## ", 1)[0]
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert toml and code, "README: 'Extending evalkit' lost its toml or python example"
    return toml.group(1), code.group(1)


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The README's plugins, "installed" as a distribution on sys.path (nothing pip-installed)."""
    table, code = _readme_blocks()
    site = tmp_path / "site"
    dist = site / "my_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "my_plugins.py").write_text(code, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugins\nVersion: 0.1\n", encoding="utf-8")
    groups = tomllib.loads(table)["project"]["entry-points"]
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {ref}\n" for name, ref in eps.items()) + "\n"
        for group, eps in groups.items()), encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "my_plugins", raising=False)
    yield importlib.import_module("my_plugins")
    sys.modules.pop("my_plugins", None)


def _persona() -> Scenario:
    return Scenario.model_validate({"id": "p", "user": {"persona": {"goal": {"description": "where is my parcel"}}}})


def test_a_plugin_of_each_kind_loads_through_its_entry_point(plugins: ModuleType, tmp_path: Path) -> None:
    scenario = _persona()

    user = make_simulator(scenario, kind="echo")
    assert isinstance(user, plugins.EchoUser)
    ctx = SimulatorContext(scenario=scenario, transcript=Transcript(scenario_id="p"), turn=1,
                           rng=random.Random(0), max_turns=5)
    first = user.next_turn(ctx)
    assert isinstance(first, UserMessage) and first.content == "where is my parcel"

    provider = load_agent("parrot:x")
    assert isinstance(provider, plugins.ParrotProvider)
    agent = provider.new_session(SessionInfo(session_id="s", scenario_id="p"))
    reply = agent.respond(TurnContext(session=SessionInfo(session_id="s", scenario_id="p"), message=first.content, turn=1))

    judge = build_judge(JudgeSpec(name="polite"))
    assert isinstance(judge, plugins.Polite)
    transcript = Transcript(scenario_id="p", turns=[UserTurn(content=first.content), AgentTurn(content=reply)])
    verdict = judge.evaluate(JudgeContext(transcript=transcript, scenario=scenario))
    assert verdict.judge == "polite" and verdict.passed is True

    (tmp_path / "log.txt").write_text("hello\n\nwhere is my parcel\n", encoding="utf-8")
    imported = read_recordings("lines", tmp_path / "log.txt")
    assert [s.id for s in imported.scenarios] == ["line-1", "line-2"]
    assert json.loads(imported.recordings[1].transcript.model_dump_json())["turns"][0]["content"] == "where is my parcel"


def test_a_misspelt_plugin_name_gets_a_did_you_mean(plugins: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(JudgeSpecError, match="unknown judge 'polit' \\(did you mean 'polite'\\?"):
        build_judge(JudgeSpec(name="polit"))
    with pytest.raises(ConfigError, match="unknown simulator 'ecko' \\(did you mean 'echo'\\?"):
        make_simulator(_persona(), kind="ecko")
    (tmp_path / "log.txt").write_text("hi\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown format 'line' \\(did you mean 'lines'\\?"):
        read_recordings("line", tmp_path / "log.txt")


def test_without_the_plugins_the_names_are_unknown(tmp_path: Path) -> None:
    with pytest.raises(JudgeSpecError, match="unknown judge 'polite'"):
        build_judge(JudgeSpec(name="polite"))
    with pytest.raises(ConfigError, match="unknown simulator 'echo'"):
        make_simulator(_persona(), kind="echo")


def test_the_plugins_work_from_the_command_line(plugins: ModuleType, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    evalkit = make_cli(monkeypatch, capsys)
    (tmp_path / "s.yaml").write_text(
        "scenarios:\n"
        "  - id: parcel\n"
        "    user: {persona: {goal: {description: where is my parcel}}}\n"
        "    expect: [polite]\n")
    out = evalkit("run", "s.yaml", "--agent", "parrot:x", "--simulator", "echo", "--out", "r", "--no-progress")
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "r" / "conversations.jsonl").read_text().splitlines()[0])
    assert [t["content"] for t in row["transcript"]["turns"]] == [
        "where is my parcel", "Thank you, you said: where is my parcel"]
    assert [(v["judge"], v["passed"]) for v in row["verdicts"] if v["judge"] == "polite"] == [("polite", True)]
    (tmp_path / "log.txt").write_text("hello\nwhere is my parcel\n", encoding="utf-8")
    out = evalkit("import", "lines", "log.txt", "--out", "imported")
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "imported" / "conversations.jsonl").read_text().splitlines()) == 2
