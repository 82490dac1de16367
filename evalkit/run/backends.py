"""Playing a run's conversations past one process: local worker processes or Ray.

``evalkit run --workers N`` plays the (variant, scenario, trial) items in N local processes
(:class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` context); ``--ray [ADDRESS]``
plays them in Ray actors (``ray.init``, ``ray.remote``, ``ray.kill``: Ray's public API only)
on a local Ray or a cluster. Either way:

* **the driver alone owns the run folder.** Workers return finished conversations; the
  driver journals each one as its batch arrives, exactly once (deduplicated by its
  (variant, scenario, trial) key, one ``fsync`` per batch), and keeps the progress line;
* **bounded in flight.** At most two batches per worker are out at a time (a batch is
  ``--concurrency`` items, played concurrently by that worker), so memory does not grow with
  the number of items still to play;
* **a dead worker loses nothing.** Its unfinished items are played again by a fresh worker.
  An item that was in flight when a worker died is then played alone, one at a time; one
  whose worker dies twice more while it plays alone is recorded as an agent error (an agent
  that ends its own process), and the run goes on;
* **each worker builds its own** agent providers, simulators, judges and model clients from a
  picklable :class:`ShardSetup` (the loaded suite, agent specs, settings, seeds): no live
  client is ever pickled;
* **limits stay global.** Each model role's ``rpm``, ``tpm`` and ``max_concurrency`` are split
  evenly between the workers (rounded down), so together they never exceed the limit; an
  idle worker's share is not lent to the others. The response cache is the same folder for
  every worker (on one machine; on a cluster it must be a shared file system);
* **Ctrl-C** stops every worker: local processes finish nothing new (their running
  conversations are cancelled, the finished ones are journaled); Ray actors are killed.
  The run is resumable with ``--resume``, whichever backend began it.

Why not a library scheduler: the work is a fixed list of independent items whose results
must be journaled once, in one process; ProcessPoolExecutor and Ray actors do the placing
and the processes, and this module only keeps the bookkeeping (what is out, what came back,
what to play again).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from evalkit.agents.base import AgentConfig
from evalkit.agents.session import agent_threads
from evalkit.core.errors import ConfigError
from evalkit.core.results import ConversationResult
from evalkit.core.transcript import Outcome, StopReason, Transcript
from evalkit.core.untrusted import exc_line
from evalkit.scenarios.loader import Suite

__all__ = [
    "Backend",
    "Batch",
    "Item",
    "LLMRecipe",
    "ShardSetup",
    "agent_share",
    "driver_paths",
    "open_backend",
    "play_sharded",
    "ray_address",
]

log = logging.getLogger("evalkit")

# An item that was in flight when a worker died is played alone; dying this many more times
# alone makes it an agent error.
SOLO_DEATHS = 2
# Workers dying this many times in a row with no batch finished in between cannot start at
# all (a setup that fails to load there): the run stops with one line instead of looping.
DEATHS_IN_A_ROW = 5
# Batches out per worker: one playing, one waiting, so no worker idles between batches.
BATCHES_PER_WORKER = 2
# How often a worker looks at the stop flag while a batch plays (seconds).
_STOP_POLL_S = 0.05


class Item(NamedTuple):
    """One conversation to play: what a worker needs besides its :class:`ShardSetup`."""

    variant: str
    scenario_id: str
    trial: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.scenario_id, self.trial)


# -- the model clients, rebuilt in each worker ------------------------------------------------
@dataclass(frozen=True)
class _ClientRecipe:
    role: str
    settings: Any  # evalkit.llm.settings.ModelSettings, with this worker's share of the limits
    prices: Any
    cache_reads: bool


@dataclass(frozen=True)
class LLMRecipe:
    """How to build a worker's :class:`evalkit.llm.clients.ModelClients`: the driver's settings with each
    limit divided by the number of workers, and the same response-cache folder."""

    clients: tuple[_ClientRecipe, ...]
    cache_dir: str | None
    cache_mode: str
    cache_redact_pii: bool
    cache_secrets: Any

    @classmethod
    def of(cls, llm: Any, workers: int) -> LLMRecipe | None:
        """The recipe of the driver's ``llm`` (None: offline)."""
        if llm is None:
            return None
        from evalkit.llm.clients import ModelClients

        if not isinstance(llm, ModelClients):
            raise ConfigError(
                f"workers rebuild the model clients from their settings, so llm must be an "
                f"evalkit.llm.ModelClients (got {type(llm).__name__})",
                field="llm",
            )
        recipes = []
        for role, client in llm.clients().items():
            if client.openai_client is not None or client.http_client is not None:
                raise ConfigError(
                    "a caller's own openai_client or http_client cannot be sent to worker processes; "
                    "run in one process or let evalkit build the client",
                    field=f"{role}.http_client",
                )
            recipes.append(_ClientRecipe(role, _share(client.settings, role, workers), client.prices,
                                         client.cache_reads))
        cache = llm.cache
        return cls(
            clients=tuple(recipes),
            cache_dir=str(Path(cache.directory).resolve()) if cache is not None else None,
            cache_mode=str(cache.mode) if cache is not None else "off",
            cache_redact_pii=bool(cache.redact_pii) if cache is not None else False,
            cache_secrets=cache.secrets if cache is not None else None,
        )

    def build(self) -> Any:
        from evalkit.llm.cache import ResponseCache
        from evalkit.llm.client import LLMClient
        from evalkit.llm.clients import ModelClients

        store = None
        if self.cache_dir is not None:
            store = ResponseCache(Path(self.cache_dir), mode=self.cache_mode,  # type: ignore[arg-type]
                                  redact_pii=self.cache_redact_pii, secrets=self.cache_secrets)
        built = {
            c.role: LLMClient(c.settings, role=c.role, cache=store, prices=c.prices, cache_reads=c.cache_reads)
            for c in self.clients
        }
        return ModelClients(**built, cache=store)


