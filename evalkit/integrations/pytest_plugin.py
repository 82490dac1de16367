"""evalkit's pytest plugin (registered through the ``pytest11`` entry point ``evalkit``).

* ``pytest datasets/support`` collects every scenario of a suite as a test item, one per
  trial (``orders.yaml::cancel-pending[trial-0]``), plays it through evalkit's runner and
  scoring, and on failure prints the failed verdicts and the transcript around the failing
  turn. Works with ``-x``, ``-k`` and ``-n`` (pytest-xdist): every item is one independent
  conversation.
* The ``run_conversation`` fixture plays a conversation written in Python, beside unit tests.

Which YAML files are collected (nothing else is touched):

* scenario files (``*.yaml``/``*.yml``, not ``suite.yaml``, not starting with ``.`` or ``_``)
  inside a folder that has a ``suite.yaml``, or below one;
* any ``*.scenario.yaml`` / ``*.scenario.yml`` / ``scenarios*.yaml`` file.

and only when the path was given on the command line (``pytest datasets/support``) or pytest
ran with no arguments in a project without ``testpaths``, so a bare ``pytest`` driven by
``testpaths`` never picks up scenario files by accident. The ini
option ``evalkit_collect`` changes that: ``true`` (always collect), ``false`` (never),
``auto`` (the default just described).

Options: ``--evalkit-agent SPEC`` (default: the suite's ``agent:``), ``--evalkit-trials K``,
``--evalkit-seed N``, ``--evalkit-out DIR`` (also write a run folder with every
conversation: report, junit.xml, summary.md, ...).

deepeval's own pytest plugin (installed with deepeval) is kept out of the session, with
its telemetry: set ``EVALKIT_KEEP_DEEPEVAL_PLUGIN=1`` to keep it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients

__all__ = [
    "ScenarioFile",
    "ScenarioItem",
    "ConversationFailed",
    "play_conversation",
    "assert_conversation_passed",
    "run_conversation",
]

_SUITE_FILES = ("suite.yaml", "suite.yml")
_STANDALONE = re.compile(r"(\.scenario\.ya?ml|^scenarios[^/]*\.ya?ml)$", re.IGNORECASE)
_PROP = "evalkit_conversation"


# --- keeping deepeval's plugin out --------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Runs when this plugin is registered, before most entry-point plugins are loaded."""
    if os.environ.get("EVALKIT_KEEP_DEEPEVAL_PLUGIN") in ("1", "true", "yes"):
        return
    os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
    plugin = pluginmanager.get_plugin("deepeval")
    if plugin is not None:
        # Loaded before us: its import already ran, but its session hooks will not.
        pluginmanager.unregister(plugin)
    pluginmanager.set_blocked("deepeval")


# --- options -------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalkit", "evalkit conversation tests")
    group.addoption("--evalkit-agent", metavar="SPEC", default=None,
                    help="Agent to test (module:factory, http://..., openai-chat:MODEL); default: the suite's agent.")
    group.addoption("--evalkit-trials", metavar="K", type=int, default=None,
                    help="Trials per scenario (default: the scenario's or suite's).")
    group.addoption("--evalkit-seed", metavar="N", type=int, default=0, help="Base seed (default 0).")
    group.addoption("--evalkit-out", metavar="DIR", default=None,
                    help="Also write a run folder with every conversation played in this session.")
    parser.addini("evalkit_collect", "Collect scenario YAML files: auto (paths given on the command line), true, false.",
                  default="auto")


def pytest_configure(config: pytest.Config) -> None:
    trials = config.getoption("--evalkit-trials", None)
    if trials is not None and trials < 1:
        raise pytest.UsageError("--evalkit-trials must be at least 1")
    config.stash[_SUITES] = {}
    out = config.getoption("--evalkit-out", None)
    if out:
        config.pluginmanager.register(_RunFolderWriter(config, Path(out)), "evalkit-run-folder")


_SUITES = pytest.StashKey[dict[Path, Any]]()


# --- collection ----------------------------------------------------------------------------------


def _suite_root(path: Path) -> Path | None:
    """The top folder of the chain of suite folders containing ``path``, if any."""
    root = None
    folder = path.parent
    while True:
        if any((folder / n).is_file() for n in _SUITE_FILES):
            root = folder
        elif root is not None:
            break
        if folder.parent == folder:
            break
        folder = folder.parent
    return root


