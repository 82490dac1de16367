"""Scenario files and suites: the models and the loader."""

from evalkit.scenarios.loader import Suite, load_suite, validate_paths
from evalkit.scenarios.models import (
    Channel,
    GateConfig,
    Goal,
    JudgeSpec,
    Persona,
    PersonaTraits,
    Scenario,
    ScriptStep,
    SuiteConfig,
    UserSpec,
)

__all__ = [
    "Channel",
    "GateConfig",
    "Goal",
    "JudgeSpec",
    "Persona",
    "PersonaTraits",
    "Scenario",
    "ScriptStep",
    "SuiteConfig",
    "UserSpec",
    "Suite",
    "load_suite",
    "validate_paths",
]