def _share(settings: Any, role: str, workers: int) -> Any:
    """``settings`` with ``rpm``, ``tpm`` and ``max_concurrency`` divided between ``workers``."""
    update: dict[str, int] = {}
    for name in ("rpm", "tpm", "max_concurrency"):
        value = getattr(settings, name)
        if value is None:
            continue
        if value < workers:
            raise ConfigError(
                f"{value} cannot be shared by {workers} workers (each needs at least 1); "
                "raise it or use fewer workers",
                field=f"{role}.{name}",
            )
        update[name] = value // workers
    return settings.model_copy(update=update)


def agent_share(config: AgentConfig, workers: int) -> AgentConfig:
    """The agent's model settings with this worker's share of their limits."""
    if config.model is None:
        return config
    return dataclasses.replace(config, model=_share(config.model, "agent", workers))


def driver_paths() -> tuple[str, ...]:
    """The driver's own code folders (its working folder and the ``sys.path`` entries outside
    the Python installation), put on each worker's ``sys.path`` where they exist, so
    ``module:factory`` agents are found there as they are here."""
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = [os.getcwd()]
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(real) and not any(real == p or real.startswith(p + os.sep) for p in installed):
            out.append(real)
    return tuple(dict.fromkeys(out))


@dataclass
class _Usage:
    """What a worker's model clients did since its last batch (merged into the driver's)."""

    cache: dict[str, int] = field(default_factory=dict)
    totals: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Batch:
    """A worker's answer: the conversations it finished and its model usage meanwhile."""

    results: list[ConversationResult]
    usage: _Usage


# -- what a worker knows ------------------------------------------------------------------
@dataclass(frozen=True)
class ShardSetup:
    """Everything a worker needs to play items of one run (picklable)."""

    suite: Suite
    variants: dict[str, str | None]
    explicit: bool
    agent_config: AgentConfig
    simulator: str
    simulator_factory: Callable[..., Any] | None
    llm: LLMRecipe | None
    max_reply_bytes: int | None
    concurrency: int
    run_id: str
    resumes: int
    turn_timeout: float
    conv_timeout: float
    # Builds the worker's Runner from this setup and its model clients (a module-level
    # function of evalkit.run.runner, pickled by name: this module never imports the runner).
    make_runner: Callable[[ShardSetup, Any], Any]
    # Folders put on the worker's sys.path (the driver's working folder, where
    # ``module:factory`` agents are found), when they exist there.
    sys_path: tuple[str, ...] = ()