def _explicitly_given(config: pytest.Config, path: Path) -> bool:
    """The path is under an argument of this pytest call (or pytest ran with no arguments
    and no ``testpaths``, in the current folder); ``testpaths`` alone does not count."""
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        return False
    for arg in config.args:
        target = Path(arg.split("::", 1)[0])
        if not target.is_absolute():
            target = Path(config.invocation_params.dir) / target
        try:
            path.resolve().relative_to(target.resolve())
            return True
        except ValueError:
            continue
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix.lower() not in (".yaml", ".yml") or file_path.name in _SUITE_FILES:
        return None
    if file_path.name.startswith((".", "_")):
        return None
    mode = str(parent.config.getini("evalkit_collect")).strip().lower()
    if mode in ("false", "no", "0", "off"):
        return None
    root = _suite_root(file_path)
    if root is None and not _STANDALONE.search(file_path.name):
        return None
    if mode not in ("true", "yes", "1", "on") and not _explicitly_given(parent.config, file_path):
        return None
    return ScenarioFile.from_parent(parent, path=file_path, suite_root=root)


class _LoadedSuite:
    """One suite loaded once per session: scenarios by file, and the problems found."""

    def __init__(self, root: Path) -> None:
        from evalkit.core.errors import EvalkitError

        self.suite: Any = None
        self.errors: list[EvalkitError] = []
        self.reported = False
        try:
            from evalkit.scenarios.loader import _Loader  # collects every problem, keeps what loaded

            loader = _Loader()
            self.suite = loader.load([root], tags=None)
            self.errors = list(loader.errors)
        except ImportError:  # pragma: no cover - loader internals changed: all-or-nothing load
            from evalkit.scenarios.loader import load_suite

            try:
                self.suite = load_suite([root])
            except EvalkitError as exc:
                self.errors = [exc]


def _config_for(suite: Any, scenario: Any) -> Any:
    """The suite settings that apply to ``scenario`` (a nested ``suite.yaml`` may differ)."""
    config_for = getattr(suite, "config_for", None)
    return config_for(scenario) if callable(config_for) else suite.config


def _is_scenario_file(name: str | None) -> bool:
    if not name:
        return False
    p = Path(name)
    return p.suffix.lower() in (".yaml", ".yml") and p.name not in _SUITE_FILES and p.is_file()


def _same_file(a: str | Path | None, b: Path) -> bool:
    return a is not None and Path(a).resolve() == b.resolve()


