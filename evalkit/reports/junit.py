"""``junit.xml``: one test case per conversation and trial, in the JUnit XML CI systems read.

Layout (the common ``testsuites``/``testsuite``/``testcase`` schema of Ant/Jenkins/GitLab/
GitHub test reporters):

* one ``<testsuite>`` per variant, named ``<suite>/<variant>``, with ``tests``,
  ``failures``, ``errors``, ``skipped``, ``time`` and ``timestamp`` attributes and the run's
  manifest as ``<properties>``;
* one ``<testcase name="scenario_id[trial]" classname="<suite>.<variant>.<first tag>">``
  per conversation, with ``time`` in seconds;
* ``<failure>`` when a deterministic verdict failed (message: the failed verdicts' reasons;
  text: every failed verdict and the transcript around the failure), ``<error>`` when the
  agent errored (timed out, raised, returned junk), ``<skipped>`` when no deterministic
  verdict ran; ``<system-out>`` carries the whole transcript for failures and errors.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from evalkit.core.results import ConversationResult, RunResult
from evalkit.reports.excerpt import failure_text, transcript_excerpt

__all__ = ["junit_xml", "write_junit", "JUNIT_FILE"]

JUNIT_FILE = "junit.xml"

# Characters XML 1.0 cannot carry at all; ElementTree would write them and break parsers.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _suite_name(run: RunResult) -> str:
    if run.manifest.suites:
        return Path(run.manifest.suites[0]).name or "evalkit"
    return "evalkit"


def _dotted(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", part).strip("_") or "_"


def _classname(suite: str, c: ConversationResult) -> str:
    parts = [suite, c.transcript.variant]
    if c.tags:
        parts.append(c.tags[0])
    return ".".join(_dotted(p) for p in parts)


def _seconds(c: ConversationResult) -> float:
    t = c.transcript
    if t.duration_ms is not None:
        return t.duration_ms / 1000
    return sum(a.latency_ms or 0.0 for a in t.agent_turns) / 1000


def _message(text: str, limit: int = 500) -> str:
    one = " ".join(text.split())
    return _clean(one if len(one) <= limit else one[: limit - 1] + "…")


def _testcase(suite: str, c: ConversationResult) -> tuple[ET.Element, str]:
    t = c.transcript
    case = ET.Element(
        "testcase",
        {
            "name": _clean(f"{t.scenario_id}[{t.trial}]"),
            "classname": _clean(_classname(suite, c)),
            "time": f"{_seconds(c):.3f}",
        },
    )
    status = "passed"
    if t.error is not None:
        status = "error"
        el = ET.SubElement(case, "error", {"message": _message(t.error), "type": f"evalkit.{t.stop_reason}"})
        el.text = _clean(failure_text(c))
    elif c.passed is False:
        status = "failure"
        failed = c.failed_verdicts
        message = "; ".join(f"{v.spec or v.judge}: {v.error or v.reason}" for v in failed) or "failed"
        el = ET.SubElement(case, "failure", {"message": _message(message), "type": "evalkit.verdict"})
        el.text = _clean(failure_text(c))
    elif c.passed is None:
        status = "skipped"
        ET.SubElement(case, "skipped", {"message": "no deterministic verdict ran"})
    if status in ("failure", "error"):
        full = transcript_excerpt(t, None, max_exchanges=200)
        # The whole transcript, when the failure text only showed part of it.
        if full not in (el.text or ""):
            out = ET.SubElement(case, "system-out")
            out.text = _clean(full)
    return case, status


def junit_xml(run: RunResult) -> bytes:
    """The run as JUnit XML (UTF-8 bytes with an XML declaration)."""
    suite = _suite_name(run)
    m = run.manifest
    root = ET.Element("testsuites", {"name": _clean(f"evalkit {m.run_id}")})
    by_variant: dict[str, list[ConversationResult]] = {}
    for c in sorted(run.conversations, key=lambda c: (c.transcript.variant, c.transcript.scenario_id, c.transcript.trial)):
        by_variant.setdefault(c.transcript.variant, []).append(c)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for variant, convs in by_variant.items():
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        ts = ET.SubElement(root, "testsuite", {"name": _clean(f"{suite}/{variant}")})
        props = ET.SubElement(ts, "properties")
        for name, value in (
            ("run_id", m.run_id),
            ("variant", variant),
            ("agent", m.variants.get(variant) or m.agent or ""),
            ("evalkit_version", m.evalkit_version),
            ("git_sha", m.git_sha or ""),
            ("seed", str(m.seed)),
            ("trials", str(m.trials)),
        ):
            ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
        time = 0.0
        for c in convs:
            case, status = _testcase(suite, c)
            ts.append(case)
            counts["tests"] += 1
            if status == "failure":
                counts["failures"] += 1
            elif status == "error":
                counts["errors"] += 1
            elif status == "skipped":
                counts["skipped"] += 1
            time += _seconds(c)
        for k, v in counts.items():
            ts.set(k, str(v))
            totals[k] += v
        ts.set("time", f"{time:.3f}")
        if m.started_at:
            ts.set("timestamp", _clean(m.started_at))
        ts.set("hostname", _clean(socket.gethostname() or "localhost"))
        total_time += time
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run: RunResult, path: str | Path) -> Path:
    """Write ``junit.xml`` atomically; returns the path."""
    from evalkit.core.files import atomic_write

    data = junit_xml(run)
    path = Path(path)
    atomic_write(path, lambda fh: fh.write(data))
    return path