class _Shard:
    """One worker's own :class:`~evalkit.run.runner.Runner`, on its own event loop."""

    def __init__(self, setup: ShardSetup) -> None:
        for entry in reversed(setup.sys_path):
            if entry not in sys.path and os.path.isdir(entry):
                sys.path.insert(0, entry)
        self.setup = setup
        self.loop = asyncio.new_event_loop()
        # One pool of agent threads for the worker's life, as a run has (set in this context,
        # so every batch's tasks share it).
        self._exit = contextlib.ExitStack()
        self._exit.enter_context(agent_threads())
        self.llm = setup.llm.build() if setup.llm is not None else None
        self.runner = setup.make_runner(setup, self.llm)
        self.loop.run_until_complete(self.runner.open_shard(setup.variants, setup.explicit))
        self._seen = _Usage()

    def play(self, items: Sequence[Item], stop: Callable[[], bool] | None = None) -> Batch:
        results = self.loop.run_until_complete(self._play(items, stop))
        return Batch(results, self._usage_since())

    async def _play(self, items: Sequence[Item], stop: Callable[[], bool] | None) -> list[ConversationResult]:
        s = self.setup
        gate = asyncio.Semaphore(s.concurrency)

        async def one(item: Item) -> ConversationResult:
            async with gate:
                return await self.runner.play_item(
                    item.variant, item.scenario_id, item.trial, item.seed,
                    run_id=s.run_id, resumes=s.resumes, turn_timeout=s.turn_timeout, conv_timeout=s.conv_timeout,
                )

        tasks = [asyncio.ensure_future(one(item)) for item in items]
        pending: set[asyncio.Future[ConversationResult]] = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=_STOP_POLL_S if stop else None)
            if pending and stop is not None and stop():
                for task in pending:  # a stopped run: running conversations are not journaled
                    task.cancel()
                await asyncio.wait(pending)
                break
        # Every failure of the agent is data on its conversation; an exception here is a bug.
        return [t.result() for t in tasks if not t.cancelled()]

    def _usage_since(self) -> _Usage:
        now = _Usage()
        llm = self.llm
        if llm is None:
            return now
        if llm.cache is not None:
            now.cache = {k: v for k, v in llm.cache.stats.as_dict().items()}
        now.totals = {role: dict(c.totals.as_dict()) for role, c in llm.clients().items()}
        delta = _Usage(
            cache={k: v - self._seen.cache.get(k, 0) for k, v in now.cache.items()},
            totals={
                role: {k: v - self._seen.totals.get(role, {}).get(k, 0) for k, v in vals.items()}
                for role, vals in now.totals.items()
            },
        )
        self._seen = now
        return delta

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.runner.close_shard())
        finally:
            self.loop.close()
            self._exit.close()


def _merge_usage(llm: Any, usage: _Usage) -> None:
    """Add a worker's usage into the driver's clients, so the manifest counts every call."""
    if llm is None:
        return
    cache = getattr(llm, "cache", None)
    if cache is not None:
        for name, n in usage.cache.items():
            if n and hasattr(cache.stats, name):
                setattr(cache.stats, name, getattr(cache.stats, name) + n)
    clients = llm.clients() if callable(getattr(llm, "clients", None)) else {}
    for role, vals in usage.totals.items():
        client = clients.get(role)
        if client is None:
            continue
        for f in fields(client.totals):
            if vals.get(f.name):
                setattr(client.totals, f.name, getattr(client.totals, f.name) + vals[f.name])


# -- local worker processes ----------------------------------------------------------------
# The state of one worker process (set by its initializer; a process plays one run only).
_PROCESS: dict[str, Any] = {}


