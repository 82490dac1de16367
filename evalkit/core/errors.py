"""The one exception tree for misuse of evalkit.

Misuse (a bad scenario file, an unknown judge, a bad flag) raises an ``EvalkitError``
early; the CLI prints it as one line and exits 2. Failures of the thing under test are
never raised: they are recorded on the conversation as data.
"""

from __future__ import annotations

__all__ = [
    "EvalkitError",
    "ConfigError",
    "ScenarioError",
    "AgentSpecError",
    "JudgeSpecError",
    "RunFolderError",
]


class EvalkitError(Exception):
    """Base class for every error that means "the input or the call is wrong".

    ``file``, ``line`` and ``field`` locate the problem; ``str()`` renders the one-line
    form ``file:line: field: problem`` the CLI prints.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.file = file
        self.line = line
        self.field = field

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.field:
            parts.append(self.field)
        parts.append(" ".join(self.problem.split()))  # always one line
        return ": ".join(parts)


class ConfigError(EvalkitError):
    """A flag, environment variable or option value is wrong."""


class ScenarioError(EvalkitError):
    """A scenario or suite file is wrong."""


class AgentSpecError(EvalkitError):
    """An ``--agent`` spec cannot be resolved to an agent."""


class JudgeSpecError(EvalkitError):
    """A judge is unknown or its arguments are wrong."""


class RunFolderError(EvalkitError):
    """A run folder given to report/compare/gate/resume is missing or corrupt."""
