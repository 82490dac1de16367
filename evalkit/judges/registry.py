"""The explicit judge registry: built-in names, ``module:Class`` references, entry points.

Nothing is imported until a judge is asked for, so listing or loading a scenario never
imports every plugin. :func:`check_judge_reference` checks a name without importing
anything that is not evalkit's own (``evalkit validate`` executes no code of the suite's).
"""

from __future__ import annotations

import difflib

from pydantic import ValidationError

from evalkit.core.errors import JudgeSpecError
from evalkit.core.plugins import code_origin, find_module
from evalkit.core.registry import PluginLoadError, Registry, UnknownName, import_ref
from evalkit.judges.base import Judge
from evalkit.scenarios.models import JudgeSpec

__all__ = ["JUDGES", "judge_names", "get_judge_class", "build_judge", "check_judge_reference", "judge_origin"]

# name -> "module:Class". Built-in judges are added here, by hand, one line each; plugins come
# from the "evalkit.judges" entry-point group.
JUDGES = Registry("judge", "evalkit.judges", {
    "tool_called": "evalkit.judges.tools:ToolCalled",
    "tool_not_called": "evalkit.judges.tools:ToolNotCalled",
    "tool_sequence": "evalkit.judges.tools:ToolSequence",
    "state": "evalkit.judges.state:StateJudge",
    "handoff": "evalkit.judges.conversation:HandoffJudge",
    "outcome": "evalkit.judges.conversation:OutcomeJudge",
    "stop_reason": "evalkit.judges.conversation:StopReasonJudge",
    "max_turns": "evalkit.judges.conversation:MaxTurnsJudge",
    "latency": "evalkit.judges.conversation:LatencyJudge",
    "said": "evalkit.judges.text:Said",
    "never_said": "evalkit.judges.text:NeverSaid",
    "no_pii_leak": "evalkit.judges.pii:NoPiiLeak",
    "channel_messages": "evalkit.judges.channel:ChannelMessages",
    "rubric": "evalkit.judges.rubric:RubricJudge",
    "goal_completion": "evalkit.judges.llm_builtin:GoalCompletion",
    "policy_adherence": "evalkit.judges.llm_builtin:PolicyAdherence",
    "tone": "evalkit.judges.llm_builtin:Tone",
    "handoff_appropriateness": "evalkit.judges.llm_builtin:HandoffAppropriateness",
    "llm_csat": "evalkit.judges.llm_builtin:LLMCsat",
    "pairwise": "evalkit.judges.pairwise:PairwiseJudge",
    "deepeval": "evalkit.judges.deepeval_metrics:DeepEvalJudge",
})


def judge_names() -> list[str]:
    """Built-in and plugin judge names."""
    return JUDGES.names()


def _checked(obj: object, ref: str) -> type:
    if not isinstance(obj, type) or not callable(getattr(obj, "evaluate", None)):
        raise JudgeSpecError(f"'{ref}' has no evaluate(ctx) method")
    return obj


def get_judge_class(name: str) -> type:
    """The judge class for a name, a plugin's name or a ``module:Class`` reference."""
    try:
        if name not in JUDGES.builtin and ":" in name:
            return _checked(import_ref(name), name)
        return _checked(JUDGES.load(name), JUDGES.ref(name) or name)
    except UnknownName as exc:
        raise JudgeSpecError(exc.message[:-1] + "; or use 'module:Class')") from None
    except PluginLoadError as exc:
        raise JudgeSpecError(f"judge '{name}': {exc}") from None


def _unknown_argument(cls: type, judge: str, name: str) -> str:
    """``unknown argument 'nme' for judge 'tool_called' (did you mean 'name'?)``, else the
    arguments the judge takes."""
    fields = getattr(cls, "model_fields", {})
    known = [info.alias or field for field, info in fields.items()]
    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if hint:
        return f"unknown argument '{name}' for judge '{judge}' (did you mean '{hint[0]}'?)"
    return f"unknown argument '{name}' for judge '{judge}'" + (f" (it takes: {', '.join(known)})" if known else "")


def build_judge(spec: JudgeSpec) -> Judge:
    """Instantiate a judge from its spec, validating its arguments."""
    cls = get_judge_class(spec.name)
    args = dict(spec.args)
    # A scalar written as `- outcome: escalated` arrives as {"value": ...}; map it to the
    # judge's main field.
    primary = getattr(cls, "primary", None)
    if "value" in args and primary and primary != "value":
        args[primary] = args.pop("value")
    try:
        return cls(**args)
    except ValidationError as exc:
        errors = exc.errors()
        # A typo ("nme: foo") also makes the real argument "missing": name the typo first.
        unknown = [e for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
        if unknown:
            name = str(unknown[0]["loc"][0])
            raise JudgeSpecError(_unknown_argument(cls, spec.name, name), field=f"{spec.name}.{name}") from None
        err = errors[0]
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{spec.name}.{loc}" if loc else spec.name
        raise JudgeSpecError(err["msg"], field=field) from None
    except TypeError as exc:
        raise JudgeSpecError(str(exc), field=spec.name) from None


def _is_dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def check_judge_reference(name: str) -> None:
    """Raise :class:`JudgeSpecError` when ``name`` cannot name a judge; imports nothing but
    evalkit's own modules (a ``module:Class`` is found on disk, an entry point by its name)."""
    if name in JUDGES.builtin:
        return
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not _is_dotted(module_name) or not _is_dotted(attr):
            raise JudgeSpecError(f"'{name}' is not a 'module:Class' reference")
        if find_module(module_name) is None:
            raise JudgeSpecError(
                f"no module named '{module_name}' for judge '{name}' (is it on PYTHONPATH?)"
            )
        return
    if name in JUDGES:  # a plugin's entry point, known by name (nothing imported)
        return
    known = ", ".join(judge_names()) or "(none)"
    raise JudgeSpecError(f"unknown judge '{name}' (known: {known}; or use 'module:Class')")


def judge_origin(name: str) -> str | None:
    """``module:Class from FILE`` for a judge that is not built in (None for built-ins);
    imports it, so only for code about to run."""
    if name in JUDGES.builtin:
        return None
    cls = get_judge_class(name)
    return code_origin(cls)
