"""Shared pieces of the worker-process and Ray tests: a suite, an agent that can end its own
process, journal readers and a driver killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A Python agent in a module of its own (written into the test's folder): it answers after a
# short pause; ``die_once`` scenarios end its process (SIGKILL) the first time they are played,
# ``die_always`` ones every time: a worker killed mid-run.
AGENT = textwrap.dedent('''
    import os, signal, time
    from pathlib import Path

    FLAGS = Path({flags!r})

    class Agent:
        def respond(self, ctx):
            sid = ctx.session.scenario_id
            if sid in {die_always!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            flag = FLAGS / (sid + "-" + str(ctx.session.trial))
            if sid in {die_once!r} and not flag.exists():
                flag.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep({pause})
            if "ORD-1" in ctx.message:
                return "Done: ORD-1 is cancelled."
            return "echo: " + ctx.message

    def create(session=None):
        return Agent()
''')


def write_suite(folder: Path, n: int, *, pause: float = 0.005, die_once: tuple[str, ...] = (),
                die_always: tuple[str, ...] = ()) -> tuple[Path, str]:
    """A suite of ``n`` scripted scenarios (half pass, half fail a ``said`` check) and its
    agent module; returns the suite folder and the agent spec. ``folder`` goes on sys.path."""
    suite = folder / "suite"
    suite.mkdir(parents=True)
    lines = ["scenarios:"]
    for i in range(n):
        say = "cancel ORD-1" if i % 2 == 0 else "where is ORD-2"
        lines.append(
            f"  - id: w{i:03d}\n    user:\n      script:\n        - say: hello {i}\n        - say: {say}\n"
            f"    expect:\n      - said: {{contains: Done}}"
        )
    (suite / "scenarios.yaml").write_text("\n".join(lines) + "\n")
    flags = folder / "flags"
    flags.mkdir()
    module = f"workers_agent_{abs(hash(str(folder))) % 10**8}"
    (folder / f"{module}.py").write_text(
        AGENT.format(flags=str(flags), die_once=set(die_once), die_always=set(die_always), pause=pause)
    )
    return suite, f"{module}:create"


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines() if line.strip()]


def keys(out: Path) -> Counter[tuple[str, str, int]]:
    """How many times each (variant, scenario, trial) is in the journal."""
    return Counter((r["transcript"]["variant"], r["transcript"]["scenario_id"], r["transcript"]["trial"])
                   for r in journal(out))


def verdicts(records: list[dict]) -> dict[tuple[str, str, int], list[tuple]]:
    """Per item: each verdict's judge, pass/fail, label and skip (scores of timing judges vary)."""
    return {
        (r["transcript"]["variant"], r["transcript"]["scenario_id"], r["transcript"]["trial"]): [
            (v["judge"], v["passed"], v["label"], v["skipped"],
             None if v["judge"] in ("latency", "ttft") else v["score"])
            for v in r["verdicts"]
        ]
        for r in records
    }


def env(folder: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    e["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT)])
    return e


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float = 20) -> set[int]:
    """The ``pids`` still alive after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p for p in pids if alive(p)}
        if not left:
            return left
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


def start_run(folder: Path, suite: Path, agent: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``evalkit run`` in a session of its own (a terminal's process group); its stderr goes
    to ``folder/stderr.txt``."""
    with open(folder / "stderr.txt", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "evalkit", "run", str(suite), "--agent", agent, "--out", str(out),
             "--no-progress", "--seed", "3", *extra],
            stdout=subprocess.DEVNULL, stderr=err, env=env(folder), cwd=folder, start_new_session=True,
        )


def stderr(out: Path) -> str:
    return (out.parent / "stderr.txt").read_text(errors="replace")[-2000:]


def stop_mid_run(proc: subprocess.Popen[bytes], out: Path, at_lines: int, sig: int) -> set[int]:
    """Send ``sig`` to the driver (its whole process group for SIGINT, as a terminal's Ctrl-C
    does) once the journal has ``at_lines`` lines; returns the worker pids it had."""
    path = out / "conversations.jsonl"
    deadline = time.monotonic() + 240
    while not path.is_file() or len(path.read_bytes().splitlines()) < at_lines:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it could be stopped: {stderr(out)}")
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    workers = children(proc.pid)
    t0 = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    proc.wait(60)
    print(f"stopped in {time.monotonic() - t0:.1f}s")
    return workers
