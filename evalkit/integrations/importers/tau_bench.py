"""``tau-bench``: τ-bench result files (a JSON list of trajectories with ground truth).

Each record: ``task_id``, ``trial``, ``reward`` (1.0 = the final database equals the one
the gold actions produce and the required outputs were said), ``info.task`` (``user_id``,
``instruction``, ``actions``: the gold tool calls as ``name`` + ``kwargs``, ``outputs``:
strings the agent must say) and ``traj``: the conversation as OpenAI chat messages.

One scenario per task (``tau-<domain>-<task_id>``), one recording per trial. The
scenario's expectations are τ-bench's rules as judges (see
:mod:`evalkit.judges.recorded`): ``db_actions`` (every gold call to a database-changing
tool made with matching arguments, no other database change) and, when the task has
outputs, ``outputs_said``. The scenario's user is a persona whose goal is the task's
instruction, so the scenario can also be replayed against a live agent with an LLM user.

``reward`` is kept as ``source_verdict`` (pass when ``reward >= 1 - 1e-6``, τ-bench's own
success test) and ``source_reward``. τ-bench's ``###STOP###`` user sentinel is removed
from the text (the recording's stop reason is ``recorded``). Tool results starting with
``Error:`` (τ-bench's convention) set the call's ``error``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from evalkit.core.transcript import Outcome, StopReason, Transcript
from evalkit.integrations.importers._common import Imported, ImportFormatError, Recording, load_json, safe_id
from evalkit.integrations.importers._openai import convert_messages
from evalkit.scenarios.models import Goal, JudgeSpec, Persona, Scenario, UserSpec

__all__ = ["FORMAT", "WRITE_TOOLS", "DATABASE_JUDGE", "OUTPUTS_JUDGE", "read", "is_successful"]

FORMAT = "tau-bench"

# Tools that change the database, per τ-bench domain. Everything else only reads
# (get_*, search_*, list_*, find_*, calculate, think, transfer_to_human_agents).
WRITE_TOOLS: dict[str, tuple[str, ...]] = {
    "airline": (
        "book_reservation",
        "cancel_reservation",
        "send_certificate",
        "update_reservation_baggages",
        "update_reservation_flights",
        "update_reservation_passengers",
    ),
    "retail": (
        "cancel_pending_order",
        "exchange_delivered_order_items",
        "modify_pending_order_address",
        "modify_pending_order_items",
        "modify_pending_order_payment",
        "modify_user_address",
        "return_delivered_order_items",
    ),
}

DATABASE_JUDGE = "evalkit.judges.recorded:DatabaseActions"
OUTPUTS_JUDGE = "evalkit.judges.recorded:OutputsSaid"

_STOP = re.compile(r"\s*###(STOP|TRANSFER|OUT-OF-SCOPE)###\s*")


def is_successful(reward: float) -> bool:
    """τ-bench's success test for a reward."""
    return (1 - 1e-6) <= reward <= (1 + 1e-6)


def _guess_domain(path: Path, records: list[Any]) -> str:
    for domain in WRITE_TOOLS:
        if domain in path.name.lower():
            return domain
    for rec in records[:3]:
        traj = rec.get("traj") if isinstance(rec, dict) else None
        if isinstance(traj, list) and traj and isinstance(traj[0], dict):
            head = str(traj[0].get("content") or "")[:200].lower()
            for domain in WRITE_TOOLS:
                if domain in head:
                    return domain
    return "tau"


