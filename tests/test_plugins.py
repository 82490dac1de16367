"""One plugin of each kind (judge, simulated user, agent adapter, importer) loaded through the
entry-point path, with nothing installed: ``importlib.metadata.entry_points`` is replaced by
one returning ``EntryPoint`` objects that point at the classes below (public API only).

The four plugins are the README's "Extending evalkit" examples.
"""

from __future__ import annotations

import json
import random
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest

from evalkit.agents import load_agent
from evalkit.agents.base import AgentConfig, AgentProvider, SessionInfo, TurnContext
from evalkit.errors import ConfigError, JudgeSpecError
from evalkit.importers import Imported, Recording, read_recordings
from evalkit.judges import Judge, JudgeContext, build_judge
from evalkit.results import Verdict
from evalkit.scenarios.models import JudgeSpec, Scenario
from evalkit.simulators import SimulatorContext, Stop, UserMessage, make_simulator
from evalkit.transcript import AgentTurn, StopReason, Transcript, UserTurn

# -- the plugins (as a package would ship them) ----------------------------------------------


class Polite(Judge):
    """Every agent turn says please or thank you."""

    name: ClassVar[str] = "polite"

    def evaluate(self, ctx: JudgeContext) -> Verdict:
        rude = [n for n, turn in ctx.agent_turns() if not any(w in turn.content.lower() for w in ("please", "thank"))]
        if rude:
            return self.verdict(False, f"no please/thank you at turn {rude[0]}", turn=rude[0])
        return self.verdict(True, "every agent turn is polite")


class EchoUser:
    """Says its persona's goal, then stops."""

    def __init__(self, scenario: Scenario, *, seed: int = 0, llm: Any = None) -> None:
        self.goal = scenario.user.persona.goal.description if scenario.user.persona else "hello"

    def next_turn(self, ctx: SimulatorContext) -> UserMessage | Stop:
        if ctx.turn > 1:
            return Stop(reason=StopReason.goal_met)
        return UserMessage(content=self.goal)


class ParrotAgent:
    def respond(self, ctx: TurnContext) -> str:
        return f"Thank you, you said: {ctx.message}"


class ParrotProvider(AgentProvider):
    """``--agent parrot:anything``: an agent that repeats the user, politely."""

    def __init__(self, spec: str, config: AgentConfig | None = None) -> None:
        self.spec = spec

    def new_session(self, info: SessionInfo) -> ParrotAgent:
        return ParrotAgent()


class LinesFormat:
    """``evalkit import lines FILE``: one user message per line, each its own conversation."""

    @staticmethod
    def read(path: Path, **options: Any) -> Imported:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        scenarios = [Scenario.model_validate({"id": f"line-{i}", "user": {"script": [line]}})
                     for i, line in enumerate(lines, 1)]
        recordings = [Recording(Transcript(scenario_id=s.id, turns=[UserTurn(content=line)]))
                      for s, line in zip(scenarios, lines, strict=True)]
        return Imported(format="lines", source=str(path), scenarios=scenarios, recordings=recordings)


# -- the entry-point path ---------------------------------------------------------------------

_PLUGINS = [
    metadata.EntryPoint(name="polite", value=f"{__name__}:Polite", group="evalkit.judges"),
    metadata.EntryPoint(name="echo", value=f"{__name__}:EchoUser", group="evalkit.simulators"),
    metadata.EntryPoint(name="parrot", value=f"{__name__}:ParrotProvider", group="evalkit.agents"),
    metadata.EntryPoint(name="lines", value=f"{__name__}:LinesFormat", group="evalkit.importers"),
]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def entry_points(**select: Any) -> metadata.EntryPoints:
        return metadata.EntryPoints(_PLUGINS).select(**select)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def _persona() -> Scenario:
    return Scenario.model_validate({"id": "p", "user": {"persona": {"goal": {"description": "where is my parcel"}}}})


def test_a_plugin_of_each_kind_loads_through_its_entry_point(installed: None, tmp_path: Path) -> None:
    scenario = _persona()

    user = make_simulator(scenario, kind="echo")
    assert isinstance(user, EchoUser)
    ctx = SimulatorContext(scenario=scenario, transcript=Transcript(scenario_id="p"), turn=1,
                           rng=random.Random(0), max_turns=5)
    first = user.next_turn(ctx)
    assert isinstance(first, UserMessage) and first.content == "where is my parcel"

    provider = load_agent("parrot:x")
    assert isinstance(provider, ParrotProvider)
    agent = provider.new_session(SessionInfo(session_id="s", scenario_id="p"))
    reply = agent.respond(TurnContext(session=SessionInfo(session_id="s", scenario_id="p"), message=first.content, turn=1))

    judge = build_judge(JudgeSpec(name="polite"))
    assert isinstance(judge, Polite)
    transcript = Transcript(scenario_id="p", turns=[UserTurn(content=first.content), AgentTurn(content=reply)])
    verdict = judge.evaluate(JudgeContext(transcript=transcript, scenario=scenario))
    assert verdict.judge == "polite" and verdict.passed is True

    (tmp_path / "log.txt").write_text("hello\n\nwhere is my parcel\n", encoding="utf-8")
    imported = read_recordings("lines", tmp_path / "log.txt")
    assert [s.id for s in imported.scenarios] == ["line-1", "line-2"]
    assert json.loads(imported.recordings[1].transcript.model_dump_json())["turns"][0]["content"] == "where is my parcel"


def test_a_misspelt_plugin_name_gets_a_did_you_mean(installed: None, tmp_path: Path) -> None:
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