class ScenarioFile(pytest.File):
    """A scenario YAML file: one item per scenario and trial."""

    def __init__(self, *, suite_root: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite_root = suite_root

    def _loaded(self) -> _LoadedSuite:
        cache = self.config.stash[_SUITES]
        key = (self.suite_root or self.path).resolve()
        if key not in cache:
            cache[key] = _LoadedSuite(self.suite_root or self.path)
        return cache[key]

    def collect(self) -> Iterator[pytest.Item]:
        loaded = self._loaded()
        mine = [e for e in loaded.errors if _same_file(e.file, self.path)]
        # Problems that belong to no collected scenario file (suite.yaml, a missing include):
        # reported once, on the first file of the suite that is collected.
        orphans = [e for e in loaded.errors if not _is_scenario_file(e.file)]
        if orphans and not loaded.reported:
            loaded.reported = True
            mine = orphans + mine
        if mine:
            raise _ScenarioCollectError("\n".join(str(e) for e in mine))
        if loaded.suite is None:
            return
        suite = loaded.suite
        trials_opt = self.config.getoption("--evalkit-trials")
        for scenario in suite.scenarios:
            if not _same_file(scenario._file, self.path):
                continue
            trials = trials_opt or scenario.trials or _config_for(suite, scenario).trials
            for trial in range(trials):
                yield ScenarioItem.from_parent(
                    self, name=f"{scenario.id}[trial-{trial}]", scenario=scenario, suite=suite, trial=trial
                )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, _ScenarioCollectError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class _ScenarioCollectError(Exception):
    """A scenario file could not be loaded (printed as evalkit's one-line errors)."""


class ConversationFailed(AssertionError):
    """A conversation whose deterministic verdicts failed, or whose agent errored."""

    def __init__(self, result: Any) -> None:
        from evalkit.reports.excerpt import failure_text

        self.result = result
        super().__init__(failure_text(result))


class ScenarioItem(pytest.Item):
    """One trial of one scenario: played through the runner and scored."""

    def __init__(self, *, scenario: Any, suite: Any, trial: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.suite = suite
        self.trial = trial
        self.result: Any = None
        # `-k refunds` selects by tag as well as by name.
        self.extra_keyword_matches.update(scenario.tags)

    def runtest(self) -> None:
        from evalkit.core.errors import ConfigError

        spec = (
            self.config.getoption("--evalkit-agent")
            or self.scenario.agent
            or _config_for(self.suite, self.scenario).agent
        )
        if not spec:
            raise ConfigError("no agent: pass --evalkit-agent SPEC or set 'agent:' in suite.yaml", field="agent")
        self.result = play_conversation(
            spec,
            self.scenario,
            suite=self.suite,
            trial=self.trial,
            seed=self.config.getoption("--evalkit-seed"),
            run_id="pytest",
        )
        if self.config.getoption("--evalkit-out"):
            self.user_properties.append((_PROP, self.result.model_dump_json()))
        if self.result.transcript.error is not None or self.result.passed is False:
            raise ConversationFailed(self.result)
        if self.result.passed is None:
            pytest.skip("no deterministic verdict ran (only model or proxy judges, or none)")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from evalkit.core.errors import EvalkitError

        if isinstance(excinfo.value, ConversationFailed):
            t = excinfo.value.result.transcript
            head = f"scenario {t.scenario_id} trial {t.trial} ({self.scenario.title or 'untitled'})"
            return f"{head}\n{excinfo.value}"
        if isinstance(excinfo.value, EvalkitError):
            return f"evalkit: error: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.scenario._line
        return self.path, (line - 1) if line else None, f"scenario {self.scenario.id} trial {self.trial}"


# --- the run folder (--evalkit-out) -----------------------------------------------------------------


class _RunFolderWriter:
    """Gathers every conversation of the session (from xdist workers too: their reports reach
    the controller with ``user_properties``) and writes one run folder at the end."""

    def __init__(self, config: pytest.Config, out: Path) -> None:
        self.config = config
        self.out = out
        self.lines: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.lines += [str(v) for k, v in report.user_properties if k == _PROP]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not hasattr(self.config, "workerinput"):
            _write_run(self.out, self.config, self.lines)


def _write_run(out: Path, config: pytest.Config, lines: list[str]) -> None:
    from evalkit import __version__
    from evalkit.core._clock import now_iso, now_stamp
    from evalkit.core.results import ConversationResult, RunManifest, RunResult
    from evalkit.reports.outputs import standard_outputs
    from evalkit.run.runfolder import Existing, RunFolder

    results = [ConversationResult.model_validate_json(x) for x in lines]
    results.sort(key=lambda r: r.key)
    now = now_iso()
    roots = sorted({str(p) for p in config.stash[_SUITES]}) if _SUITES in config.stash else []
    agent = config.getoption("--evalkit-agent")
    command = "pytest " + " ".join(config.invocation_params.args)
    manifest = RunManifest(
        run_id=f"pytest-{now_stamp()}",
        evalkit_version=__version__,
        command=command,
        suites=roots,
        agent=agent,
        variants={"default": agent or "(suite agent)"},
        seed=config.getoption("--evalkit-seed"),
        trials=config.getoption("--evalkit-trials") or 1,
        started_at=now,
        finished_at=now,
        status="complete",
        n_planned=len(results),
    )
    # A fresh run per session (the previous session's is replaced: never two sessions mixed).
    with RunFolder(out, command=command).claim(Existing.overwrite) as folder:
        results = folder.write_journal(manifest, results)
        folder.finish(RunResult(manifest=manifest, conversations=results), standard_outputs())


# --- playing one conversation ------------------------------------------------------------------------


class _ObjectProvider:
    """An agent given as a Python object, class or factory (for the fixture)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.spec = f"python:{getattr(agent, '__qualname__', type(agent).__qualname__)}"

    def new_session(self, info: Any) -> Any:
        a = self.agent
        if hasattr(a, "respond") and not isinstance(a, type):
            return a  # one object shared by the conversations of this call
        try:
            import inspect

            if "session" in inspect.signature(a).parameters:
                return a(session=info)
        except (TypeError, ValueError):
            pass
        return a()

    async def aclose(self) -> None:
        return None


def play_conversation(
    agent: Any,
    scenario: Any,
    *,
    suite: Any = None,
    trial: int = 0,
    seed: int = 0,
    variant: str = "default",
    run_id: str = "pytest",
    llm: ModelClients | None = None,
) -> Any:
    """Play and score one trial of ``scenario`` against ``agent`` (a spec string, an agent
    object, or a class/factory); returns the :class:`~evalkit.core.results.ConversationResult`.

    Played by :func:`evalkit.run.play.play` through the runner, so timeouts, error recording, simulators and
    scoring are exactly those of ``evalkit run``.
    """
    return asyncio.run(
        _play(agent, scenario, suite=suite, trial=trial, seed=seed, variant=variant, run_id=run_id, llm=llm)
    )


async def _play(
    agent: Any, scenario: Any, *, suite: Any, trial: int, seed: int, variant: str, run_id: str, llm: ModelClients | None
) -> Any:
    from evalkit.agents.loader import load_agent
    from evalkit.run.runner import RunConfig, Runner
    from evalkit.scenarios.loader import Suite
    from evalkit.scenarios.models import SuiteConfig

    if suite is None:
        suite = Suite(config=SuiteConfig(), scenarios=[scenario])
    # _ObjectProvider is an AgentProvider by duck typing (the plugin imports nothing heavy at load).
    provider: Any = load_agent(agent) if isinstance(agent, str) else _ObjectProvider(agent)
    runner = Runner(RunConfig(suite=suite, agent=provider.spec, progress=False, handle_signals=False, llm=llm))
    # One conversation through play() and the runner's scoring (the same code path as `evalkit run`).
    return await runner.play_one(scenario, provider, trial=trial, seed=seed, variant=variant, run_id=run_id)


def assert_conversation_passed(result: Any) -> None:
    """Raise :class:`ConversationFailed` (an AssertionError showing the failed verdicts and
    the transcript excerpt) unless every deterministic verdict passed."""
    if result.transcript.error is not None or result.passed is not True:
        raise ConversationFailed(result)


# --- fixtures -------------------------------------------------------------------------------------


def _scenario_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "-", name).strip("-.") or "conversation"
    return cleaned[:120]


@pytest.fixture
def run_conversation(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Play a conversation written in Python and return its ConversationResult::

        def test_refund(run_conversation):
            result = run_conversation(
                "my_bot:create_agent",                  # or an agent object / class / factory
                script=["I want a refund for ORD-1", {"say": "yes", "expect": [{"tool_called": "refund"}]}],
                judges=[{"outcome": "resolved"}, "no_pii_leak"],
            )
            assert result.passed, result   # or assert_conversation_passed(result)

    ``persona={...}`` (a scenario persona mapping) replaces ``script``; other keyword
    arguments: ``channel``, ``max_turns``, ``customer``, ``initial_state``, ``trial``,
    ``seed``, ``suite_judges``, ``turn_timeout_s``, ``scenario_id``. A bad script, persona
    or judge raises an EvalkitError naming the field.
    """

    def _run(
        agent: Any,
        *,
        script: Sequence[Any] | None = None,
        persona: dict[str, Any] | None = None,
        judges: Sequence[Any] = (),
        suite_judges: Sequence[Any] = (),
        channel: str | None = None,
        max_turns: int | None = None,
        customer: dict[str, Any] | None = None,
        initial_state: dict[str, Any] | None = None,
        trial: int = 0,
        seed: int = 0,
        turn_timeout_s: float = 30.0,
        scenario_id: str | None = None,
    ) -> Any:
        from pydantic import ValidationError

        from evalkit.core.errors import ScenarioError
        from evalkit.judges.registry import build_judge
        from evalkit.scenarios.loader import Suite
        from evalkit.scenarios.models import JudgeSpec, Scenario, SuiteConfig

        user: dict[str, Any] = {}
        if script is not None:
            user["script"] = list(script)
        if persona is not None:
            user["persona"] = persona
        data: dict[str, Any] = {
            "id": scenario_id or _scenario_id(request.node.name),
            "title": request.node.name,
            "user": user,
            "expect": list(judges),
        }
        for key, value in (("channel", channel), ("max_turns", max_turns), ("customer", customer),
                           ("initial_state", initial_state)):
            if value is not None:
                data[key] = value
        try:
            scenario = Scenario.model_validate(data)
            extra = [JudgeSpec.model_validate(j) for j in suite_judges]
            config = SuiteConfig(turn_timeout_s=turn_timeout_s, judges=extra)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise ScenarioError(err["msg"], field=".".join(str(p) for p in err["loc"]) or None) from None
        specs = list(scenario.expect) + extra + [j for s in scenario.user.script or [] for j in s.expect]
        for spec in specs:
            build_judge(spec)  # an unknown judge or bad argument is misuse: raise now
        suite = Suite(config=config, scenarios=[scenario])
        return play_conversation(agent, scenario, suite=suite, trial=trial, seed=seed, run_id="pytest")

    return _run