def read(
    path: str | Path,
    *,
    domain: str | None = None,
    write_tools: list[str] | None = None,
    list_order: str = "strict",
) -> Imported:
    """Parse a τ-bench results file.

    ``domain`` (airline, retail; guessed from the file name or the system prompt) picks
    the write tools; ``write_tools`` overrides them. For an unknown domain with no
    ``write_tools``, every tool named in some task's gold actions counts as a write tool.
    """
    path = Path(path)
    name = str(path)
    data = load_json(path)
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    if not isinstance(data, list):
        raise ImportFormatError("expected a JSON list of trajectories", file=name, field="file")
    if not data:
        raise ImportFormatError("no trajectories found", file=name, field="file")
    domain = domain or _guess_domain(path, data)

    def err(i: int, field: str, problem: str) -> ImportFormatError:
        return ImportFormatError(problem, file=name, field=f"records[{i}].{field}")

    tasks: dict[str, dict[str, Any]] = {}
    recordings: list[Recording] = []
    seen: set[tuple[str, int]] = set()
    trial_counter: dict[str, int] = {}
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ImportFormatError("must be an object", file=name, field=f"records[{i}]")
        if "task_id" not in rec:
            raise err(i, "task_id", "missing")
        task_id = rec["task_id"]
        if not isinstance(task_id, int | str) or isinstance(task_id, bool):
            raise err(i, "task_id", "must be a number or a string")
        reward = rec.get("reward")
        if reward is not None and (not isinstance(reward, int | float) or isinstance(reward, bool)):
            raise err(i, "reward", "must be a number")
        info = rec.get("info")
        task = info.get("task") if isinstance(info, dict) else None
        if not isinstance(task, dict):
            raise err(i, "info.task", "missing (the task with its gold actions)")
        actions = task.get("actions", [])
        if not isinstance(actions, list):
            raise err(i, "info.task.actions", "must be a list")
        gold: list[dict[str, JsonValue]] = []
        for j, act in enumerate(actions):
            if not isinstance(act, dict) or not isinstance(act.get("name"), str):
                raise err(i, f"info.task.actions[{j}].name", "missing or not a string")
            kwargs = act.get("kwargs", act.get("arguments", {}))
            if not isinstance(kwargs, dict):
                raise err(i, f"info.task.actions[{j}].kwargs", "must be an object")
            gold.append({"name": act["name"], "arguments": kwargs})
        outputs = task.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise err(i, "info.task.outputs", "must be a list of strings")
        instruction = task.get("instruction") or ""
        if not isinstance(instruction, str):
            raise err(i, "info.task.instruction", "must be a string")
        user_id = task.get("user_id")

        sid = safe_id(f"tau-{domain}-{task_id}", f"tau-{domain}-record-{i}")
        if sid not in tasks:
            tasks[sid] = {
                "task_id": task_id,
                "gold": gold,
                "outputs": outputs,
                "instruction": instruction,
                "user_id": user_id,
            }
        trial = rec.get("trial")
        if trial is None:
            trial = trial_counter.get(sid, 0)
        if not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
            raise err(i, "trial", "must be a whole number >= 0")
        trial_counter[sid] = max(trial_counter.get(sid, 0), trial + 1)
        if (sid, trial) in seen:
            raise err(i, "trial", f"task {task_id} trial {trial} appears twice")
        seen.add((sid, trial))
        if "traj" not in rec:
            raise err(i, "traj", "missing (the conversation)")
        turns, _system = convert_messages(
            rec["traj"],
            file=name,
            line=None,
            field=f"records[{i}].traj",
            error_prefix="Error:",
            strip=lambda text: _STOP.sub(" ", text).strip(),
        )
        transcript = Transcript(scenario_id=sid, trial=trial, turns=turns, stop_reason=StopReason.recorded)
        if transcript.handoff is not None:
            transcript.outcome = Outcome.escalated
        metrics: dict[str, float | bool | str | None] = {"source_record": i}
        if reward is not None:
            metrics["source_verdict"] = is_successful(float(reward))
            metrics["source_reward"] = float(reward)
        reward_info = info.get("reward_info") if isinstance(info, dict) else None
        sub = reward_info.get("info") if isinstance(reward_info, dict) else None
        if isinstance(sub, dict):
            for key in ("r_actions", "r_outputs"):
                if isinstance(sub.get(key), int | float):
                    metrics[f"source_{key}"] = float(sub[key])
        recordings.append(
            Recording(
                transcript=transcript,
                metrics=metrics,
                title=f"τ-bench {domain} task {task_id}",
                tags=["tau-bench", domain],
            )
        )

    tools = list(write_tools) if write_tools else list(WRITE_TOOLS.get(domain, ()))
    if not tools:
        tools = sorted({str(g["name"]) for t in tasks.values() for g in t["gold"]})
    scenarios = [_scenario(sid, t, domain, tools, list_order) for sid, t in tasks.items()]
    return Imported(
        format=FORMAT,
        source=name,
        scenarios=scenarios,
        recordings=recordings,
        info={
            "domain": domain,
            "write_tools": list(tools),
            "tasks": len(tasks),
            "trajectories": len(recordings),
        },
    )


def _scenario(sid: str, task: dict[str, Any], domain: str, tools: list[str], list_order: str) -> Scenario:
    expect = [
        JudgeSpec(
            name=DATABASE_JUDGE,
            args={"gold": task["gold"], "write_tools": list(tools), "list_order": list_order},
        )
    ]
    if task["outputs"]:
        expect.append(JudgeSpec(name=OUTPUTS_JUDGE, args={"outputs": list(task["outputs"])}))
    instruction = task["instruction"] or f"τ-bench {domain} task {task['task_id']}"
    facts: dict[str, JsonValue] = {"user_id": task["user_id"]} if task["user_id"] else {}
    return Scenario(
        id=sid,
        title=f"τ-bench {domain} task {task['task_id']}",
        description=instruction,
        tags=["tau-bench", domain],
        customer=dict(facts) or None,
        user=UserSpec(
            persona=Persona(
                name=str(task["user_id"] or "customer"),
                goal=Goal(description=instruction),
                facts=facts,
                instructions=instruction,
            )
        ),
        expect=expect,
    )
