"""The runner: plays every (variant, scenario, trial) conversation and records it.

The runner schedules; it does not converse. Each conversation is played by
:func:`evalkit.run.play.play` (the one conversation loop) and scored. Conversations run
concurrently up to ``concurrency``; each scored one goes to the run observers at once: the
journal (appended to the run folder, masked: secrets, PII when asked), so an interrupted
run (Ctrl-C, SIGTERM, a crash) can be resumed without redoing or duplicating anything,
then progress. Failures of the agent (raised, timed out, junk) and of the simulated user
are recorded on the conversation as ``outcome=error`` with a reason; the run goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import platform
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError

from evalkit.agents.base import AgentConfig, AgentProvider, SessionInfo
from evalkit.agents.loader import load_agent
from evalkit.agents.session import AgentCrash, agent_threads, call_maybe_async
from evalkit.core._clock import now_iso, now_stamp
from evalkit.core.errors import ConfigError, EvalkitError, RunFolderError
from evalkit.core.masking import Secrets
from evalkit.core.results import ConversationResult, Renderer, RunManifest, RunResult
from evalkit.core.transcript import Outcome
from evalkit.core.untrusted import clean_value, exc_line
from evalkit.run.backends import (
    Backend,
    Item,
    LLMRecipe,
    ShardSetup,
    agent_share,
    driver_paths,
    open_backend,
    play_sharded,
)
from evalkit.run.play import Limits, LoopStalls, Observer, play
from evalkit.run.runfolder import Existing, RunFolder
from evalkit.run.scoring import score_transcript
from evalkit.scenarios.fingerprint import suite_hash
from evalkit.scenarios.loader import Suite, load_suite
from evalkit.scenarios.models import Scenario
from evalkit.simulators import check_simulator

if TYPE_CHECKING:
    from evalkit.llm.clients import ModelClients
    from evalkit.llm.settings import ModelSettings

__all__ = ["RunConfig", "RunObserver", "Runner", "derive_seed", "shard_runner"]

log = logging.getLogger("evalkit")


@dataclass
class RunConfig:
    """Everything one run needs. ``None`` means "the suite's default" (or, on resume,
    "what the interrupted run used")."""

    suite: Suite | Sequence[str | Path] = ()
    agent: str | None = None
    # name -> agent spec; several variants run over the same scenarios in one run folder.
    variants: dict[str, str] | None = None
    out: str | Path | None = None
    trials: int | None = None
    concurrency: int = 8
    seed: int | None = None
    turn_timeout_s: float | None = None
    conversation_timeout_s: float | None = None
    simulator: str = "auto"
    # Model clients (built by evalkit.llm) handed to simulators and judges as ``llm``.
    llm: ModelClients | None = None
    # The agent's model settings, handed to agent factories (None: from ``llm.agent``).
    agent_config: AgentConfig | None = None
    resume: bool = False
    tags: list[str] | None = None
    # None: a live bar on a terminal, periodic lines otherwise; False: silent.
    progress: bool | None = None
    progress_stream: IO[str] | None = None
    run_id: str | None = None
    command: str | None = None
    # make_simulator(scenario, kind=..., seed=..., llm=...) override (tests, plugins).
    simulator_factory: Callable[..., Any] | None = None
    # Catch SIGINT/SIGTERM to stop cleanly (only possible on the main thread).
    handle_signals: bool = True
    # Close ``llm`` (its HTTP clients) when the run ends: set when the runner owns it (CLI).
    close_llm: bool = False
    # Check every configured model once before the first conversation (evalkit.llm.preflight).
    preflight: bool = True
    # Mask PII (emails, phones, cards, national ids) in everything written, after scoring
    # on the raw transcript (see evalkit.core.redact). Sticky across --resume.
    redact_pii: bool = False
    # Secrets masked in everything written (None: the model keys and the variables named in
    # EVALKIT_SECRET_ENV, see evalkit.core.masking); credentials in agent URLs are always added.
    secrets: Secrets | None = None
    # Files written beside the tables (None: report.html, junit.xml, summary.md).
    outputs: Sequence[Renderer] | None = None
    # Largest agent reply kept (bytes of an HTTP body; characters of a Python agent's text).
    # None: suite.yaml max_reply_bytes (default 5 MB).
    max_reply_bytes: int | None = None
    # Hooks on every conversation's turns (evalkit.run.play.Observer); a RunObserver among them
    # also sees each scored conversation (RunObserver.on_result).
    observers: Sequence[Observer] = ()
    # Play the conversations in this many local worker processes (None: in this process), or
    # with ``ray`` set, in this many Ray actors (None: one per CPU of the Ray cluster).
    workers: int | None = None
    # Play on Ray: a ``ray.init`` address ("auto", "HOST:PORT", "ray://HOST:PORT") or "local"
    # (start a local Ray). None: no Ray. See evalkit.run.backends.
    ray: str | None = None


def derive_seed(base: int, scenario_id: str, trial: int) -> int:
    """A stable per-conversation seed: the same for every variant, so A/B runs meet the
    same simulated users, and distinct across trials."""
    digest = hashlib.sha256(f"{base}:{scenario_id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big")




def _exc_line(exc: BaseException) -> str:
    # An agent's SystemExit & co. arrive wrapped (AgentCrash): name what it really raised.
    return exc_line(exc.original if isinstance(exc, AgentCrash) else exc)


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass(frozen=True)
class _Job:
    variant: str
    scenario: Scenario
    trial: int
    seed: int
    order: tuple[int, int, int]

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.scenario.id, self.trial)


@dataclass
class _Counts:
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    unjudged: int = 0

    def add(self, r: ConversationResult) -> None:
        self.done += 1
        if r.transcript.outcome == Outcome.error:
            self.errors += 1
        elif r.passed is True:
            self.passed += 1
        elif r.passed is False:
            self.failed += 1
        else:
            self.unjudged += 1


class RunObserver(Observer):
    """An :class:`~evalkit.run.play.Observer` that also sees each scored conversation of a run,
    one at a time, in the order they finish (``RunConfig.observers``)."""

    async def on_result(self, result: ConversationResult) -> None:
        """A conversation was played and scored (the raw result, before masking)."""

    async def on_results(self, results: Sequence[ConversationResult]) -> None:
        """Several conversations arrived together (a worker's batch); by default each goes to
        :meth:`on_result` in order."""
        for result in results:
            await self.on_result(result)


class _Journal(RunObserver):
    """Appends each scored conversation to the run folder's journal, the resume point. The
    folder masks it (secrets, and PII when asked); only the masked copy is kept."""

    def __init__(self, folder: RunFolder, kept: list[ConversationResult] | None) -> None:
        self.folder = folder
        self.kept = kept  # None: keep nothing in memory (the journal is read back at the end)

    async def on_result(self, result: ConversationResult) -> None:
        await self.on_results([result])

    async def on_results(self, results: Sequence[ConversationResult]) -> None:
        # fsync takes milliseconds: off the event loop, and one fsync for a worker's batch.
        written = await asyncio.to_thread(self._append, results)
        if self.kept is not None:
            self.kept.extend(written)

    def _append(self, results: Sequence[ConversationResult]) -> list[ConversationResult]:
        try:
            return self.folder.append_many(results)
        except (PydanticSerializationError, UnicodeError):
            # Text from outside that slipped past cleaning where it entered (a judge's or
            # plugin's): cleaned here, so it can never stop the run or a resume.
            written = []
            for result in results:
                try:
                    written.append(self.folder.append(result))
                except (PydanticSerializationError, UnicodeError):
                    written.append(self.folder.append(_cleaned(result)))
            return written


class _Progress(RunObserver):
    """A live bar on a terminal, or a plain line every few seconds elsewhere (logs, CI)."""

    def __init__(self, total: int, enabled: bool | None, stream: IO[str] | None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.enabled = enabled is not False and total > 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.counts = _Counts()
        self.started = time.monotonic()
        self._last = 0.0

    def _line(self) -> str:
        c = self.counts
        elapsed = time.monotonic() - self.started
        parts = f"{c.done}/{self.total}  passed {c.passed}  failed {c.failed}  errors {c.errors}"
        if c.unjudged:
            parts += f"  unjudged {c.unjudged}"
        return f"{parts}  {elapsed:.1f}s"

    async def on_result(self, result: ConversationResult) -> None:
        self.update(result)

    def update(self, r: ConversationResult) -> None:
        self.counts.add(r)
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            width = 24
            filled = int(width * self.counts.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._line()}\033[K")
            self.stream.flush()
        elif now - self._last >= 5.0 or self.counts.done == self.total:
            self._last = now
            self.stream.write(f"evalkit: {self._line()}\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Runner:
    """Runs a suite against one or more agent variants and writes the run folder."""

    def __init__(self, config: RunConfig) -> None:
        if config.concurrency < 1:
            raise ConfigError("must be at least 1", field="concurrency")
        if config.trials is not None and config.trials < 1:
            raise ConfigError("must be at least 1", field="trials")
        if config.workers is not None and config.workers < 1:
            raise ConfigError("must be at least 1", field="workers")
        check_simulator(config.simulator)
        self.config = config
        self.run_dir: Path | None = None
        self.interrupted = False
        self._tasks: list[asyncio.Task[None]] = []
        self._providers: dict[str, AgentProvider] = {}
        self.suite: Suite | None = None
        self._judges: dict[str, Any] = {}  # built judges, shared by every conversation
        self._redact = False
        self._max_reply: int | None = None
        # Times an async agent blocked the event loop, to explain other turns' timeouts.
        self._stalls = LoopStalls()
        self._backend: Backend | None = None  # worker processes or Ray (evalkit.run.backends)
        self._scenarios: dict[str, Scenario] | None = None

    # -- public ----------------------------------------------------------------------
    def run_sync(self) -> RunResult:
        """Run from synchronous code (starts and closes its own event loop)."""
        holder: list[RunResult] = []

        async def main() -> None:
            # The run is handed out through ``holder``, not as the task's result: when
            # asyncio.run restores the SIGINT handler, the signal module builds (and drops) an
            # error message holding repr() of the old handler, which names the main task and
            # so its result: the repr of a whole run, slow for a large one.
            holder.append(await self.run())

        asyncio.run(main())
        return holder[0]

    async def run(self) -> RunResult:
        """Play every planned conversation; returns the run (also written to the folder)."""
        cfg = self.config
        run_id = cfg.run_id or self._new_run_id()
        run_dir = Path(cfg.out) if cfg.out is not None else Path("runs") / run_id
        self.run_dir = run_dir
        # Claimed (checked and locked) before anything else, and before the first await: a
        # second run or resume of this folder is refused at once, saying who holds it.
        folder = RunFolder(run_dir, secrets=cfg.secrets, command=cfg.command).claim(
            Existing.resume if cfg.resume else Existing.new,
            hint="pass --resume to continue it or choose another --out",
        )
        try:
            with agent_threads():
                return await self._run_in(folder, run_id)
        finally:
            folder.close()

    async def _run_in(self, folder: RunFolder, run_id: str) -> RunResult:
        cfg = self.config
        run_dir = folder.path
        old = folder.previous
        run_id = old.run_id if old is not None else run_id
        suite = cfg.suite if isinstance(cfg.suite, Suite) else None
        if suite is None:
            suites = [str(p) for p in cfg.suite]  # type: ignore[union-attr]  # paths, not a Suite
            if not suites and old is not None:
                suites = list(old.suites)  # `--resume --out DIR` alone: the run's own suites
            if not suites and cfg.resume:
                raise RunFolderError("nothing to resume: no run (manifest.json) in this folder", file=str(run_dir))
            tags = cfg.tags if cfg.tags is not None else (old.tags if old else None)
            suite = load_suite(suites, tags=tags or None)
        else:
            suites = [str(p) for p in suite.paths]
        self.suite = suite
        played = suite_hash(suite.scenarios, [suite.config, *suite.scenario_configs.values()])
        folder.check_suite(played)
        # A run begun before suite hashes existed: its lines carry none, nor will the rest.
        fingerprint = None if old is not None and old.suite_hash is None else played
        seed = self._resolve_seed(old)
        trials_flag = self._resolve_trials(old)
        variants, explicit = self._resolve_variants(suite, old)
        turn_timeout = cfg.turn_timeout_s or suite.config.turn_timeout_s
        conv_timeout = cfg.conversation_timeout_s or suite.config.conversation_timeout_s
        self._max_reply = cfg.max_reply_bytes or suite.config.max_reply_bytes

        jobs = self._plan(suite, variants, seed, trials_flag)
        # Nothing is written until the setup is known to be good (suite, agents, simulators),
        # so a typo never leaves a half-made run folder behind.
        done = {r.key for r in folder.journal_so_far(run_id)} if old is not None else set()
        todo = [j for j in jobs if j.key not in done]
        resumes = int(old.extra.get("resumes", 0)) + 1 if old is not None else 0  # type: ignore[arg-type]
        self._redact = self._resolve_redact(old)
        folder.redact_pii = self._redact
        models = cfg.llm.models() if cfg.llm is not None else {}
        # Credentials written into an agent's or a model's URL are secrets too.
        folder.secrets = folder.secrets.plus_urls(*(v for v in variants.values() if v), *models.values())
        if self._redact and cfg.llm is not None:
            cfg.llm.withhold_pii()
        try:
            self._preflight_simulators(todo)
            await self._start_providers(suite, variants, explicit, todo)
            if cfg.preflight and todo:
                await self._preflight_models()
            self._show_plugins(suite)
            if todo:
                self._backend = open_backend(cfg.workers, cfg.ray)
        except BaseException:
            await self._close_resources()
            raise

        manifest = RunManifest(
            run_id=run_id,
            evalkit_version=_version(),
            git_sha=_git_sha(),
            command=cfg.command,
            suites=suites,
            suite_hash=fingerprint,
            gate=suite.config.gate,
            agent=next(iter(variants.values())) if len(variants) == 1 else None,
            variants={k: v or "(per scenario)" for k, v in variants.items()},
            models=models,
            simulator=cfg.simulator,
            seed=seed,
            trials=trials_flag or suite.config.trials,
            concurrency=cfg.concurrency,
            tags=list(cfg.tags or (old.tags if old else [])),
            started_at=old.started_at if old else now_iso(),
            status="running",
            n_planned=len(jobs),
            python=platform.python_version(),
            platform=platform.platform(terse=True),
            extra={
                "trials_flag": trials_flag,
                "resumes": resumes,
                **({"redact_pii": True} if self._redact else {}),
                # Of this attempt (a resume may use another backend than the run's start).
                "backend": self._backend.name if self._backend is not None else "in-process",
                "workers": self._backend.workers if self._backend is not None else 1,
            },
        )
        started = time.monotonic()
        results: list[ConversationResult] = []
        # Past one process the driver keeps no finished conversation in memory while they stream
        # in (its memory stays flat however long the run); the tables and the report are made
        # from the journal, read back once at the end.
        keep = self._backend is None
        try:
            # Manifest first, then the journal (a torn last line is cut off before appending).
            already = folder.begin(manifest)  # a resume's conversations
            if keep:
                results += already
            del already  # past one process, not held while the run streams
            progress = _Progress(len(todo), cfg.progress, cfg.progress_stream)
            # The journal first: a conversation is reported only once it is on disk.
            observers = [_Journal(folder, results if keep else None), progress]
            observers += [o for o in cfg.observers if isinstance(o, RunObserver)]
            await self._run_jobs(todo, observers, run_id, resumes, turn_timeout, conv_timeout)
            progress.finish()
        finally:
            await self._close_resources()
        if not keep:
            results = await asyncio.to_thread(folder.journal_so_far, run_id)

        order = {j.key: j.order for j in jobs}
        results.sort(key=lambda r: order.get(r.key, (1 << 30, 0, 0)))
        finished = {r.key for r in results}
        complete = not self.interrupted and all(j.key in finished for j in jobs)
        manifest = manifest.model_copy(
            update={
                "status": "complete" if complete else "interrupted",
                "finished_at": now_iso(),
                "duration_s": round(time.monotonic() - started, 3),
                "cache": cfg.llm.cache_stats() if cfg.llm is not None else {},
                "extra": {**manifest.extra, **({"llm_usage": cfg.llm.usage()} if cfg.llm is not None else {})},
            }
        )
        # The manifest is written last: "complete" only once everything is on disk.
        return folder.finish(RunResult(manifest=manifest, conversations=results), self._outputs())

    def _outputs(self) -> Sequence[Renderer]:
        if self.config.outputs is not None:
            return self.config.outputs
        # The runner composes a run; the folder writer itself never imports a renderer.
        from evalkit.reports.outputs import standard_outputs

        return standard_outputs()

    # -- setup -----------------------------------------------------------------------
    @staticmethod
    def _new_run_id() -> str:
        return now_stamp() + "-" + secrets.token_hex(2)

    def _resolve_seed(self, old: RunManifest | None) -> int:
        cfg = self.config
        if old is not None and cfg.seed is not None and cfg.seed != old.seed:
            raise ConfigError(
                f"--seed {cfg.seed} differs from the resumed run's seed {old.seed}", field="seed"
            )
        if cfg.seed is not None:
            return cfg.seed
        return old.seed if old is not None else 0

    def _resolve_redact(self, old: RunManifest | None) -> bool:
        before = bool(old.extra.get("redact_pii")) if old is not None else False
        if old is not None and self.config.redact_pii and not before:
            # Its journal already holds unmasked conversations: masking only the rest would
            # give a false sense of safety.
            raise ConfigError(
                "the resumed run was recorded without --redact-pii; redact its reports with "
                "`evalkit report --redact-pii` instead",
                field="--redact-pii",
            )
        return self.config.redact_pii or before

    def _resolve_trials(self, old: RunManifest | None) -> int | None:
        cfg = self.config
        before = old.extra.get("trials_flag") if old is not None else None
        if old is not None and cfg.trials is not None and cfg.trials != before:
            raise ConfigError(
                f"--trials {cfg.trials} differs from the resumed run's {before}", field="trials"
            )
        if cfg.trials is not None:
            return cfg.trials
        return before if isinstance(before, int) else None

    def _resolve_variants(self, suite: Suite, old: RunManifest | None) -> tuple[dict[str, str | None], bool]:
        """name -> spec (None: each scenario names its own agent), and whether given explicitly."""
        cfg = self.config
        if cfg.variants and cfg.agent:
            raise ConfigError("give either an agent or variants, not both", field="agent")
        given: dict[str, str] | None = dict(cfg.variants) if cfg.variants else None
        if given is None and cfg.agent:
            given = {"default": cfg.agent}
        if old is not None:
            before = {k: v for k, v in old.variants.items() if v != "(per scenario)"}
            if given is not None and before and given != before:
                raise ConfigError(f"agents {given} differ from the resumed run's {before}", field="agent")
            if given is None and before:
                given = before
        if given is not None:
            for name in given:
                if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
                    raise ConfigError(
                        f"variant name '{name}' must be letters, digits, '-', '_' or '.'", field="variant"
                    )
            return dict(given), True
        missing = [s.id for s in suite.scenarios if not suite.agent_for(s)]
        if missing:
            raise ConfigError(
                f"no agent for scenario '{missing[0]}': pass --agent SPEC or set 'agent:' in suite.yaml",
                field="agent",
            )
        specs = {suite.agent_for(s) for s in suite.scenarios}
        return {"default": specs.pop() if len(specs) == 1 else None}, False

    def _trials_for(self, scenario: Scenario, trials_flag: int | None, suite: Suite) -> int:
        return trials_flag or suite.trials_for(scenario)

    def _plan(
        self, suite: Suite, variants: dict[str, str | None], seed: int, trials_flag: int | None
    ) -> list[_Job]:
        jobs = []
        for vi, variant in enumerate(variants):
            for si, scenario in enumerate(suite.scenarios):
                for trial in range(self._trials_for(scenario, trials_flag, suite)):
                    jobs.append(
                        _Job(variant, scenario, trial, derive_seed(seed, scenario.id, trial), (vi, si, trial))
                    )
        return jobs

    def _spec_for(self, job: _Job) -> str:
        spec = (
            self._variants[job.variant]
            if self._explicit
            else (self.suite.agent_for(job.scenario) if self.suite else None)
        )
        assert spec is not None  # checked in _resolve_variants
        return spec

    async def _start_providers(
        self, suite: Suite, variants: dict[str, str | None], explicit: bool, todo: list[_Job]
    ) -> None:
        self._variants, self._explicit = variants, explicit
        agent_config = self._agent_config()
        for job in todo:
            spec = self._spec_for(job)
            if spec not in self._providers:
                provider = load_agent(spec, agent_config)
                self._providers[spec] = provider
                start = getattr(provider, "start", None)
                if callable(start):
                    await call_maybe_async(start, thread=False)

    async def _preflight_models(self) -> None:
        """A missing key, a dead endpoint or an unknown model fails the run here, once."""
        llm = self.config.llm
        clients = llm.clients() if llm is not None else {}
        found: list[tuple[str, ModelSettings | None]] = [
            (role, c.settings) for role, c in clients.items() if role != "agent"
        ]
        # The agent's model only where the agent takes it (a rules-engine agent never calls it).
        found += [("agent", s) for p in self._providers.values() for s in p.model_settings()]
        if all(s is None for _, s in found):
            return  # offline: evalkit.llm (and openai) is not even imported
        from evalkit.llm.preflight import check_models

        await check_models([(role, s) for role, s in found if s is not None])

    def _agent_config(self) -> AgentConfig:
        if self.config.agent_config is not None:
            return self.config.agent_config
        client = self.config.llm.agent if self.config.llm is not None else None
        return AgentConfig(model=client.settings if client is not None else None)

    def _show_plugins(self, suite: Suite) -> None:
        """Before anything runs: which code each agent spec and non-built-in judge resolved
        to, and where it was found (a suite is code you trust; this shows what that is)."""
        if self.config.progress is False:
            return
        from evalkit.core.plugins import code_origin
        from evalkit.judges.registry import judge_origin

        lines = []
        by_origin: dict[str, list[str]] = {}  # one line per piece of code, however many specs use it
        for spec, provider in self._providers.items():
            factory = getattr(provider, "factory", None)
            what = code_origin(factory) if factory is not None else type(provider).__name__
            by_origin.setdefault(what, []).append(_masked_spec(spec))
        for what, agent_specs in by_origin.items():
            n_more = len(agent_specs) - 1
            more = f" (and {n_more} more spec{'s' if n_more > 1 else ''} of it)" if n_more else ""
            lines.append(f"evalkit: agent {agent_specs[0]}{more} = {what}")
        names: dict[str, None] = {}
        for scenario in suite.scenarios:
            specs = [*suite.judges_for(scenario), *scenario.expect]
            for step in scenario.user.script or []:
                specs += step.expect
            if scenario.user.persona is not None:
                specs += scenario.user.persona.goal.done_when
            names.update((spec.name, None) for spec in specs)
        for name in names:
            origin = judge_origin(name)
            if origin is not None:
                lines.append(f"evalkit: judge {name} = {origin}")
        stream = self.config.progress_stream or sys.stderr
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()

    async def play_one(
        self,
        scenario: Scenario,
        provider: AgentProvider,
        *,
        trial: int = 0,
        seed: int = 0,
        variant: str = "default",
        run_id: str = "adhoc",
    ) -> ConversationResult:
        """Play (:func:`evalkit.run.play.play`) and score ONE conversation as :meth:`run` does, without a
        run folder (used by the pytest plugin and ``run_conversation``). ``self.config.suite``
        supplies the suite settings; the provider is started and closed here."""
        suite = self.config.suite
        if not isinstance(suite, Suite):
            raise TypeError("play_one needs RunConfig(suite=<a loaded Suite>), e.g. load_suite([folder])")
        self.suite = suite
        self._variants, self._explicit = {variant: provider.spec}, True
        self._providers[provider.spec] = provider
        start = getattr(provider, "start", None)
        if callable(start):
            await call_maybe_async(start, thread=False)
        config = suite.config_for(scenario) if hasattr(suite, "config_for") else suite.config
        self._max_reply = self.config.max_reply_bytes or config.max_reply_bytes
        job = _Job(variant, scenario, trial, derive_seed(seed, scenario.id, trial), (0, 0, trial))
        try:
            with agent_threads():
                return await self._conversation(
                    job, run_id, 0, config.turn_timeout_s, config.conversation_timeout_s
                )
        finally:
            await self._close_providers()

    # -- a shard of a run driven by another process (evalkit.run.backends) ----------------
    async def open_shard(self, variants: dict[str, str | None], explicit: bool) -> None:
        """Ready this runner to play items of a run whose driver owns the run folder:
        ``self.config.suite`` is the loaded suite; ``variants`` and ``explicit`` as the
        driver resolved them. Starts the agent providers."""
        suite = self.config.suite
        if not isinstance(suite, Suite):
            raise TypeError("open_shard needs RunConfig(suite=<a loaded Suite>)")
        self.suite = suite
        self._max_reply = self.config.max_reply_bytes or suite.config.max_reply_bytes
        every = [_Job(v, sc, 0, 0, (0, 0, 0)) for v in variants for sc in suite.scenarios]
        await self._start_providers(suite, variants, explicit, every)

    async def play_item(
        self,
        variant: str,
        scenario_id: str,
        trial: int,
        seed: int,
        *,
        run_id: str,
        resumes: int,
        turn_timeout: float,
        conv_timeout: float,
    ) -> ConversationResult:
        """Play and score one (variant, scenario, trial) item of a run (after :meth:`open_shard`)."""
        assert self.suite is not None
        if self._scenarios is None:
            self._scenarios = {s.id: s for s in self.suite.scenarios}
        job = _Job(variant, self._scenarios[scenario_id], trial, seed, (0, 0, trial))
        return await self._conversation(job, run_id, resumes, turn_timeout, conv_timeout)

    async def close_shard(self) -> None:
        """Close what :meth:`open_shard` started (agent providers, model clients if owned)."""
        await self._close_resources()

    async def _close_resources(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await asyncio.to_thread(backend.stop, interrupted=self.interrupted)
        await self._close_providers()
        llm = self.config.llm
        if self.config.close_llm and llm is not None:
            await llm.aclose()

    async def _close_providers(self) -> None:
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception as exc:  # the run is recorded; a failing cleanup is only worth a warning
                log.warning("closing agent %s failed: %s", provider.spec, _exc_line(exc))
        self._providers.clear()

    def _make_simulator(self, scenario: Scenario, seed: int) -> Any:
        factory = self.config.simulator_factory
        if factory is None:
            from evalkit.simulators import make_simulator

            factory = make_simulator
        return factory(scenario, kind=self.config.simulator, seed=seed, llm=self.config.llm)

    def _preflight_simulators(self, todo: list[_Job]) -> None:
        """Misuse (e.g. ``--simulator llm`` with no model) fails the run at once, not per
        conversation; other simulator failures are recorded on each conversation."""
        seen: set[str] = set()
        for job in todo:
            if job.scenario.id in seen:
                continue
            seen.add(job.scenario.id)
            try:
                self._make_simulator(job.scenario, job.seed)
            except EvalkitError:
                raise
            except Exception:
                continue

    # -- scheduling --------------------------------------------------------------------
    async def _run_jobs(
        self,
        todo: list[_Job],
        observers: Sequence[RunObserver],
        run_id: str,
        resumes: int,
        turn_timeout: float,
        conv_timeout: float,
    ) -> None:
        queue = iter(todo)
        suite = self.suite
        assert suite is not None

        write_lock = asyncio.Lock()
        writes: set[asyncio.Task[None]] = set()

        async def write(batch: list[ConversationResult]) -> None:
            # One batch at a time through the observers (the journal appends in order).
            async with write_lock:
                for observer in observers:
                    await observer.on_results(batch)

        async def worker() -> None:
            for job in queue:
                # asyncio.wait_for (3.11) can swallow the cancel when a reply has just
                # arrived, so an interrupt is also checked here before starting more work.
                if self.interrupted:
                    break
                await journal([await self._conversation(job, run_id, resumes, turn_timeout, conv_timeout)])

        async def journal(batch: list[ConversationResult]) -> None:
            task = asyncio.create_task(write(batch))
            writes.add(task)
            # Shielded: a Ctrl-C arriving mid-write never loses a finished conversation.
            await asyncio.shield(task)

        if self._backend is not None:
            # Past one process: workers play, this driver journals each result as it arrives.
            self._tasks = [
                asyncio.create_task(
                    self._play_sharded(todo, journal, run_id, resumes, turn_timeout, conv_timeout)
                )
            ]
        else:
            self._tasks = [
                asyncio.create_task(worker()) for _ in range(min(self.config.concurrency, len(todo)))
            ]

        restore = self._install_signals()
        try:
            outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            restore()
            await asyncio.gather(*writes, return_exceptions=True)  # let started writes land
        for write_task in writes:
            if not write_task.cancelled() and write_task.exception() is not None:
                raise write_task.exception()  # type: ignore[misc]  # disk full: the user must know
        for out in outcomes:
            if isinstance(out, BaseException) and not isinstance(out, asyncio.CancelledError):
                raise out

    async def _play_sharded(
        self,
        todo: list[_Job],
        write: Callable[[list[ConversationResult]], Awaitable[None]],
        run_id: str,
        resumes: int,
        turn_timeout: float,
        conv_timeout: float,
    ) -> None:
        assert self._backend is not None and self.suite is not None
        setup = ShardSetup(
            suite=self.suite,
            variants=self._variants,
            explicit=self._explicit,
            agent_config=agent_share(self._agent_config(), self._backend.workers),
            simulator=self.config.simulator,
            simulator_factory=self.config.simulator_factory,
            llm=LLMRecipe.of(self.config.llm, self._backend.workers),
            max_reply_bytes=self._max_reply,
            concurrency=self.config.concurrency,
            run_id=run_id,
            resumes=resumes,
            turn_timeout=turn_timeout,
            conv_timeout=conv_timeout,
            make_runner=shard_runner,
            sys_path=driver_paths(),
        )
        await asyncio.to_thread(self._backend.start, setup)
        items = [Item(j.variant, j.scenario.id, j.trial, j.seed) for j in todo]
        await play_sharded(self._backend, setup, items, write, llm=self.config.llm)

    def _install_signals(self) -> Callable[[], None]:
        if not self.config.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.interrupt)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

        def restore() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return restore

    def interrupt(self) -> None:
        """Stop: start no new conversation, cancel the running ones (they are not journaled)."""
        if not self.interrupted:
            self.interrupted = True
            for task in self._tasks:
                task.cancel()

    # -- one conversation ------------------------------------------------------------
    async def _conversation(
        self, job: _Job, run_id: str, resumes: int, turn_timeout: float, conv_timeout: float
    ) -> ConversationResult:
        """Play one (variant, scenario, trial) through :func:`evalkit.run.play.play` and score it."""
        suite = self.suite
        assert suite is not None
        scenario = job.scenario
        channel = str(scenario.channel or suite.config.channel)
        parts = [run_id] + ([job.variant] if job.variant != "default" else []) + [scenario.id, str(job.trial)]
        if resumes:
            parts.append(f"r{resumes}")  # a resumed attempt never reuses a session an agent may still hold
        info = SessionInfo(
            session_id="-".join(parts),
            scenario_id=scenario.id,
            trial=job.trial,
            seed=job.seed,
            variant=job.variant,
            channel=channel,
            customer=scenario.customer,
            initial_state=scenario.initial_state,
        )
        limits = Limits(
            max_turns=scenario.max_turns or suite.config.max_turns,
            turn_timeout_s=turn_timeout,
            conversation_timeout_s=conv_timeout,
            max_reply_bytes=self._max_reply,
        )
        t = await play(
            scenario,
            lambda: self._make_simulator(scenario, job.seed),
            self._providers[self._spec_for(job)].new_session,
            info,
            limits,
            observers=self.config.observers,
            llm=self.config.llm,
            stalls=self._stalls,
        )
        try:
            result = await score_transcript(
                t,
                scenario,
                suite_judges=suite.judges_for(scenario),
                llm=self.config.llm,
                run_id=run_id,
                judge_cache=self._judges,
            )
        except Exception as exc:  # a bug in scoring must not lose the conversation
            log.warning("scoring %s failed: %s", scenario.id, _exc_line(exc))
            result = ConversationResult(
                run_id=run_id, title=scenario.title, tags=list(scenario.tags), transcript=t
            )
            result.metrics["scoring_error"] = _exc_line(exc)
        return result


def shard_runner(setup: ShardSetup, llm: Any) -> Runner:
    """The :class:`Runner` one worker of a sharded run plays its items with (see
    :mod:`evalkit.run.backends`; :meth:`Runner.open_shard` readies it)."""
    return Runner(
        RunConfig(
            suite=setup.suite,
            concurrency=setup.concurrency,
            simulator=setup.simulator,
            llm=llm,
            agent_config=setup.agent_config,
            simulator_factory=setup.simulator_factory,
            max_reply_bytes=setup.max_reply_bytes,
            progress=False,
            handle_signals=False,
            preflight=False,
            close_llm=True,
        )
    )

def _masked_spec(spec: str) -> str:
    """An agent spec as shown on screen: a password in an http(s) URL is masked."""
    from urllib.parse import urlsplit, urlunsplit

    if not spec.lower().startswith(("http://", "https://")):
        return spec
    try:
        parts = urlsplit(spec)
        if parts.password is None:
            return spec
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return spec


def _cleaned(result: ConversationResult) -> ConversationResult:
    data, replaced = clean_value(result.model_dump(mode="python"))
    fixed = ConversationResult.model_validate(data)
    fixed.metrics["replaced_characters"] = replaced
    return fixed


def _version() -> str:
    from evalkit import __version__

    return __version__