def _process_init(setup: ShardSetup, stop: Any, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the driver alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _PROCESS.update(setup=setup, stop=stop, shard=None)

    def watch_driver() -> None:  # a driver killed outright (SIGKILL) leaves no orphan behind
        while True:
            try:
                os.kill(parent, 0)  # the driver, not our parent (the fork server's child)
            except ProcessLookupError:
                os._exit(1)
            except OSError:
                pass
            time.sleep(0.5)

    threading.Thread(target=watch_driver, daemon=True, name="evalkit-driver-watch").start()


def _process_play(items: list[Item]) -> Batch:
    shard = _PROCESS.get("shard")
    if shard is None:  # built on the first batch: a setup error travels back as itself
        shard = _PROCESS["shard"] = _Shard(_PROCESS["setup"])
        # The agents' sessions and model clients, at the worker's end where the interpreter
        # exits normally (a fork server's children end with os._exit: the OS closes them).
        atexit.register(shard.close)
    stop = _PROCESS["stop"]
    return shard.play(items, stop.is_set)


class Backend(Protocol):
    """Where the items are played: :class:`ProcessBackend` or :class:`RayBackend`."""

    name: str
    workers: int

    def start(self, setup: ShardSetup) -> None: ...

    def submit(self, items: list[Item]) -> tuple[concurrent.futures.Future[Batch], object]:
        """Send a batch; returns its future and the worker (a token for :meth:`replace`)."""
        ...

    def died(self, exc: BaseException) -> bool:
        """Is ``exc`` (from a batch's future) the death of its worker?"""
        ...

    def replace(self, worker: object) -> None:
        """Replace a dead worker (idempotent for the same token)."""
        ...

    def stop(self, *, interrupted: bool) -> None: ...


# Imported once by the fork server, so a worker (or its replacement) starts in milliseconds.
_PRELOAD = ["evalkit.run.backends", "evalkit.run.runner", "evalkit.run.scoring", "evalkit.simulators", "evalkit.judges"]


class ProcessBackend:
    """N local worker processes, forked from a ``forkserver`` (never from the driver itself,
    whose threads' locks a fork would copy) that has evalkit imported already."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._ctx: Any
        if "forkserver" in multiprocessing.get_all_start_methods():
            self._ctx = multiprocessing.get_context("forkserver")
            self._ctx.set_forkserver_preload(_PRELOAD)
        else:  # no fork server (Windows, macOS without it): a fresh interpreter per worker
            self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._setup: ShardSetup | None = None

    def start(self, setup: ShardSetup) -> None:
        try:
            pickle.dumps(setup)
        except Exception as exc:  # e.g. a simulator_factory that is a lambda or a closure
            raise ConfigError(f"the run's setup cannot be sent to worker processes: {exc_line(exc)}",
                              field="workers") from None
        self._setup = setup
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        initargs: tuple[Any, ...] = (self._setup, self._stop, os.getpid())
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._ctx,
            initializer=_process_init,  # type: ignore[arg-type]  # typeshed: no initargs typing
            initargs=initargs,  # type: ignore[arg-type]
        )

    def submit(self, items: list[Item]) -> tuple[concurrent.futures.Future[Batch], object]:
        assert self._pool is not None
        return self._pool.submit(_process_play, items), self._pool

    def died(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def replace(self, worker: object) -> None:
        # One dead process breaks the whole executor (every batch out fails): start a new one.
        if worker is self._pool and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    def stop(self, *, interrupted: bool) -> None:
        self._stop.set()  # running batches cancel what still plays and return what finished
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)


# -- Ray --------------------------------------------------------------------------------------
class _RayShard:
    """A Ray actor around :class:`_Shard` (built on its first batch, so a setup error comes
    back as that error rather than as a dead actor)."""

    def __init__(self, setup: ShardSetup) -> None:
        self.setup = setup
        self.shard: _Shard | None = None

    def play(self, items: list[Item]) -> Batch:
        if self.shard is None:
            self.shard = _Shard(self.setup)
        return self.shard.play(items)

    def close(self) -> None:
        if self.shard is not None:
            shard, self.shard = self.shard, None
            shard.close()


_LOCAL_ADDRESSES = ("", "local")
# How long a finished run's actors get to close their agents before they are killed (seconds).
_CLOSE_S = 30.0


def ray_address(value: str) -> str | None:
    """The ``ray.init`` address for ``--ray VALUE`` (None: start a local Ray), or a one-line
    error when ``value`` is not one."""
    v = value.strip()
    if v.lower() in _LOCAL_ADDRESSES:
        return None
    if v == "auto" or "://" in v:
        return v
    host, sep, port = v.rpartition(":")
    if sep and host and port.isdigit():
        return v
    raise ConfigError(
        f"'{value}' is not a Ray address (local, auto, HOST:PORT or ray://HOST:PORT)", field="--ray"
    )


class RayBackend:
    """One Ray actor per worker (``num_cpus=1`` each); by default as many as the cluster has CPUs."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "needs Ray, which is not installed: pip install 'evalkit-support[ray]'", field="--ray"
            ) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except Exception as exc:  # Ray raises bare Exception/ConnectionError: one line, exit 2
                where = f"reach Ray at {address}" if address else "start a local Ray"
                raise ConfigError(f"could not {where}: {exc_line(exc)}", field="--ray") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, cpus)
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_RayShard)
        self._actors: list[Any] = []
        self._setup: Any = None  # the ShardSetup in Ray's object store
        self._out: dict[Any, int] = {}

    def start(self, setup: ShardSetup) -> None:
        self._setup = self._ray.put(setup)  # one copy in the object store for every actor
        self._actors = [self._actor_class.remote(self._setup) for _ in range(self.workers)]
        self._out = {a: 0 for a in self._actors}

    def submit(self, items: list[Item]) -> tuple[concurrent.futures.Future[Batch], object]:
        actor = min(self._actors, key=lambda a: self._out[a])  # the least busy
        self._out[actor] += 1
        future: concurrent.futures.Future[Batch] = actor.play.remote(items).future()

        def returned(_: Any) -> None:
            if actor in self._out:
                self._out[actor] -= 1

        future.add_done_callback(returned)
        return future, actor

    def died(self, exc: BaseException) -> bool:
        from ray.exceptions import RayActorError, WorkerCrashedError

        return isinstance(exc, (RayActorError, WorkerCrashedError))

    def replace(self, worker: Any) -> None:
        if worker not in self._out:
            return
        del self._out[worker]
        self._actors.remove(worker)
        self._ray.kill(worker, no_restart=True)
        fresh = self._actor_class.remote(self._setup)
        self._actors.append(fresh)
        self._out[fresh] = 0

    def stop(self, *, interrupted: bool) -> None:
        if not interrupted and self._actors:
            # A finished run: each actor closes its agents and model clients first.
            closing = [actor.close.remote() for actor in self._actors]
            try:
                self._ray.wait(closing, num_returns=len(closing), timeout=_CLOSE_S)
            except Exception as exc:  # cleanup only: the run is already journaled
                log.warning("closing the Ray actors: %s", exc_line(exc))
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)  # an interrupted run: running items are dropped
        self._actors, self._out = [], {}
        if self._started:
            self._started = False
            self._ray.shutdown()


