"""Load scenario files and suite folders into a validated :class:`Suite`.

Every problem is reported as one line, ``file:line: field.path: problem``.
:func:`load_suite` raises the first one (:class:`~evalkit.core.errors.ScenarioError`, or
:class:`~evalkit.core.errors.JudgeSpecError` for a bad expectation); :func:`validate_paths`
returns all of them, for ``evalkit validate``.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from evalkit.core._yaml import LocDict, LocList, YamlSyntaxError, line_of, parse_yaml
from evalkit.core.errors import EvalkitError, JudgeSpecError, ScenarioError
from evalkit.scenarios.models import JudgeSpec, Scenario, SuiteConfig

__all__ = ["Suite", "load_suite", "validate_paths", "MAX_FILE_BYTES", "SUITE_FILE_NAMES"]

MAX_FILE_BYTES = 10 * 1024 * 1024


def _size(n: int) -> str:
    """``11,010,048 bytes (10.5 MiB)``: exact, so a file just over the limit never reads as
    the limit itself (whole megabytes rounded an 11 MB file down to "10 MB")."""
    return f"{n:,} bytes ({n / 1024 / 1024:.1f} MiB)"
SUITE_FILE_NAMES = ("suite.yaml", "suite.yml")
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Suite:
    """Scenarios ready to run, with the suite settings that apply to them."""

    config: SuiteConfig
    scenarios: list[Scenario]
    root: Path | None = None
    files: list[Path] = field(default_factory=list)
    # scenario id -> the settings of the folder it came from (a nested suite.yaml differs).
    scenario_configs: dict[str, SuiteConfig] = field(default_factory=dict)
    # The files and folders it was loaded from, as given.
    paths: list[Path] = field(default_factory=list)

    def config_for(self, scenario: Scenario) -> SuiteConfig:
        """The suite settings that apply to ``scenario`` (its own folder's ``suite.yaml``)."""
        return self.scenario_configs.get(scenario.id, self.config)

    def judges_for(self, scenario: Scenario) -> list[JudgeSpec]:
        """The suite-wide judges that apply to ``scenario``."""
        return self.config_for(scenario).judges

    def agent_for(self, scenario: Scenario) -> str | None:
        """The agent spec a scenario names, else its suite's (``None``: none given)."""
        return scenario.agent or self.config_for(scenario).agent

    def trials_for(self, scenario: Scenario) -> int:
        """Trials from the scenario, else its suite's."""
        return scenario.trials or self.config_for(scenario).trials

    def get(self, scenario_id: str) -> Scenario:
        for s in self.scenarios:
            if s.id == scenario_id:
                return s
        raise KeyError(scenario_id)


def load_suite(paths: Sequence[str | Path] | str | Path, *, tags: list[str] | None = None) -> Suite:
    """Load scenario files and folders; raise the first problem found."""
    loader = _Loader()
    suite = loader.load(paths, tags=tags)
    if loader.errors:
        raise loader.errors[0]
    return suite


def validate_paths(paths: Sequence[str | Path] | str | Path) -> list[EvalkitError]:
    """Every problem in the given files and folders (empty when all is well).

    Executes nothing of the suite's: a ``module:Class`` judge is looked up on disk, not
    imported, so its arguments are checked only when a run builds it."""
    loader = _Loader(execute=False)
    loader.load(paths, tags=None)
    # Reading order: file by file (in the order first seen), line by line.
    first_seen: dict[str | None, int] = {}
    for err in loader.errors:
        first_seen.setdefault(err.file, len(first_seen))
    return sorted(loader.errors, key=lambda e: (first_seen[e.file], e.line or 0))


# --------------------------------------------------------------------------------------


def _fmt_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "").replace("-", "").isalnum():
            out += f".{part}" if out else part
        # pydantic adds schema tags (e.g. "function-before[...]") to some locations: skip
    return out


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType) or origin is typing.Annotated:
        for arg in typing.get_args(annotation):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _known_fields(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the model found at ``loc`` (for "did you mean")."""
    cur: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or cur is None:
            continue
        info = cur.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return []
        cur = _model_class(info.annotation)
    return list(cur.model_fields) if cur is not None else []


def _message(err: Any, model: type[BaseModel]) -> str:
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        known = _known_fields(model, [p for p in loc[:-1]])
        name = str(loc[-1])
        hint = difflib.get_close_matches(name, known, n=1)
        if hint:
            return f"unknown field '{name}' (did you mean '{hint[0]}'?)"
        return f"unknown field '{name}'" + (f" (known: {', '.join(known)})" if known else "")
    if err["type"] == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    value = err.get("input")
    if (
        err["type"] not in ("missing",)
        and isinstance(value, str | int | float | bool)
        and len(str(value)) < 60
    ):
        msg += f" (got {value!r})"
    return msg


class _Loader:
    """One load: collects errors instead of stopping, so ``validate`` can show them all."""

    def __init__(self, *, execute: bool = True) -> None:
        # False (validate): never import a judge that is not evalkit's own.
        self.execute = execute
        self.errors: list[EvalkitError] = []
        self.files: list[Path] = []
        self._seen_files: set[Path] = set()
        # (scenario, suite config that applies, file) in load order
        self._loaded: list[tuple[Scenario, SuiteConfig]] = []
        self._first_config: SuiteConfig | None = None
        self._root: Path | None = None

    def error(self, err: EvalkitError) -> None:
        self.errors.append(err)

    # -- entry ---------------------------------------------------------------------
    def load(self, paths: Sequence[str | Path] | str | Path, *, tags: list[str] | None) -> Suite:
        if isinstance(paths, str | Path):
            paths = [paths]
        if not paths:
            self.error(ScenarioError("no scenario file or folder given"))
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                self.error(ScenarioError("no such file or folder", file=str(path)))
            elif path.is_dir():
                self._root = self._root or path
                self._load_folder(path, SuiteConfig(), [], top=True)
            elif path.name in SUITE_FILE_NAMES:
                self._root = self._root or path.parent
                self._load_folder(path.parent, SuiteConfig(), [], top=True)
            else:
                self._root = self._root or path.parent
                self._load_file(path, SuiteConfig())
        return self._finish(paths, tags)

    def _finish(self, paths: Sequence[str | Path], tags: list[str] | None) -> Suite:
        config = self._first_config or SuiteConfig()
        first_seen: dict[str, Scenario] = {}
        scenarios: list[Scenario] = []
        configs: dict[str, SuiteConfig] = {}
        for scenario, cfg in self._loaded:
            prev = first_seen.get(scenario.id)
            if prev is not None:
                self.error(
                    ScenarioError(
                        f"duplicate scenario id '{scenario.id}' (first defined at {prev._file}:{prev._line})",
                        file=scenario._file,
                        line=scenario._line,
                        field="id",
                    )
                )
                continue
            first_seen[scenario.id] = scenario
            scenarios.append(scenario)
            configs[scenario.id] = cfg
        if not scenarios and not self.errors:
            where = ", ".join(str(p) for p in paths)
            self.error(ScenarioError("no scenarios found", file=where))
        if tags and scenarios:
            wanted = set(tags)
            scenarios = [s for s in scenarios if wanted & set(s.tags)]
            if not scenarios and not self.errors:
                self.error(ScenarioError(f"no scenario has any of the tags {sorted(wanted)}", field="tags"))
        return Suite(
            config=config,
            scenarios=scenarios,
            root=self._root,
            files=self.files,
            scenario_configs=configs,
            paths=[Path(p) for p in paths],
        )

    # -- folders -------------------------------------------------------------------
    def _load_folder(
        self, folder: Path, parent: SuiteConfig, stack: list[Path], *, top: bool = False
    ) -> None:
        real = folder.resolve()
        if real in stack:
            chain = " -> ".join(str(p) for p in [*stack, real])
            self.error(ScenarioError(f"include cycle: {chain}", file=str(folder)))
            return
        stack = [*stack, real]
        suite_file = next((folder / n for n in SUITE_FILE_NAMES if (folder / n).is_file()), None)
        config = parent
        includes: list[tuple[str, int | None]] | None = None
        if suite_file is not None:
            parsed = self._load_suite_config(suite_file, parent)
            if parsed is not None:
                config, includes = parsed
                if top and self._first_config is None:
                    self._first_config = config
        if includes is not None:
            for entry, line in includes:
                self._load_include(folder, suite_file, entry, line, config, stack)
            return
        for child in sorted(folder.iterdir()):
            if child.name.startswith((".", "_")) or child.name in SUITE_FILE_NAMES:
                continue
            if child.is_symlink() and not child.resolve().is_relative_to(real):
                # Same rule as `include:`: a suite never reads files from outside its folder.
                self.error(ScenarioError("is a link to outside the suite folder", file=str(child)))
                continue
            if child.is_dir():
                self._load_folder(child, config, stack)
            elif child.suffix.lower() in _YAML_SUFFIXES and child.is_file():
                self._load_file(child, config)

    def _load_include(
        self,
        folder: Path,
        suite_file: Path | None,
        entry: str,
        line: int | None,
        config: SuiteConfig,
        stack: list[Path],
    ) -> None:
        where: dict[str, Any] = {"file": str(suite_file), "line": line, "field": "include"}
        if any(c in entry for c in "*?["):  # a glob: `orders/*.yaml`, `**/smoke-*.yml`
            matches = sorted(folder.glob(entry))
            if not matches:
                self.error(ScenarioError(f"'{entry}' matches no file", **where))
            for target in matches:
                self._include_target(folder, target, entry, where, config, stack)
            return
        self._include_target(folder, folder / entry, entry, where, config, stack)

    def _include_target(
        self,
        folder: Path,
        target: Path,
        entry: str,
        where: dict[str, Any],
        config: SuiteConfig,
        stack: list[Path],
    ) -> None:
        try:
            target.resolve().relative_to(folder.resolve())
        except ValueError:
            self.error(ScenarioError(f"'{entry}' is outside the suite folder", **where))
            return
        if not target.exists():
            self.error(ScenarioError(f"'{entry}' does not exist", **where))
        elif target.is_dir():
            self._load_folder(target, config, stack)
        elif target.name not in SUITE_FILE_NAMES:
            self._load_file(target, config)

    def _load_suite_config(
        self, path: Path, parent: SuiteConfig
    ) -> tuple[SuiteConfig, list[tuple[str, int | None]] | None] | None:
        data = self._read(path)
        if data is _FAILED:
            return None
        if data is None:
            data = LocDict()
        if not isinstance(data, dict):
            self.error(
                ScenarioError(
                    "suite.yaml must be a mapping of settings", file=str(path), line=line_of(data, [])
                )
            )
            return None
        try:
            own = SuiteConfig.model_validate(data)
        except ValidationError as exc:
            self._pydantic_errors(exc, data, path, SuiteConfig, [])
            return None
        judges_ok = self._check_judges(own.judges, data, path, ["judges"])
        # A nested suite.yaml overrides only what it sets; `include` never inherits.
        update = {k: getattr(own, k) for k in own.model_fields_set}
        update["include"] = own.include
        config = parent.model_copy(update=update)
        if not judges_ok:
            config = config.model_copy(update={"judges": []})
        includes = None
        if own.include is not None:
            raw = data.get("include")
            lines = raw.item_lines if isinstance(raw, LocList) else []
            includes = [(e, lines[i] if i < len(lines) else None) for i, e in enumerate(own.include)]
        return config, includes

    # -- files ---------------------------------------------------------------------
    def _read(self, path: Path) -> Any:
        """Parsed YAML of one file, or ``_FAILED`` after recording why."""
        real = path.resolve()
        if real in self._seen_files and path.name not in SUITE_FILE_NAMES:
            return _FAILED  # the same file reached twice (include + folder scan): load once
        self._seen_files.add(real)
        name = str(path)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                self.error(
                    ScenarioError(
                        f"file is too large: {_size(size)}; the limit is {_size(MAX_FILE_BYTES)}",
                        file=name,
                    )
                )
                return _FAILED
            raw = path.read_bytes()
        except OSError as exc:
            self.error(ScenarioError(f"cannot read file: {exc.strerror or exc}", file=name))
            return _FAILED
        if b"\x00" in raw:
            self.error(ScenarioError("not a text file (contains NUL bytes)", file=name))
            return _FAILED
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.error(ScenarioError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", file=name, line=line))
            return _FAILED
        self.files.append(path)
        try:
            return parse_yaml(text)
        except YamlSyntaxError as exc:
            self.error(ScenarioError(exc.problem, file=name, line=exc.line))
            return _FAILED

    def _load_file(self, path: Path, config: SuiteConfig) -> None:
        data = self._read(path)
        if data is _FAILED:
            return
        name = str(path)
        if data is None:
            self.error(
                ScenarioError(
                    "file is empty (expected a scenario, a list of scenarios or 'scenarios:')",
                    file=name,
                    line=1,
                )
            )
            return
        items: list[tuple[Any, list[Any]]]
        if isinstance(data, dict) and "scenarios" in data and "id" not in data:
            extra = sorted(str(k) for k in data if k != "scenarios")
            if extra:
                self.error(
                    ScenarioError(
                        f"unknown top-level field '{extra[0]}' (only 'scenarios' is allowed here)",
                        file=name,
                        line=line_of(data, [extra[0]]),
                        field=extra[0],
                    )
                )
            seq = data["scenarios"]
            if not isinstance(seq, list):
                self.error(
                    ScenarioError(
                        "must be a list of scenarios",
                        file=name,
                        line=line_of(data, ["scenarios"]),
                        field="scenarios",
                    )
                )
                return
            items = [(s, ["scenarios", i]) for i, s in enumerate(seq)]
            base: Any = data
        elif isinstance(data, list):
            items = [(s, [i]) for i, s in enumerate(data)]
            base = data
        elif isinstance(data, dict):
            items = [(data, [])]
            base = data
        else:
            self.error(
                ScenarioError(
                    f"expected a scenario mapping or a list of scenarios, got {type(data).__name__}",
                    file=name,
                    line=line_of(data, [], 1),
                )
            )
            return
        if not items:
            self.error(ScenarioError("no scenarios in file", file=name, line=line_of(base, [], 1)))
        for raw, loc in items:
            self._load_scenario(raw, loc, base, path, config)

    def _load_scenario(self, raw: Any, loc: list[Any], base: Any, path: Path, config: SuiteConfig) -> None:
        name = str(path)
        line = line_of(base, loc, 1)
        if not isinstance(raw, dict):
            self.error(
                ScenarioError(
                    f"a scenario must be a mapping, got {type(raw).__name__}",
                    file=name,
                    line=line,
                    field=_fmt_path(loc) or None,
                )
            )
            return
        try:
            scenario = Scenario.model_validate(raw)
        except ValidationError as exc:
            self._pydantic_errors(exc, raw, path, Scenario, [])
            self._check_raw_judges(raw, path)  # so `validate` shows judge problems too
            return
        scenario._file, scenario._line = name, line
        ok = self._check_judges(scenario.expect, raw, path, ["expect"])
        for i, step in enumerate(scenario.user.script or []):
            ok &= self._check_judges(step.expect, raw, path, ["user", "script", i, "expect"])
        if scenario.user.persona is not None:
            ok &= self._check_judges(
                scenario.user.persona.goal.done_when, raw, path, ["user", "persona", "goal", "done_when"]
            )
        if not ok:
            return
        self._apply_defaults(scenario, config)
        self._loaded.append((scenario, config))

    @staticmethod
    def _apply_defaults(scenario: Scenario, config: SuiteConfig) -> None:
        if scenario.channel is None:
            scenario.channel = config.channel
        if scenario.max_turns is None:
            persona = scenario.user.persona
            if persona is not None and "max_turns" in persona.model_fields_set:
                scenario.max_turns = persona.max_turns
            else:
                scenario.max_turns = config.max_turns

    # -- checks --------------------------------------------------------------------
    def _check_judges(self, specs: list[JudgeSpec], raw: Any, path: Path, loc: list[Any]) -> bool:
        ok = True
        for i, spec in enumerate(specs):
            ok &= self._check_judges_at(spec, raw, path, [*loc, i])
        return ok

    def _check_judges_at(self, spec: JudgeSpec, raw: Any, path: Path, where: list[Any]) -> bool:
        from evalkit.judges.registry import JUDGES, build_judge, check_judge_reference

        spec._file, spec._line = str(path), line_of(raw, where)
        try:
            if self.execute or spec.name in JUDGES.builtin:
                build_judge(spec)
            else:
                check_judge_reference(spec.name)
        except JudgeSpecError as exc:
            sub = exc.field or spec.name
            arg_loc = sub[len(spec.name) + 1 :].split(".") if sub.startswith(spec.name + ".") else []
            line = line_of(raw, [*where, spec.name, *arg_loc])
            problem = exc.problem.removeprefix("Value error, ")  # pydantic's wording, not the user's
            if problem.startswith("Extra inputs") and arg_loc:
                problem = f"unknown argument '{arg_loc[-1]}' for judge '{spec.name}'"
            self.error(JudgeSpecError(problem, file=str(path), line=line, field=f"{_fmt_path(where)}.{sub}"))
            return False
        except Exception as exc:  # a user judge's constructor crashed: still one line
            problem = f"building the judge failed: {type(exc).__name__}: {exc}"
            field = f"{_fmt_path(where)}.{spec.name}"
            self.error(JudgeSpecError(problem, file=str(path), line=line_of(raw, where), field=field))
            return False
        return True

    def _check_raw_judges(self, raw: Any, path: Path) -> None:
        """Check the judge specs of a scenario that did not validate as a whole."""
        user = raw.get("user") if isinstance(raw, dict) else None
        places: list[list[Any]] = [["expect"]]
        script = user.get("script") if isinstance(user, dict) else None
        if isinstance(script, list):
            places += [
                ["user", "script", i, "expect"] for i, step in enumerate(script) if isinstance(step, dict)
            ]
        places.append(["user", "persona", "goal", "done_when"])
        for loc in places:
            cur: Any = raw
            for part in loc:
                ok = isinstance(cur, dict) and part in cur or isinstance(cur, list) and isinstance(part, int)
                cur = cur[part] if ok else None
            if not isinstance(cur, list):
                continue
            for i, item in enumerate(cur):
                try:
                    spec = JudgeSpec.model_validate(item)
                except ValidationError:
                    continue  # already reported by the scenario validation
                self._check_judges_at(spec, raw, path, [*loc, i])

    def _pydantic_errors(
        self, exc: ValidationError, raw: Any, path: Path, model: type[BaseModel], loc: list[Any]
    ) -> None:
        for err in exc.errors(include_url=False):
            full = [*loc, *err["loc"]]
            self.error(
                ScenarioError(
                    _message(err, model),
                    file=str(path),
                    line=line_of(raw, err["loc"], line_of(raw, [], 1)),
                    field=_fmt_path(full) or None,
                )
            )


_FAILED = object()
