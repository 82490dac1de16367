"""deepeval conversational goldens <-> evalkit persona scenarios.

- :func:`export_goldens` writes scenarios as a JSON list of conversational goldens
  (``scenario``, ``expected_outcome``, ``user_description``, ``context``, ``name``,
  ``additional_metadata``, and ``turns`` for scripted scenarios), loadable with
  ``deepeval.dataset.EvaluationDataset().add_goldens_from_json_file(path)``.
- :func:`import_goldens` reads such a file (JSON list or JSONL, snake_case or camelCase
  keys) and returns persona :class:`~evalkit.scenarios.models.Scenario` objects: the
  golden's scenario becomes the goal, its user description the LLM user's instructions,
  its expected outcome part of the goal. Facts exported by evalkit round-trip through
  ``additional_metadata.evalkit``.

Neither function imports deepeval: the file format is plain JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalkit.core.errors import ScenarioError
from evalkit.scenarios.models import Scenario

__all__ = ["scenario_to_golden", "golden_to_scenario", "export_goldens", "import_goldens"]


def scenario_to_golden(scenario: Scenario) -> dict[str, Any]:
    """One scenario as a deepeval conversational golden (a JSON-able dict)."""
    persona = scenario.user.persona
    meta: dict[str, Any] = {"id": scenario.id, "tags": list(scenario.tags)}
    golden: dict[str, Any] = {"name": scenario.id}
    if persona is not None:
        golden["scenario"] = scenario.description or persona.goal.description
        golden["expected_outcome"] = f"The customer's goal is achieved: {persona.goal.description}"
        traits = persona.traits
        desc = f"{persona.name or 'A customer'}; tone {traits.tone}; patience {traits.patience}"
        golden["user_description"] = desc + (f". {persona.instructions}" if persona.instructions else "")
        if persona.facts:
            golden["context"] = [f"{k}: {v}" for k, v in persona.facts.items()]
        meta["persona"] = persona.model_dump(mode="json", exclude_defaults=True)
    else:
        assert scenario.user.script is not None
        golden["scenario"] = scenario.description or scenario.title or scenario.id
        golden["turns"] = [{"role": "user", "content": step.say} for step in scenario.user.script]
    if scenario.customer:
        meta["customer"] = scenario.customer
    golden["additional_metadata"] = {"evalkit": meta}
    return golden


def export_goldens(scenarios: Iterable[Scenario], path: str | Path) -> int:
    """Write ``scenarios`` as a deepeval goldens JSON file; returns how many were written."""
    goldens = [scenario_to_golden(s) for s in scenarios]
    Path(path).write_text(json.dumps(goldens, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(goldens)


def _get(obj: dict[str, Any], snake: str) -> Any:
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)
    return obj.get(snake, obj.get(camel))


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.\-]+", "-", text.strip()).strip("-.")[:60]
    return slug or "golden"


def golden_to_scenario(golden: dict[str, Any], *, index: int = 0, source: str | None = None) -> Scenario:
    """One deepeval conversational golden as a persona scenario."""
    meta = (_get(golden, "additional_metadata") or {}).get("evalkit") or {}
    text = _get(golden, "scenario")
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError("a conversational golden needs a non-empty 'scenario'", file=source,
                            field=f"[{index}].scenario")
    persona = dict(meta.get("persona") or {})
    if not persona:
        goal = text.strip()
        expected = _get(golden, "expected_outcome")
        if expected:
            goal += f" (success: {expected})"
        persona = {"goal": {"description": goal}}
        user_desc = _get(golden, "user_description")
        if user_desc:
            persona["instructions"] = f"You are: {user_desc}"
        context = _get(golden, "context") or []
        facts: dict[str, Any] = {}
        loose: list[str] = []
        for item in context:
            key, sep, value = str(item).partition(":")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]{0,40}", key.strip()):
                facts[key.strip().replace(" ", "_")] = value.strip()
            else:
                loose.append(str(item))
        if facts:
            persona["facts"] = facts
        if loose:
            persona["instructions"] = (persona.get("instructions", "") + "\nYou know: " + "; ".join(loose)).strip()
        turns = _get(golden, "turns") or []
        first_user = next((t.get("content") for t in turns if isinstance(t, dict) and t.get("role") == "user"), None)
        if first_user:
            persona["goal"]["opening"] = first_user
    name = meta.get("id") or _get(golden, "name") or f"golden-{index + 1}-{_slug(text)}"
    data = {"id": _slug(str(name)), "title": str(_get(golden, "name") or ""), "description": text.strip(),
            "tags": list(meta.get("tags") or ["deepeval"]), "user": {"persona": persona}}
    if meta.get("customer"):
        data["customer"] = meta["customer"]
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioError(err["msg"], file=source, field=f"[{index}]." + ".".join(str(p) for p in err["loc"])) from None


def import_goldens(path: str | Path) -> list[Scenario]:
    """Persona scenarios from a deepeval goldens file (JSON list, or JSONL one per line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read goldens: {exc.strerror or exc}", file=str(p)) from None
    try:
        if p.suffix == ".jsonl":
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            items = data.get("goldens", []) if isinstance(data, dict) else data
    except ValueError as exc:
        raise ScenarioError(f"not valid JSON: {exc}", file=str(p)) from None
    if not isinstance(items, list):
        raise ScenarioError("expected a list of conversational goldens", file=str(p))
    scenarios = [golden_to_scenario(g, index=i, source=str(p)) for i, g in enumerate(items) if isinstance(g, dict)]
    seen: set[str] = set()
    for s in scenarios:
        if s.id in seen:
            raise ScenarioError(f"two goldens give the scenario id '{s.id}'", file=str(p), field="name")
        seen.add(s.id)
    return scenarios
