#!/usr/bin/env python3
"""Group evalkit's flat top-level modules into packages that read as the pipeline (issue 12, §5).

Run from the repository root on a clean tree, then review and commit::

    python tools/regroup.py --dry-run     # print the plan, change nothing
    python tools/regroup.py               # move, rewrite, re-sort imports

What it does, in order:

1. Fails (exit 1, listing them) if ``evalkit/`` holds a top-level module or package that is
   neither in ``MAPPING`` nor in ``STAYS``: a module someone added needs a place first.
2. Makes the relative imports inside ``evalkit/`` absolute (a move changes what ``..x`` means).
3. Creates the new packages (``__init__.py`` with a docstring, no re-exports) and ``git mv``s each
   mapping entry whose source exists; an entry whose source is absent is skipped with a note.
4. Rewrites every reference in the tracked text files (``*.py``, docs, configs, ``.ci/``,
   ``.github/``): dotted names (``evalkit.runner.Runner``, ``"evalkit.runner.time"`` patch targets,
   ``importlib.import_module("evalkit.x")``, entry points), paths (``evalkit/runner.py``), and
   ``from evalkit import x`` statements (split so each moved module is imported from its package
   under its old local name). ``CHANGELOG.md`` keeps its history as written.
5. Writes the ``[tool.importlinter]`` contracts for the new packages into ``pyproject.toml``.
6. Re-sorts the imports of the rewritten Python files with ``ruff check --select I --fix``.

Idempotent: on a regrouped tree it changes nothing. Plain text rewriting (with ``re``) is used
rather than a refactoring library because the references to rewrite live in Markdown, TOML,
YAML and string literals as much as in import statements, which AST-based tools (rope, libcst
codemods) do not touch.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Old dotted module -> new dotted module. A package moves with everything under it.
MAPPING: dict[str, str] = {
    # core: the data every layer shares, and helpers with no evalkit dependency above core
    "evalkit.transcript": "evalkit.core.transcript",
    "evalkit.results": "evalkit.core.results",
    "evalkit.errors": "evalkit.core.errors",
    "evalkit.registry": "evalkit.core.registry",
    "evalkit.plugins": "evalkit.core.plugins",
    "evalkit.untrusted": "evalkit.core.untrusted",
    "evalkit.pii": "evalkit.core.pii",
    "evalkit.masking": "evalkit.core.masking",
    "evalkit.redact": "evalkit.core.redact",
    "evalkit.pricing": "evalkit.core.pricing",
    "evalkit._plural": "evalkit.core._plural",
    "evalkit._clock": "evalkit.core._clock",  # the one clock for timestamps and run ids
    # the YAML loader that remembers lines serves scenarios, prices and gates alike; in core it
    # lets pricing (used by the model client) stay below scenarios
    "evalkit.scenarios._yaml": "evalkit.core._yaml",
    # run: playing conversations and writing a run folder
    "evalkit.play": "evalkit.run.play",
    "evalkit.runner": "evalkit.run.runner",
    "evalkit.runfolder": "evalkit.run.runfolder",
    "evalkit.runfiles": "evalkit.run.runfiles",
    "evalkit.recorded": "evalkit.run.recorded",
    "evalkit.load": "evalkit.run.load",
    "evalkit.backends": "evalkit.run.backends",
    "evalkit.workers": "evalkit.run.workers",
    "evalkit.scoring": "evalkit.run.scoring",
    # judges
    "evalkit.csat": "evalkit.judges.csat",
    # metrics: numbers from a finished run, comparing two runs, the gate
    "evalkit.metrics": "evalkit.metrics.summary",
    "evalkit.table": "evalkit.metrics.table",  # the per-conversation table (issue 12 §4)
    "evalkit.metric_table": "evalkit.metrics.table",
    "evalkit.metric_docs": "evalkit.metrics.docs",  # writes docs/metrics.md's table
    "evalkit.stats": "evalkit.metrics.stats",
    "evalkit.compare": "evalkit.metrics.compare",
    "evalkit.gate": "evalkit.metrics.gate",
    # formats metric values for every renderer; it reads MetricValue, so it sits with metrics
    "evalkit._numbers": "evalkit.metrics._numbers",
    # reports
    "evalkit.load_report": "evalkit.reports.load_report",
    # quality: checks of the suite itself
    "evalkit.selftest": "evalkit.quality.selftest",
    "evalkit.calibration": "evalkit.quality.calibration",
    "evalkit.mutation": "evalkit.quality.mutation",
    # integrations: other tools' formats and entry points
    "evalkit.pytest_plugin": "evalkit.integrations.pytest_plugin",
    "evalkit.importers": "evalkit.integrations.importers",
    "evalkit.interop": "evalkit.integrations.interop",
}

# New packages and the docstring of their __init__.py (no re-exports: importing one module of a
# package never loads its siblings).
NEW_PACKAGES: dict[str, str] = {
    "evalkit.core": "Shared data and helpers every layer uses: transcripts, results, errors, the "
    "plugin registry,\nPII detection and masking, prices. Imports no other evalkit package.",
    "evalkit.run": "Playing conversations and recording them: ``play`` (one conversation), the "
    "runner (scheduling,\ntrials, resume), the run folder, the load tester, scoring of recorded "
    "conversations.",
    "evalkit.metrics": "Numbers from a finished run: headline metrics (``summary``), statistics "
    "(``stats``), comparing\ntwo runs (``compare``) and the CI gate (``gate``).",
    "evalkit.quality": "Checks of the test suite itself: self-test, judge calibration, mutation "
    "testing.",
    "evalkit.integrations": "evalkit inside other tools: the pytest plugin, importers of other "
    "tools' conversations, export\nto other tools' formats.",
}

# Entry-point groups that share a name with a module that moves. Plugins register under these
# names in their own pyproject.toml, so a group name stays as it is: the quoted name alone
# ("evalkit.importers", or in backticks in the docs) is left alone; a module path that goes on
# (evalkit.importers.uss) moves.
ENTRY_POINT_GROUPS = {"evalkit.importers"}

# Top-level entries of evalkit/ that stay where they are.
STAYS = {
    "__init__.py", "__main__.py", "py.typed", "__pycache__",
    "scenarios", "simulators", "agents", "llm", "judges", "reports", "cli", "testing",
}

# Layer contracts for import-linter, written into pyproject.toml (tests/test_layers.py runs them).
IMPORTLINTER = '''\
[tool.importlinter]
# Layers point one way (checked by tests/test_layers.py, which runs `lint-imports`). Function-level
# imports count: a lazy import against the flow is still a dependency against the flow.
# docs/architecture.md draws the same layers.
root_packages = ["evalkit", "reference_agent"]

[[tool.importlinter.contracts]]
name = "core is the bottom layer"
type = "forbidden"
source_modules = ["evalkit.core"]
forbidden_modules = [
  "evalkit.scenarios", "evalkit.simulators", "evalkit.agents", "evalkit.llm", "evalkit.run",
  "evalkit.judges", "evalkit.metrics", "evalkit.reports", "evalkit.quality",
  "evalkit.integrations", "evalkit.cli", "evalkit.testing",
]

[[tool.importlinter.contracts]]
name = "scenarios and core know no runner"
type = "forbidden"
source_modules = ["evalkit.scenarios", "evalkit.core"]
forbidden_modules = ["evalkit.run"]

[[tool.importlinter.contracts]]
name = "judges and reports never import the loop"
type = "forbidden"
source_modules = ["evalkit.judges", "evalkit.reports"]
forbidden_modules = ["evalkit.run"]

[[tool.importlinter.contracts]]
name = "the model client imports no judge"
type = "forbidden"
source_modules = ["evalkit.llm"]
forbidden_modules = ["evalkit.judges"]

[[tool.importlinter.contracts]]
name = "evalkit never imports the reference agent"
type = "forbidden"
source_modules = ["evalkit"]
forbidden_modules = ["reference_agent"]
'''

TEXT_SUFFIXES = {
    ".py", ".pyi", ".md", ".rst", ".txt", ".toml", ".yaml", ".yml", ".cfg", ".ini", ".sh",
    ".json", ".jsonl", ".html", ".xml", ".j2",
}
ALWAYS_DIRS = (".ci/", ".github/")  # every tracked file there, whatever its name
NEVER = {"CHANGELOG.md", "tools/regroup.py", "tests/test_regroup.py"}

ROOT = Path(__file__).resolve().parent.parent


def path_of(module: str) -> Path:
    return ROOT.joinpath(*module.split("."))


def source_of(module: str) -> Path | None:
    """The file or package directory of ``module``, or None when it does not exist."""
    base = path_of(module)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base
    return None


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Entry:
    old: str
    new: str

    @property
    def prefix_case(self) -> bool:
        """The new name lies under the old one (``evalkit.metrics`` -> ``evalkit.metrics.summary``).

        Such an entry rewrites references only while its move is pending: afterwards the old name
        is the new package and must be left alone (that keeps a second run a no-op).
        """
        return self.new.startswith(self.old + ".")

    @property
    def pending(self) -> bool:
        src = source_of(self.old)
        return src is not None and not (self.prefix_case and src.is_dir())

    def rewrites(self) -> bool:
        return self.pending or not self.prefix_case

    @property
    def is_package(self) -> bool:
        src = source_of(self.old) if self.pending else source_of(self.new)
        return src is not None and src.is_dir()


ENTRIES = [Entry(o, n) for o, n in MAPPING.items()]


def _children_of_new(name: str) -> set[str]:
    """Names directly under package ``name`` in the new tree (kept out of a prefix rewrite)."""
    out = {n[len(name) + 1:].split(".")[0] for n in MAPPING.values() if n.startswith(name + ".")}
    return out


def dotted_pattern(e: Entry) -> re.Pattern[str]:
    old = re.escape(e.old)
    guard = ""
    if e.prefix_case:
        kids = "|".join(sorted(re.escape(k) for k in _children_of_new(e.old)))
        guard = rf"(?!\.(?:{kids})\b)"
    keep = ""
    if e.old in ENTRY_POINT_GROUPS:  # the group name alone in quotes is public API: it stays
        keep = "".join(rf"(?!(?<={q}){old}{q})" for q in ("\"", "'", "`"))
    return re.compile(rf"(?<![\w.]){keep}{old}(?!\w){guard}")


def path_patterns(e: Entry) -> list[tuple[re.Pattern[str], str]]:
    old_p = e.old.replace(".", "/")
    new_p = e.new.replace(".", "/")
    if e.is_package:  # evalkit/mutation/ or evalkit/mutation: never the prefix of a longer name
        return [(re.compile(rf"(?<![\w.-]){re.escape(old_p)}(?=/|(?![\w.]))"), new_p)]
    return [(re.compile(rf"(?<![\w.-]){re.escape(old_p)}\.py(?!\w)"), new_p + ".py")]


# ---------------------------------------------------------------------------------------------
# from evalkit import a, b as c

FROM_EVALKIT = re.compile(
    r"^(?P<ind>[ \t]*)from (?P<mod>evalkit(?:\.\w+)*) import (?:\((?P<par>[^)]*)\)|(?P<one>[^\n#]*?))[ \t]*(?P<cmt>#[^\n]*)?$",
    re.M,
)


def split_from_evalkit(text: str, active: list[Entry]) -> str:
    """``from evalkit import stats, __version__`` -> one import per moved module, rest kept."""

    def fix(m: re.Match[str]) -> str:
        moved = {e.old.rsplit(".", 1)[1]: e.new for e in active if e.old.rsplit(".", 1)[0] == m.group("mod")}
        if not moved:
            return m.group(0)
        body = m.group("par") if m.group("par") is not None else m.group("one")
        body = re.sub(r"#[^\n]*", "", body)
        names = [n.strip() for n in body.replace("\n", " ").split(",") if n.strip()]
        kept: list[str] = []
        lines: list[str] = []
        for item in names:
            name, _, alias = (p.strip() for p in item.partition(" as "))
            target = moved.get(name)
            if target is None:
                kept.append(item)
                continue
            parent, leaf = target.rsplit(".", 1)
            local = alias or name
            lines.append(f"from {parent} import {leaf}" + (f" as {local}" if local != leaf else ""))
        if not lines:
            return m.group(0)
        if kept:
            lines.insert(0, f"from {m.group('mod')} import " + ", ".join(kept))
        ind = m.group("ind")
        cmt = f"  {m.group('cmt')}" if m.group("cmt") else ""
        return "\n".join(ind + line + (cmt if i == 0 else "") for i, line in enumerate(lines))

    return FROM_EVALKIT.sub(fix, text)


# ---------------------------------------------------------------------------------------------
# relative imports -> absolute

RELATIVE = re.compile(r"^(?P<ind>[ \t]*)from (?P<dots>\.+)(?P<rest>[\w.]*) import ", re.M)


def absolutize(path: Path, text: str) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # for __init__ the package is the folder too: parts[-1] == "__init__"

    def fix(m: re.Match[str]) -> str:
        up = len(m.group("dots")) - 1
        base = package[: len(package) - up] if up else package
        target = ".".join([*base, *([m.group("rest")] if m.group("rest") else [])])
        return f"{m.group('ind')}from {target} import "

    return RELATIVE.sub(fix, text)


# ---------------------------------------------------------------------------------------------


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    files = []
    for name in out.decode().split("\0"):
        if not name or name in NEVER:
            continue
        p = ROOT / name
        if p.is_file() and (p.suffix in TEXT_SUFFIXES or name.startswith(ALWAYS_DIRS)):
            try:
                p.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # a test fixture in another encoding: no module names to rewrite
            files.append(p)
    return files


Rules = list[tuple[re.Pattern[str], str]]


def rules_for(active: list[Entry]) -> Rules:
    """Dotted-name and path rules; longest old names first (evalkit.load_report before evalkit.load)."""
    rules: Rules = []
    for e in sorted(active, key=lambda e: -len(e.old)):
        rules.append((dotted_pattern(e), e.new))
        rules.extend(path_patterns(e))
    return rules


def rewrite_text(path: Path, text: str, active: list[Entry], rules: Rules) -> str:
    for pat, new in rules:
        text = pat.sub(new, text)
    # after the dotted names: "from evalkit import stats" has none, and the statements this
    # writes ("from evalkit.metrics import summary") must not be rewritten again
    if path.suffix == ".py":
        text = split_from_evalkit(text, active)
    return text


def unknown_top_level() -> list[str]:
    known = STAYS | {n.split(".")[1] for n in NEW_PACKAGES}
    known |= {e.old.split(".")[1] for e in ENTRIES if e.old.count(".") == 1}
    out = []
    for p in sorted((ROOT / "evalkit").iterdir()):
        name = p.stem if p.suffix == ".py" else p.name
        if p.is_dir() and not (p / "__init__.py").exists() and name != "__pycache__":
            if not any(p.rglob("*.py")):
                continue  # an empty leftover folder (only __pycache__), not a module
        if name not in known and p.name not in known:
            out.append(rel(p))
    return out


def write_importlinter(text: str) -> str:
    found = re.search(r"^\[tool\.importlinter\][ \t]*$", text, re.M)
    if found is None:
        return text.rstrip("\n") + "\n\n" + IMPORTLINTER
    start = found.start()
    # the block ends at the first table header that is not an import-linter one
    header = re.compile(r"^\[\[?(?!\[)(?!tool\.importlinter)[^\]]+\]\]?\s*$", re.M)
    m = header.search(text, start + 1)
    end = m.start() if m else len(text)
    while True:  # comment lines right above the next table belong to it
        prev = text.rfind("\n", start, end - 1)
        if prev < 0 or not text[prev + 1:end].lstrip().startswith("#"):
            break
        end = prev + 1
    tail = text[end:].lstrip("\n")
    return text[:start] + IMPORTLINTER + ("\n" + tail if tail else "")


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True)


def ruff_exe() -> str | None:
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.exists() else shutil.which("ruff")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    args = ap.parse_args(argv)

    unknown = unknown_top_level()
    if unknown:
        print("regroup: these top-level modules are not in MAPPING (tools/regroup.py); give each a")
        print("place in the table, then run again:")
        for u in unknown:
            print(f"  {u}")
        return 1

    moves: list[tuple[Entry, Path, Path]] = []
    for e in ENTRIES:
        src = source_of(e.old)
        if src is None or not e.pending:
            if source_of(e.new) is None:
                print(f"note: {e.old} does not exist; entry skipped")
            continue
        dst = path_of(e.new).with_suffix(".py") if src.suffix == ".py" else path_of(e.new)
        if dst.exists():
            print(f"regroup: cannot move {rel(src)}: {rel(dst)} already exists")
            return 1
        moves.append((e, src, dst))
    active = [e for e in ENTRIES if e.rewrites()]
    new_inits = [path_of(p) / "__init__.py" for p in NEW_PACKAGES if not (path_of(p) / "__init__.py").exists()]

    if args.dry_run:
        for p in new_inits:
            print(f"create {rel(p)}")
        for _, src, dst in moves:
            print(f"git mv {rel(src)} {rel(dst)}")
        changed = []
        rules = rules_for(active)
        for f in tracked_files():
            old = f.read_text(encoding="utf-8")
            text = absolutize(f, old) if rel(f).startswith("evalkit/") and f.suffix == ".py" else old
            new = rewrite_text(f, text, active, rules)
            if new != old:
                changed.append(rel(f))
        for c in changed:
            print(f"rewrite {c}")
        print(f"regroup: {len(moves)} moves, {len(changed)} files rewritten (before the moves' own paths)")
        return 0

    # 2. relative imports inside evalkit become absolute while the files are where they were
    for f in tracked_files():
        if f.suffix == ".py" and rel(f).startswith("evalkit/"):
            old = f.read_text(encoding="utf-8")
            new = absolutize(f, old)
            if new != old:
                f.write_text(new, encoding="utf-8")
                print(f"absolute imports: {rel(f)}")

    # 3. new packages, then the moves
    for p in new_inits:
        p.parent.mkdir(parents=True, exist_ok=True)
        doc = NEW_PACKAGES[".".join(p.parent.relative_to(ROOT).parts)]
        p.write_text(f'"""{doc}"""\n', encoding="utf-8")
        git("add", rel(p))
    for _, src, dst in moves:
        dst.parent.mkdir(parents=True, exist_ok=True)
        git("mv", rel(src), rel(dst))
        print(f"moved {rel(src)} -> {rel(dst)}")

    # 4. references
    changed_py: list[str] = []
    rules = rules_for(active)
    for f in tracked_files():
        old = f.read_text(encoding="utf-8")
        new = rewrite_text(f, old, active, rules)
        if new != old:
            f.write_text(new, encoding="utf-8")
            print(f"rewrote {rel(f)}")
            if f.suffix == ".py":
                changed_py.append(rel(f))

    # 5. layer contracts
    pp = ROOT / "pyproject.toml"
    old = pp.read_text(encoding="utf-8")
    new = write_importlinter(old)
    if new != old:
        pp.write_text(new, encoding="utf-8")
        print("wrote the [tool.importlinter] contracts in pyproject.toml")

    # 6. import order of the rewritten files
    ruff = ruff_exe()
    if changed_py and ruff:
        subprocess.run([ruff, "check", "-q", "--select", "I", "--fix", *changed_py], cwd=ROOT, check=False)
    elif changed_py:
        print("note: ruff not found; run `ruff check --select I --fix evalkit tests` to sort imports")

    left = unknown_top_level()
    if left:
        print("regroup: modules left at the top level: " + ", ".join(left))
        return 1
    print(f"regroup: {len(moves)} moves, {len(changed_py)} Python files rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
