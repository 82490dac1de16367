"""tools/regroup.py: the text rewrites that move evalkit's flat modules into packages.

This file holds old module names on purpose; tools/regroup.py never rewrites it.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rg() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regroup", ROOT / "tools" / "regroup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["regroup"] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["regroup"]
    return module


def _sub(rg: ModuleType, old: str, new: str, text: str) -> str:
    return rg.dotted_pattern(rg.Entry(old, new)).sub(new, text)


def test_dotted_names_move_in_code_strings_and_prose(rg: ModuleType) -> None:
    e = ("evalkit.runner", "evalkit.run.runner")
    assert _sub(rg, *e, 'monkeypatch.setattr("evalkit.runner.time", t)') == (
        'monkeypatch.setattr("evalkit.run.runner.time", t)'
    )
    assert _sub(rg, *e, 'importlib.import_module("evalkit.runner")') == 'importlib.import_module("evalkit.run.runner")'
    assert _sub(rg, *e, "see `evalkit.runner.Runner`.") == "see `evalkit.run.runner.Runner`."
    # another module whose name starts the same, or one under another package, stays
    assert _sub(rg, *e, "evalkit.runners and evalkit.cli.runner") == "evalkit.runners and evalkit.cli.runner"
    load = ("evalkit.load", "evalkit.run.load")
    assert _sub(rg, *load, "evalkit.load_report, evalkit.load") == "evalkit.load_report, evalkit.run.load"


def test_a_module_that_becomes_its_own_package_moves_once(rg: ModuleType) -> None:
    old, new = "evalkit.metrics", "evalkit.metrics.summary"
    once = _sub(rg, old, new, "evalkit.metrics.summarize and evalkit.metrics")
    assert once == "evalkit.metrics.summary.summarize and evalkit.metrics.summary"
    assert _sub(rg, old, new, once) == once  # the new package's modules are never read as attributes
    assert _sub(rg, old, new, "evalkit.metrics.stats.wilson_interval") == "evalkit.metrics.stats.wilson_interval"


def test_an_entry_point_group_name_stays(rg: ModuleType) -> None:
    e = ("evalkit.importers", "evalkit.integrations.importers")
    assert _sub(rg, *e, '[project.entry-points."evalkit.importers"]') == '[project.entry-points."evalkit.importers"]'
    assert _sub(rg, *e, "group='evalkit.importers'") == "group='evalkit.importers'"
    assert _sub(rg, *e, "| `evalkit.importers` |") == "| `evalkit.importers` |"
    assert _sub(rg, *e, '"evalkit.importers.uss"') == '"evalkit.integrations.importers.uss"'


def test_from_evalkit_import_is_split_per_moved_module(rg: ModuleType) -> None:
    active = [rg.Entry("evalkit.stats", "evalkit.metrics.stats"), rg.Entry("evalkit.metrics", "evalkit.metrics.summary")]
    text = "from evalkit import __version__, stats\n    from evalkit import metrics as m  # noqa: F401\n"
    assert rg.split_from_evalkit(text, active) == (
        "from evalkit import __version__\nfrom evalkit.metrics import stats\n"
        "    from evalkit.metrics import summary as m  # noqa: F401\n"
    )
    assert rg.split_from_evalkit("from evalkit import (\n    metrics,\n)\n", active) == (
        "from evalkit.metrics import summary as metrics\n"
    )
    assert rg.split_from_evalkit("from evalkit import Verdict\n", active) == "from evalkit import Verdict\n"


def test_relative_imports_become_absolute(rg: ModuleType) -> None:
    path = ROOT / "evalkit" / "pkg" / "mod.py"
    text = "from . import a\nfrom .b import c\n    from ..d.e import f\n"
    assert rg.absolutize(path, text) == (
        "from evalkit.pkg import a\nfrom evalkit.pkg.b import c\n    from evalkit.d.e import f\n"
    )
    init = ROOT / "evalkit" / "pkg" / "__init__.py"
    assert rg.absolutize(init, "from .b import c\n") == "from evalkit.pkg.b import c\n"


def test_the_importlinter_table_is_replaced_in_place(rg: ModuleType) -> None:
    before = (
        '[project]\nname = "x"\ndev = ["import-linter",  # contracts in [tool.importlinter]\n]\n\n'
        '[tool.importlinter]\nroot_packages = ["evalkit"]\n\n[[tool.importlinter.contracts]]\nname = "old"\n'
        'type = "forbidden"\nsource_modules = ["a"]\nforbidden_modules = ["b"]\n\n# ruff\n[tool.ruff]\nx = 1\n'
    )
    after = rg.write_importlinter(before)
    data = tomllib.loads(after)
    names = [c["name"] for c in data["tool"]["importlinter"]["contracts"]]
    assert "old" not in names and "core is the bottom layer" in names
    assert data["tool"]["ruff"] == {"x": 1} and "# ruff\n[tool.ruff]" in after
    assert after.startswith('[project]\nname = "x"\ndev = ["import-linter",  # contracts in [tool.importlinter]')
    assert rg.write_importlinter(after) == after


def test_every_new_package_in_the_mapping_has_a_docstring(rg: ModuleType) -> None:
    parents = {new.rsplit(".", 1)[0] for new in rg.MAPPING.values()}
    stays = {f"evalkit.{name}" for name in rg.STAYS}
    assert parents - stays - {"evalkit"} <= set(rg.NEW_PACKAGES)
