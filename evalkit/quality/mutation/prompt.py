"""``evalkit mutate --prompt``: which instructions of an LLM agent's system prompt does the suite depend on?

The prompt of an ``openai-chat:MODEL?system=FILE`` agent is split into instructions (list
items and sentences); each mutant drops exactly one. Every mutant becomes a variant of ONE
run (the clean prompt is the variant ``clean``), played by the ordinary :class:`Runner`: model
calls are I/O, so the runner's own concurrency does the parallel work and no worker
processes are needed. The user's prompt file is only read; the mutated prompts are
written to ``OUT/prompts/`` and the run to ``OUT/run/``.

An instruction is *depended on* when a scenario that passes with the full prompt fails
without it; the others are the instructions no scenario depends on. With a real model,
conversations vary between calls: use trials (and a seed the endpoint honours) before
trusting a single survivor.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, quote, urlencode

from pydantic import Field

from evalkit.core.errors import ConfigError
from evalkit.core.strict import StrictModel

__all__ = [
    "PROMPT_JSON",
    "Instruction",
    "PromptMutationReport",
    "PromptConfig",
    "split_instructions",
    "run_prompt_mutation",
    "render_prompt_text",
    "write_prompt_report",
]

PROMPT_JSON = "prompt-mutation.json"
CLEAN = "clean"
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def split_instructions(text: str) -> list[str]:
    """The prompt's instructions, in order: each list item (with its continuation lines)
    is one; other paragraphs are split into sentences. Headings and blank lines are kept
    out; dropping an instruction removes exactly its text."""
    units: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            para = " ".join(x.strip() for x in block)
            if _ITEM.match(block[0]):
                units.append(para)
            else:
                units.extend(s for s in _SENTENCE_END.split(para) if s.strip())
            block.clear()

    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            flush()
        elif _ITEM.match(line):
            flush()
            block.append(line)
        else:
            block.append(line)
    flush()
    return [u.strip() for u in units if u.strip()]


def _without(text: str, units: list[str], drop: int) -> str:
    """The prompt rebuilt from its lines with instruction ``drop`` left out."""
    kept = [u for i, u in enumerate(units) if i != drop]
    return "\n".join(kept) + "\n"


class Instruction(StrictModel):
    """One instruction and whether the suite depends on it."""

    index: int
    text: str
    depended_on: bool
    failed: list[str] = Field(default_factory=list)  # scenarios that failed without it
    judges: list[str] = Field(default_factory=list)


class PromptMutationReport(StrictModel):
    """``prompt-mutation.json``."""

    schema_version: int = 1
    agent: str
    prompt_file: str
    suites: list[str] = Field(default_factory=list)
    run_dir: str
    clean_failing: list[str] = Field(default_factory=list)
    instructions: list[Instruction] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def unused(self) -> list[Instruction]:
        """Instructions no scenario depends on."""
        return [i for i in self.instructions if not i.depended_on]


@dataclass
class PromptConfig:
    """One prompt mutation run."""

    suite: list[str | Path] | list[Path]
    agent: str | None = None
    seed: int = 0
    out: str | Path = "runs/mutate-prompt"
    tags: list[str] | None = None
    concurrency: int = 8
    progress: IO[str] | None = None


def _prompt_of(spec: str) -> tuple[str, dict[str, str], Path]:
    scheme, _, rest = spec.partition(":")
    if scheme != "openai-chat":
        raise ConfigError(
            "--prompt mutates the system prompt of an openai-chat:MODEL?system=FILE agent", field="--agent"
        )
    model, _, query = rest.partition("?")
    args = dict(parse_qsl(query, keep_blank_values=True))
    if not args.get("system"):
        raise ConfigError("the agent has no system=FILE prompt to mutate", field="--agent")
    path = Path(args["system"])
    if not path.is_file():
        raise ConfigError("no such prompt file", field=f"--agent system={path}")
    return model, args, path


def _spec(model: str, args: dict[str, str], system: Path) -> str:
    return f"openai-chat:{model}?" + urlencode({**args, "system": str(system)}, quote_via=quote, safe="/:")


def run_prompt_mutation(config: PromptConfig) -> PromptMutationReport:
    """Drop one instruction at a time and play the suite against each prompt."""
    from evalkit.run.runner import RunConfig, Runner
    from evalkit.scenarios.loader import load_suite

    started = time.monotonic()
    suite = load_suite(list(config.suite), tags=config.tags or None)
    spec = config.agent or (suite.config.agent or "")
    model, args, path = _prompt_of(spec)
    text = path.read_text(encoding="utf-8")
    units = split_instructions(text)
    if not units:
        raise ConfigError("the prompt has no instruction to drop", field=str(path))
    # OUT/prompts holds the mutated prompts (the manifest names them), OUT/run the run folder
    # (a run folder holds only what evalkit's run writes).
    prompts = Path(config.out) / "prompts"
    run_dir = Path(config.out) / "run"
    prompts.mkdir(parents=True, exist_ok=True)
    variants = {CLEAN: spec}
    for i in range(len(units)):
        mutant = (prompts / f"drop-{i + 1}.md").resolve()
        mutant.write_text(_without(text, units, i), encoding="utf-8")
        variants[f"drop-{i + 1}"] = _spec(model, args, mutant)
    if config.progress is not None:
        config.progress.write(f"{len(units)} instructions; playing {len(variants)} prompts ...\n")
    run = Runner(
        RunConfig(
            suite=suite,
            variants=variants,
            out=run_dir,
            seed=config.seed,
            concurrency=config.concurrency,
            progress=False,
            handle_signals=True,
        )
    ).run_sync()
    by_variant: dict[str, dict[str, Any]] = {}
    for c in run.conversations:
        by_variant.setdefault(c.transcript.variant, {})[c.transcript.scenario_id] = c
    clean = by_variant.get(CLEAN, {})
    passing = {sid for sid, c in clean.items() if c.passed is True}
    instructions = []
    for i, unit in enumerate(units):
        convs = by_variant.get(f"drop-{i + 1}", {})
        failed = sorted(sid for sid in passing if sid in convs and convs[sid].passed is not True)
        judges = sorted(
            {v.judge for sid in failed for v in convs[sid].verdicts if v.passed is False}
            | ({"agent error"} if any(convs[sid].transcript.error for sid in failed) else set())
        )
        instructions.append(
            Instruction(index=i + 1, text=unit, depended_on=bool(failed), failed=failed, judges=judges)
        )
    return PromptMutationReport(
        agent=spec,
        prompt_file=str(path),
        suites=[str(p) for p in config.suite],
        run_dir=str(run_dir),
        clean_failing=sorted(set(clean) - passing),
        instructions=instructions,
        duration_s=round(time.monotonic() - started, 2),
    )


def render_prompt_text(report: PromptMutationReport) -> str:
    """The terminal summary."""
    used = [i for i in report.instructions if i.depended_on]
    lines = [
        f"{len(used)}/{len(report.instructions)} instructions of {report.prompt_file} are depended on by a scenario",
    ]
    for i in report.instructions:
        mark = "used  " if i.depended_on else "UNUSED"
        who = (
            f"  <- {', '.join(i.failed[:3])}" + (f" (+{len(i.failed) - 3})" if len(i.failed) > 3 else "")
            if i.failed
            else ""
        )
        short = i.text if len(i.text) <= 90 else i.text[:89] + "…"
        lines.append(f"  {mark} {i.index:>2}. {short}{who}")
    if report.clean_failing:
        lines.append(f"the full prompt fails (cannot tell anything): {', '.join(report.clean_failing)}")
    lines.append(f"run folder {report.run_dir}/ ({PROMPT_JSON}, report.html)")
    return "\n".join(lines)


def write_prompt_report(report: PromptMutationReport, out: str | Path) -> None:
    """Write ``prompt-mutation.json`` into the run folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / PROMPT_JSON).write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