def open_backend(workers: int | None, ray: str | None) -> Backend | None:
    """The backend ``--workers`` / ``--ray`` ask for (None: play in this process)."""
    if ray is not None:
        return RayBackend(ray_address(ray), workers)
    if workers is not None:
        return ProcessBackend(workers)
    return None


# -- the driver ------------------------------------------------------------------------------
_WHO = {"processes": "the worker processes", "ray": "the Ray actors"}


@dataclass
class _Out:
    items: list[Item]
    worker: object


async def play_sharded(
    backend: Backend,
    setup: ShardSetup,
    items: Sequence[Item],
    write: Callable[[list[ConversationResult]], Awaitable[None]],
    *,
    llm: Any = None,
) -> None:
    """Play ``items`` on ``backend`` and ``write`` each finished conversation once, as it
    comes back. Cancelling this coroutine (Ctrl-C) stops every worker."""
    todo: deque[Item] = deque(items)
    suspects: deque[Item] = deque()  # in flight when a worker died: played alone
    solo_deaths: dict[tuple[str, str, int], int] = {}
    done: set[tuple[str, str, int]] = set()
    out: dict[asyncio.Future[Batch], _Out] = {}
    size = max(1, setup.concurrency)
    limit = backend.workers * BATCHES_PER_WORKER

    def send(batch: list[Item]) -> None:
        future, worker = backend.submit(batch)
        out[asyncio.wrap_future(future)] = _Out(batch, worker)

    interrupted = False
    in_a_row = 0
    try:
        while todo or suspects or out:
            if suspects:
                if not out:  # alone: nothing else in flight can share its fate
                    send([suspects.popleft()])
            else:
                while todo and len(out) < limit:
                    send([todo.popleft() for _ in range(min(size, len(todo)))])
            finished, _ = await asyncio.wait(out, return_when=asyncio.FIRST_COMPLETED)
            for future in finished:
                sent = out.pop(future)
                exc = future.exception()
                if exc is not None:
                    if not backend.died(exc):
                        raise exc
                    in_a_row += 1
                    if in_a_row >= DEATHS_IN_A_ROW:
                        raise ConfigError(
                            f"{_WHO[backend.name]} died {in_a_row} times in a row without finishing a "
                            f"batch (last: {exc_line(exc)}); run without --workers/--ray to see why",
                            field="workers",
                        )
                    backend.replace(sent.worker)
                    await _after_death(sent.items, exc, done, suspects, solo_deaths, setup, write)
                    continue
                batch = future.result()
                in_a_row = 0
                await _take(batch, done, write, llm)
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        # Finished batches are collected after the stop: their conversations are complete.
        await asyncio.to_thread(backend.stop, interrupted=interrupted)
        for future in out:
            if future.done() and not future.cancelled() and future.exception() is None:
                await _take(future.result(), done, write, llm)


