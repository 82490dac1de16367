"""Importers: recorded conversations (logs, benchmarks, datasets) -> an evalkit run folder.

One module per format, each with ``read(path, **options) -> Imported`` (:data:`FORMATS`; plugins
add formats through the ``evalkit.importers`` entry-point group, naming a module or an object
with ``read``):

* ``openai-messages`` (:mod:`evalkit.integrations.importers.openai_messages`): JSONL of OpenAI chat messages;
* ``tau-bench`` (:mod:`evalkit.integrations.importers.tau_bench`): τ-bench trajectories with gold actions;
* ``uss`` (:mod:`evalkit.integrations.importers.uss`): the USS corpus text format with human ratings;
* ``deepeval`` (:mod:`evalkit.integrations.importers.deepeval`): conversational test cases / goldens JSON.

:func:`write_imported` writes the run folder: ``scenarios.yaml`` (the scenarios with
their expectations, loadable with ``evalkit validate`` / ``load_suite``), ``manifest.json``,
``conversations.jsonl`` (every transcript with ``stop_reason: recorded`` and the source's
own judgement in ``metrics``), and the derived tables. ``evalkit score DIR`` then runs
the judges.
"""

from __future__ import annotations

import platform
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from evalkit.core._clock import now_iso, now_stamp
from evalkit.core.errors import ConfigError
from evalkit.core.registry import PluginLoadError, Registry, UnknownName
from evalkit.core.results import ConversationResult, RunManifest, RunResult
from evalkit.integrations.importers._common import Imported, ImportFormatError, Recording
from evalkit.scenarios.models import JudgeSpec, Scenario

if TYPE_CHECKING:
    from evalkit.run.runfolder import RunFolder

__all__ = [
    "FORMATS",
    "Imported",
    "ImportFormatError",
    "Recording",
    "read_recordings",
    "scenarios_yaml",
    "write_imported",
]

# format name -> module (or object) with read(path, **options)
FORMATS = Registry("format", "evalkit.importers", {
    "openai-messages": "evalkit.integrations.importers.openai_messages",
    "tau-bench": "evalkit.integrations.importers.tau_bench",
    "uss": "evalkit.integrations.importers.uss",
    "deepeval": "evalkit.integrations.importers.deepeval",
})


def read_recordings(fmt: str, path: str | Path, **options: Any) -> Imported:
    """Parse ``path`` in format ``fmt``; :class:`ImportFormatError` on malformed input."""
    try:
        reader = FORMATS.load(fmt)
    except UnknownName as exc:
        raise ConfigError(exc.message, field="FORMAT") from None
    except PluginLoadError as exc:
        raise ConfigError(str(exc), field="FORMAT") from None
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError("no such file", file=str(path))
    return reader.read(path, **options)  # type: ignore[no-any-return]


def _spec_yaml(spec: JudgeSpec) -> Any:
    return {spec.name: dict(spec.args)} if spec.args else spec.name


def scenarios_yaml(scenarios: list[Scenario]) -> str:
    """The scenario file text: ``scenarios:`` with expectations written the usual way."""
    items = []
    for s in scenarios:
        data = s.model_dump(mode="json", exclude_defaults=True)
        if s.expect:
            data["expect"] = [_spec_yaml(e) for e in s.expect]
        items.append(data)
    header = "# Written by `evalkit import`: one scenario per recorded task, with its expectations.\n"
    return header + yaml.safe_dump({"scenarios": items}, sort_keys=False, allow_unicode=True, width=100)



def write_imported(
    imported: Imported, out: str | Path, *, command: str | None = None, force: bool = False
) -> RunResult:
    """Write ``imported`` as a run folder in ``out`` (refuses to overwrite a run unless ``force``)."""
    from evalkit.quality.calibration import LABELS_FILE
    from evalkit.run.runfiles import SCENARIOS_FILE
    from evalkit.run.runfolder import Existing, RunFolder

    folder = RunFolder(out, command=command).claim(
        Existing.overwrite if force else Existing.new, hint="use --force to replace it"
    )
    with folder:
        # Files of a replaced run that this import would not overwrite.
        folder.remove(SCENARIOS_FILE, "agreement.json", LABELS_FILE)
        folder.write_file(SCENARIOS_FILE, scenarios_yaml(imported.scenarios).encode("utf-8"))
        return _write_run(folder, imported, command)


def _write_run(folder: RunFolder, imported: Imported, command: str | None) -> RunResult:
    from evalkit import __version__
    from evalkit.judges.csat import csat_proxy
    from evalkit.quality.calibration import LABELS_FILE, HumanLabel, labels_csv
    from evalkit.reports.outputs import standard_outputs
    from evalkit.run.runfiles import SCENARIOS_FILE
    from evalkit.scenarios.fingerprint import suite_hash

    out = folder.path
    run_id = "import-" + now_stamp() + "-" + secrets.token_hex(2)
    source = f"recorded:{imported.format}"
    trials = max((r.transcript.trial for r in imported.recordings), default=0) + 1
    manifest = RunManifest(
        run_id=run_id,
        evalkit_version=__version__,
        command=command,
        suites=[str(out / SCENARIOS_FILE)],
        suite_hash=suite_hash(imported.scenarios),
        agent=source,
        variants={"default": source},
        simulator="recorded",
        trials=trials,
        started_at=now_iso(),
        finished_at=now_iso(),
        status="complete",
        n_planned=len(imported.recordings),
        python=platform.python_version(),
        platform=platform.platform(terse=True),
        extra={
            "import": {"format": imported.format, "source": imported.source, **imported.info},
            "scored": False,
        },
    )
    scenarios = {s.id: s for s in imported.scenarios}
    results = []
    for rec in imported.recordings:
        scenario = scenarios.get(rec.transcript.scenario_id)
        results.append(
            ConversationResult(
                run_id=run_id,
                title=rec.title or (scenario.title if scenario else ""),
                tags=list(rec.tags or (scenario.tags if scenario else [])),
                transcript=rec.transcript,
                metrics={"csat_proxy": csat_proxy(rec.transcript), **rec.metrics},
            )
        )
    # The whole journal at once (atomically): an import is not a run that can be cut short.
    results = folder.write_journal(manifest, results)
    labels = [
        HumanLabel(r.transcript.scenario_id, r.transcript.trial, judge, value, r.transcript.variant)
        for r in imported.recordings
        for judge, value in r.labels.items()
    ]
    if labels:
        folder.write_file(LABELS_FILE, labels_csv(labels).encode("utf-8"))
    return folder.finish(RunResult(manifest=manifest, conversations=results), standard_outputs())
