"""``evalkit schema``: the JSON Schema of scenario files (or suite.yaml), for editors.

Generated from the pydantic models, with the expectation syntax (``- judge: {args}``,
``- judge``, ``- judge: scalar``) spelled out per registered judge, so an editor with a
YAML language server validates and autocompletes judge names and their arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic.json_schema import models_json_schema

__all__ = ["command", "scenario_schema"]

_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"


def _judges() -> dict[str, type]:
    from evalkit.core.errors import EvalkitError
    from evalkit.judges.registry import get_judge_class, judge_names

    out: dict[str, type] = {}
    for name in judge_names():
        try:
            out[name] = get_judge_class(name)
        except EvalkitError:
            continue  # a broken plugin must not break the schema of everything else
    return out


def _judge_spec_schema(judges: dict[str, type], defs: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, cls in judges.items():
        ref = refs.get(name)
        options: list[dict[str, Any]] = [{"type": "null"}]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        if ref is not None:
            options.insert(0, {"$ref": ref})
            primary = getattr(cls, "primary", None)
            body = defs.get(ref.rsplit("/", 1)[-1], {})
            if primary and primary in body.get("properties", {}):
                options.append(body["properties"][primary])
        props[name] = {"anyOf": options, "description": " ".join(doc.split())}
    names = sorted(judges)
    return {
        "description": "An expectation: `- judge_name: {args}`, `- judge_name` (no arguments), "
        "`- judge_name: value` (its main argument), or a user judge as `module:Class`. "
        f"Judges: {', '.join(names)}.",
        "anyOf": [
            {"type": "string", "anyOf": [{"enum": names}, {"pattern": _REF_PATTERN}]},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": props,
                "patternProperties": {_REF_PATTERN: {}},
                "additionalProperties": False,
            },
        ],
    }


def scenario_schema(kind: str = "scenario") -> dict[str, Any]:
    """The JSON Schema of a scenario file (``kind="scenario"``) or of ``suite.yaml``."""
    from evalkit.scenarios.models import Scenario, SuiteConfig

    judges = _judges()
    models: list[Any] = [(Scenario, "validation"), (SuiteConfig, "validation")]
    models += [(cls, "validation") for cls in judges.values() if hasattr(cls, "model_json_schema")]
    keys, doc = models_json_schema(models, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = doc.get("$defs", {})
    refs = {
        name: keys[(cls, "validation")]["$ref"] for name, cls in judges.items() if (cls, "validation") in keys
    }
    defs["JudgeSpec"] = _judge_spec_schema(judges, defs, refs)
    # A script step may be written as a bare string (`- Where is my order?`).
    defs["ScriptStep"] = {
        "anyOf": [{"type": "string", "description": "Shorthand for {say: ...}."}, defs["ScriptStep"]]
    }
    scenario_ref = keys[(Scenario, "validation")]["$ref"]
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if kind == "suite":
        schema.update({"title": "evalkit suite.yaml", "$ref": keys[(SuiteConfig, "validation")]["$ref"]})
    else:
        many = {"type": "array", "items": {"$ref": scenario_ref}, "minItems": 1}
        schema.update(
            {
                "title": "evalkit scenario file",
                "description": "One scenario, a list of scenarios, or a mapping with a `scenarios:` list.",
                "anyOf": [
                    {"$ref": scenario_ref},
                    many,
                    {
                        "type": "object",
                        "properties": {"scenarios": many},
                        "required": ["scenarios"],
                        "additionalProperties": False,
                    },
                ],
            }
        )
    schema["$defs"] = defs
    return schema


@click.command("schema")
@click.option("--suite", "suite", is_flag=True, help="The schema of suite.yaml instead of scenario files.")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file, not stdout."
)
def command(suite: bool, out: Path | None) -> int:
    """Print the JSON Schema of scenario files (generated from the models).

    \b
      evalkit schema > scenario.schema.json
    and point your editor's YAML language server at it, e.g. first line of a file:
      # yaml-language-server: $schema=./scenario.schema.json
    """
    text = json.dumps(scenario_schema("suite" if suite else "scenario"), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        from evalkit.core.files import atomic_write

        atomic_write(out, lambda fh: fh.write(text.encode()))
    return 0
