"""Code a suite names (agents, judges): found without running it, shown before it runs.

A suite is code you trust, like a ``conftest.py``: ``agent: my_bot:create_agent`` or a
``module:Class`` judge runs that code when the suite runs (and ``agent:
subprocess:getoutput?cmd=...`` would run a shell command). So ``evalkit validate`` only
*finds* such modules (:func:`find_module`, which executes nothing), and ``evalkit run``
prints what it resolved each name to (:func:`code_origin`) before the first conversation.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import sys
from importlib.machinery import ModuleSpec

__all__ = ["find_module", "code_origin"]


def find_module(name: str) -> ModuleSpec | None:
    """Where module ``name`` would be imported from, found without running any of it.

    ``importlib.util.find_spec("a.b")`` imports (runs) package ``a`` first; here only the
    top-level name goes through the import system's finders, and each submodule is looked
    up in its parent's folders by the path finder, which reads directories only.
    """
    parts = name.split(".")
    loaded = sys.modules.get(parts[0])
    try:
        spec = loaded.__spec__ if loaded is not None else importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                return None
            full = ".".join(parts[: i + 1])
            loaded = sys.modules.get(full)
            spec = (
                loaded.__spec__
                if loaded is not None
                else importlib.machinery.PathFinder.find_spec(full, list(spec.submodule_search_locations))
            )
    except (ImportError, ValueError, AttributeError):
        return None
    return spec


def code_origin(obj: object) -> str:
    """``module:qualname from FILE`` of a class or function (where it was really found)."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    try:
        where = inspect.getsourcefile(obj) or inspect.getfile(obj)  # type: ignore[arg-type]
    except (TypeError, OSError):
        where = getattr(sys.modules.get(module), "__file__", None) or "(built into Python)"
    return f"{module}:{qualname} from {where}"
