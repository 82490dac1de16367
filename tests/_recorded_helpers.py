"""Small self-made recordings in every import format, a one-file suite, and an in-process CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
USS_DIR = SHARED / "uss"
TAU_SAMPLE = SHARED / "tau_bench" / "airline_sample.json"

needs_uss = pytest.mark.skipif(
    not (USS_DIR / "SGD.txt").exists(), reason=f"shared USS data absent ({USS_DIR}); calibration checks skipped"
)
needs_tau = pytest.mark.skipif(
    not TAU_SAMPLE.exists(), reason=f"shared τ-bench sample absent ({TAU_SAMPLE}); agreement checks skipped"
)


def call(cid: str, name: str, args: dict[str, Any] | str) -> dict[str, Any]:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}


def openai_line(**fields: Any) -> str:
    return json.dumps(fields)


def tau_record(
    task_id: int,
    trial: int,
    reward: float,
    gold: list[tuple[str, dict[str, Any]]],
    made: list[tuple[str, dict[str, Any], str]],
    *,
    outputs: list[str] | None = None,
    final: str = "Done.",
) -> dict[str, Any]:
    """A τ-bench record: the agent makes the calls in ``made`` (name, args, tool result)."""
    traj: list[dict[str, Any]] = [
        {"role": "system", "content": "# Airline Agent Policy"},
        {"role": "user", "content": "Hi, I need help with my trip."},
    ]
    for i, (name, args, result) in enumerate(made):
        traj.append({"role": "assistant", "content": None, "tool_calls": [call(f"c{i}", name, args)]})
        traj.append({"role": "tool", "tool_call_id": f"c{i}", "name": name, "content": result})
    traj.append({"role": "assistant", "content": final})
    traj.append({"role": "user", "content": "Thanks! ###STOP###"})
    return {
        "task_id": task_id,
        "trial": trial,
        "reward": reward,
        "info": {
            "task": {
                "user_id": "mia_li_3668",
                "instruction": f"You are mia. Task {task_id}.",
                "actions": [{"name": n, "kwargs": a} for n, a in gold],
                "outputs": outputs or [],
            }
        },
        "traj": traj,
    }


USS_TEXT = (
    "\n"
    "USER\tI need a cheap hotel in the north.\tINFORM\t3,3,3\n"
    "SYSTEM\tSorry, there are no hotels matching that.\tNOOFFER\t\n"
    "USER\tThat's not what I asked for. This is useless!\tINFORM\t2,1,2\n"
    "SYSTEM\tSorry.\tBYE\t\n"
    "USER\tOVERALL\t\t2,1,2\n"
    "\n"
    "USER\tBook a table for two at 7pm please.\tINFORM\t3,3,3\n"
    "SYSTEM\tDone, your table is booked. Reference ABC123.\tBOOK\t\n"
    "USER\tPerfect, thank you so much!\tTHANK_YOU\t5,4,5\n"
    "SYSTEM\tEnjoy your meal!\tBYE\t\n"
    "USER\tOVERALL\t\t5,4,4\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_cli(  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *, unset: tuple[str, ...] = ("EVALKIT_",)
):
    """``invoke(*args)`` -> CompletedProcess: the real console entry run in this process, with
    the environment variables starting with ``unset`` removed."""
    from evalkit.cli import main

    for key in list(os.environ):
        if key.startswith(unset):
            monkeypatch.delenv(key)

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return invoke


def one_file_suite(folder: Path, scenarios_yaml: str) -> Path:
    """``folder`` holding one ``faq.yaml`` with ``scenarios_yaml`` (dedented); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faq.yaml").write_text(textwrap.dedent(scenarios_yaml))
    return folder
