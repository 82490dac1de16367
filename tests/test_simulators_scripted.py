"""ScriptedUser and make_simulator."""

from __future__ import annotations

import pytest
from _simulators_helpers import always, persona_scenario, play, users

from evalkit.core.errors import ConfigError, ScenarioError
from evalkit.core.transcript import StopReason
from evalkit.scenarios.models import Scenario
from evalkit.simulators import SIMULATORS, make_simulator
from evalkit.simulators.persona import PersonaUser
from evalkit.simulators.scripted import ScriptedUser


def _scripted(*steps):
    return Scenario.model_validate({"id": "s", "user": {"script": list(steps)}})


def test_replays_steps_then_script_done():
    sc = _scripted("hello", {"say": "where is ORD-1?", "expect": [{"said": "shipped"}]}, "thanks")
    t, stop = play(sc, always("ok"))
    assert users(t) == ["hello", "where is ORD-1?", "thanks"]
    assert [u.act for u in t.user_turns] == ["script:1", "script:2", "script:3"]
    assert len(t.agent_turns) == 3  # the last step's reply is recorded before stopping
    assert stop.reason == StopReason.script_done


def test_script_longer_than_max_turns_stops_at_max_turns():
    t, stop = play(_scripted("a", "b", "c", "d"), always("ok"), max_turns=2)
    assert users(t) == ["a", "b"] and stop.reason == StopReason.max_turns


def test_make_simulator_picks_by_scenario():
    assert isinstance(make_simulator(_scripted("hi"), seed=1), ScriptedUser)
    assert isinstance(make_simulator(persona_scenario(), seed=1), PersonaUser)
    assert isinstance(make_simulator(persona_scenario(), kind="persona", seed=1), PersonaUser)
    # a script is replayed whatever simulator the run asked for
    assert isinstance(make_simulator(_scripted("hi"), kind="persona"), ScriptedUser)
    # no LLM user registered yet: auto with a model still plays the offline persona
    if "llm" not in SIMULATORS:
        assert isinstance(make_simulator(persona_scenario(), llm=object()), PersonaUser)


def test_make_simulator_misuse_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="unknown simulator 'robot'"):
        make_simulator(persona_scenario(), kind="robot")
    with pytest.raises(ConfigError, match="has a persona, not a script"):
        make_simulator(persona_scenario(), kind="scripted")
    if "llm" not in SIMULATORS:
        with pytest.raises(ConfigError) as err:
            make_simulator(persona_scenario(), kind="llm")
        assert "\n" not in str(err.value) and "simulator 'llm' is not available" in str(err.value)


def test_simulator_classes_refuse_the_wrong_scenario_kind():
    with pytest.raises(ScenarioError, match="has no script"):
        ScriptedUser(persona_scenario())
    with pytest.raises(ScenarioError, match="has no persona"):
        PersonaUser(_scripted("hi"))