async def _take(
    batch: Batch,
    done: set[tuple[str, str, int]],
    write: Callable[[list[ConversationResult]], Awaitable[None]],
    llm: Any,
) -> None:
    """Journal a batch's conversations not journaled yet (one write, one fsync)."""
    _merge_usage(llm, batch.usage)
    new = [r for r in batch.results if r.key not in done]
    done.update(r.key for r in new)
    if new:
        await write(new)


async def _after_death(
    items: list[Item],
    exc: BaseException,
    done: set[tuple[str, str, int]],
    suspects: deque[Item],
    solo_deaths: dict[tuple[str, str, int], int],
    setup: ShardSetup,
    write: Callable[[list[ConversationResult]], Awaitable[None]],
) -> None:
    alone = len(items) == 1 and items[0].key in solo_deaths
    for item in items:
        if item.key in done:
            continue
        if not alone:
            solo_deaths.setdefault(item.key, 0)
            suspects.append(item)
            continue
        solo_deaths[item.key] += 1
        if solo_deaths[item.key] < SOLO_DEATHS:
            suspects.append(item)
            continue
        done.add(item.key)
        await write([_died(item, setup, exc)])


def _died(item: Item, setup: ShardSetup, exc: BaseException) -> ConversationResult:
    """The record of a conversation whose worker died every time it played it."""
    scenario = next(s for s in setup.suite.scenarios if s.id == item.scenario_id)
    why = " ".join(str(exc).split())[:200] or type(exc).__name__
    t = Transcript(
        scenario_id=scenario.id,
        trial=item.trial,
        seed=item.seed,
        variant=item.variant,
        channel=str(scenario.channel or setup.suite.config.channel),
        stop_reason=StopReason.agent_error,
        outcome=Outcome.error,
        error=f"the worker process died each time it played this conversation "
              f"({1 + SOLO_DEATHS} times; last: {why}); an agent that ends its own process?",
    )
    return ConversationResult(run_id=setup.run_id, title=scenario.title, tags=list(scenario.tags), transcript=t)
