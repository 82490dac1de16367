"""Simulated users: ``next_turn(ctx) -> UserMessage | Stop``.

:func:`make_simulator` picks the simulator for a scenario from :data:`SIMULATORS` (built-in
``module:Class`` references plus the ``evalkit.simulators`` entry-point group), imported only
when used. A simulator class is constructed as
``Class(scenario, seed=..., llm=...)``, once per conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalkit.core.errors import ConfigError
from evalkit.core.registry import PluginLoadError, Registry, UnknownName
from evalkit.scenarios.models import Scenario
from evalkit.simulators.base import Simulator, SimulatorContext, Stop, UserMessage

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = [
    "SIMULATORS",
    "SIMULATOR_KINDS",
    "check_simulator",
    "make_simulator",
    "Simulator",
    "SimulatorContext",
    "Stop",
    "UserMessage",
    "ScriptedUser",
    "PersonaUser",
]

# kind -> "module:Class"; plugins come from the "evalkit.simulators" entry-point group.
SIMULATORS = Registry("simulator", "evalkit.simulators", {
    "scripted": "evalkit.simulators.scripted:ScriptedUser",
    "persona": "evalkit.simulators.persona:PersonaUser",
    "llm": "evalkit.simulators.llm:LLMUser",
})

SIMULATOR_KINDS = ("auto", "scripted", "persona", "llm")


def _load(kind: str) -> type:
    try:
        return SIMULATORS.load(kind)  # type: ignore[no-any-return]
    except UnknownName:
        raise ConfigError(
            f"simulator '{kind}' is not available (available: {', '.join(['auto', *SIMULATORS.names()])})",
            field="simulator",
        ) from None
    except PluginLoadError as exc:
        raise ConfigError(f"simulator '{kind}' cannot be loaded from {SIMULATORS.ref(kind)}: {exc}",
                          field="simulator") from None


def check_simulator(kind: str, *, field: str = "simulator") -> None:
    """Raise :class:`ConfigError` (with a did-you-mean) unless ``kind`` is a built-in or
    installed simulator."""
    if kind not in SIMULATOR_KINDS and kind not in SIMULATORS:
        known = list(dict.fromkeys([*SIMULATOR_KINDS, *SIMULATORS.names()]))
        raise ConfigError(UnknownName("simulator", kind, known).message, field=field)


def make_simulator(
    scenario: Scenario, *, kind: str = "auto", seed: int = 0, llm: ModelClients | None = None
) -> Simulator:
    """The simulated user for one conversation of ``scenario``.

    ``auto``: a script is replayed by ``scripted``; a persona is played by ``llm`` when a
    model client is given and an LLM user is registered, else by the offline ``persona``.
    """
    check_simulator(kind)
    if kind == "auto":
        if scenario.user.script is not None:
            kind = "scripted"
        else:
            has_model = llm is not None and llm.simulator is not None
            kind = "llm" if has_model and "llm" in SIMULATORS else "persona"
    elif kind != "scripted" and scenario.user.script is not None:
        # A scripted scenario has no persona to play: replay it whatever was asked.
        kind = "scripted"
    elif kind == "scripted" and scenario.user.script is None:
        raise ConfigError(
            f"scenario '{scenario.id}' has a persona, not a script; use --simulator persona, llm or auto",
            field="simulator",
        )
    cls = _load(kind)
    return cls(scenario, seed=seed, llm=llm)


def __getattr__(name: str) -> Any:
    if name == "ScriptedUser":
        from evalkit.simulators.scripted import ScriptedUser

        return ScriptedUser
    if name == "PersonaUser":
        from evalkit.simulators.persona import PersonaUser

        return PersonaUser
    raise AttributeError(f"module 'evalkit.simulators' has no attribute {name!r}")
