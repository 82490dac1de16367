"""One way to look things up by name: judges, simulated users, agent adapters, import formats.

A :class:`Registry` maps a name to a ``module:attr`` reference for evalkit's built-ins and
falls back to an entry-point group for plugins other packages install
(``[project.entry-points."evalkit.judges"]``...). Nothing is imported until a name is asked
for, so listing names or loading a scenario never imports every plugin. A built-in name wins
over a plugin of the same name.

Written here because :mod:`importlib.metadata` gives the entry points but not the built-in
table, the lazy import of a reference or the did-you-mean message; this is the small glue.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["Registry", "UnknownName", "PluginLoadError", "import_ref"]


class UnknownName(LookupError):
    """No built-in and no plugin is registered under ``name``."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        self.hint = hint[0] if hint else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """``unknown judge 'tool_caled' (did you mean 'tool_called'?; known: ...)``."""
        did = f"did you mean '{self.hint}'?; " if self.hint else ""
        return f"unknown {self.kind} '{self.name}' ({did}known: {', '.join(self.known) or '(none)'})"


class PluginLoadError(ImportError):
    """A registered name whose module or attribute cannot be imported."""


def import_ref(ref: str) -> Any:
    """The object a ``module:attr`` reference (or a bare ``module``) names."""
    module_name, _, attr = ref.partition(":")
    if not module_name:
        raise PluginLoadError(f"'{ref}' is not a 'module:attr' reference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginLoadError(f"cannot import module '{module_name}': {exc}") from None
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginLoadError(f"module '{module_name}' has no '{attr}'") from None


@dataclass
class Registry:
    """Names of one kind of plugin: built-in ``module:attr`` references plus an entry-point group."""

    kind: str  # in messages: "judge", "simulator", "agent adapter", "format"
    group: str  # the entry-point group, e.g. "evalkit.judges"
    builtin: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every registered name, built-ins and installed plugins, sorted."""
        return sorted(set(self.builtin) | {ep.name for ep in metadata.entry_points(group=self.group)})

    def __contains__(self, name: object) -> bool:
        if name in self.builtin:
            return True
        return isinstance(name, str) and any(True for _ in metadata.entry_points(group=self.group, name=name))

    def ref(self, name: str) -> str | None:
        """Where ``name`` is defined (``module:attr``), or None when it is not registered."""
        if name in self.builtin:
            return self.builtin[name]
        for ep in metadata.entry_points(group=self.group, name=name):
            return ep.value
        return None

    def load(self, name: str) -> Any:
        """The object registered as ``name``.

        Raises :class:`UnknownName` (with a did-you-mean) when nothing is registered under it
        and :class:`PluginLoadError` when it is registered but cannot be imported.
        """
        if name in self.builtin:
            return import_ref(self.builtin[name])
        for ep in metadata.entry_points(group=self.group, name=name):
            try:
                return ep.load()
            except (ImportError, AttributeError) as exc:
                raise PluginLoadError(f"{self.kind} plugin '{name}' ({ep.value}) cannot be loaded: {exc}") from None
        raise UnknownName(self.kind, name, self.names())
