"""Hostile agents never take the run down (issue #13, items 1-5).

Each test reproduces an attack that used to crash, hang or blow up a run, and checks the
promise that now holds (docs/robustness.md, "Hostile agents").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _core_helpers import write
from _http_helpers import LocalServer
from _robust_helpers import cli

from evalkit.core.transcript import StopReason
from evalkit.run.runfiles import load_run
from evalkit.run.runner import RunConfig, Runner


def suite_of(folder: Path, ids: list[str], steps: int = 2, expect: str = "", extra: str = "") -> Path:
    lines = ["scenarios:"]
    for sid in ids:
        lines.append(f"  - id: {sid}\n    user:\n      script:")
        lines += [f"        - say: message {k}" for k in range(steps)]
        if expect:
            lines.append(f"    expect:\n      - {expect}")
    write(folder / "scenarios.yaml", "\n".join(lines) + "\n")
    if extra:
        write(folder / "suite.yaml", extra)
    return folder


def journal_lines(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]


# -- 1. lone surrogates -------------------------------------------------------------------


def test_lone_surrogate_from_a_python_agent_is_replaced_and_noted(tmp_path: Path):
    suite = suite_of(tmp_path / "suite", ["s1", "s2"])
    out = tmp_path / "run"
    r = cli("run", str(suite), "--agent", "_hostile_agents:Surrogate", "--out", str(out), "--no-progress")
    assert r.code == 0, r.err
    run = load_run(out)
    assert run.manifest.status == "complete"
    assert len(run.conversations) == 2
    for conv in run.conversations:
        turn = conv.transcript.agent_turns[0]
        assert turn.content == "bad \ufffd here, fine \U0001f600 there"
        assert turn.metadata == {"k\ufffd": ["v\ufffd"]}
        assert turn.notes and "replaced by U+FFFD" in turn.notes[0]
        assert conv.transcript.end_state == {"note": "state \ufffd"}
    (out / "conversations.jsonl").read_bytes().decode("utf-8")  # valid UTF-8 throughout


def test_resume_reads_a_journal_line_with_a_lone_surrogate_escape(tmp_path: Path):
    """A line holding a ``\\ud800`` escape (hand-edited, or written by another tool) never
    makes --resume (or report) fail: the text is cleaned as it is read."""
    suite = suite_of(tmp_path / "suite", ["s1", "s2", "s3"])
    out = tmp_path / "run"
    r = cli("run", str(suite), "--agent", "evalkit.testing.agents:EchoAgent", "--out", str(out), "--no-progress")
    assert r.code == 0, r.err
    lines = (out / "conversations.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace("You said: message 0", "You said: \\ud800 message 0", 1)
    assert "\\ud800" in lines[0]
    (out / "conversations.jsonl").write_text("\n".join(lines[:2]) + "\n")  # s3 still to do
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(manifest))
    r = cli("run", "--resume", "--out", str(out), "--no-progress")
    assert r.code == 0, r.err
    run = load_run(out)
    assert len(run.conversations) == 3
    assert "\ufffd message 0" in run.conversations[0].transcript.agent_turns[0].content


# -- 2. BaseException from agent code ---------------------------------------------------

RAISED = ["system_exit", "base_exception", "generator_exit", "keyboard_interrupt", "bad_str"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_agent_base_exceptions_are_recorded_not_fatal(tmp_path: Path, mode: str):
    ids = [f"{what}-1" for what in RAISED] + (["cancelled-1"] if mode == "async" else []) + ["ok-1", "ok-2"]
    suite = suite_of(tmp_path / "suite", ids)
    out = tmp_path / "run"
    r = cli(
        "run", str(suite), "--agent", f"_hostile_agents:raiser?mode={mode}", "--out", str(out),
        "--no-progress", "--concurrency", "1",
    )
    assert r.code == 0, (r.out, r.err)
    run = load_run(out)
    assert run.manifest.status == "complete"
    got = {c.transcript.scenario_id: c.transcript for c in run.conversations}
    assert set(got) == set(ids)  # every conversation recorded, none lost
    expected = {
        "system_exit-1": "agent raised SystemExit: 0",
        "base_exception-1": "agent raised _Boom: boom",
        "generator_exit-1": "agent raised GeneratorExit",
        "keyboard_interrupt-1": "agent raised KeyboardInterrupt",
        "bad_str-1": "agent raised _BadStr: <str() raised RuntimeError>",
        "cancelled-1": "agent raised CancelledError",
    }
    for sid, t in got.items():
        if sid.startswith("ok"):
            assert t.error is None
            continue
        assert t.stop_reason == StopReason.agent_error, (sid, t.error)
        assert t.error == f"turn 1: {expected[sid]}", (sid, t.error)


# -- 3. an async agent blocking the event loop ---------------------------------------------


def test_async_agent_blocking_the_loop_is_timed_out_by_the_clock(tmp_path: Path):
    suite = suite_of(tmp_path / "suite", ["block-1", "polite-1"])
    out = tmp_path / "run"
    run = Runner(
        RunConfig(suite=[suite], agent="_hostile_agents:Blocker?block_s=1.2", out=out, turn_timeout_s=0.5,
                  concurrency=2, progress=False, handle_signals=False)
    ).run_sync()
    got = {c.transcript.scenario_id: c.transcript for c in run.conversations}
    blocked = got["block-1"]
    assert blocked.stop_reason == StopReason.timeout
    assert len(blocked.agent_turns) == 1  # the first blocking turn ends the conversation
    assert blocked.error.startswith("turn 1: no reply within 0.5s (turn timeout): its async respond() blocked the event loop for 1.")
    assert blocked.agent_turns[0].latency_ms >= 1200
    polite = got["polite-1"]
    # The polite agent may have been caught in the stall: then it is said, never blamed.
    if polite.error is not None:
        assert "meanwhile the event loop was blocked for 1." in polite.error
        assert "block-1" in polite.error


# -- 5. unbounded replies (Python agents) ----------------------------------------------------


def test_python_agent_reply_over_the_cap_is_an_agent_error(tmp_path: Path):
    suite = suite_of(tmp_path / "suite", ["s1"], extra="max_reply_bytes: 100000\n")
    out = tmp_path / "run"
    r = cli("run", str(suite), "--agent", "_hostile_agents:Huge?size=200001", "--out", str(out), "--no-progress")
    assert r.code == 0, r.err
    t = load_run(out).conversations[0].transcript
    assert t.stop_reason == StopReason.agent_error
    assert "larger than the limit of 100000" in t.error
    assert (out / "conversations.jsonl").stat().st_size < 20_000  # nothing of it kept
    # The flag overrides the suite.
    out2 = tmp_path / "run2"
    r = cli("run", str(suite), "--agent", "_hostile_agents:Huge?size=200001", "--out", str(out2),
            "--no-progress", "--max-reply-bytes", "300000")
    assert r.code == 0, r.err
    assert load_run(out2).conversations[0].transcript.error is None


# -- 1 and 5 over HTTP: surrogates, runaway bodies, token floods -----------------------------


class HostileHttpAgent(LocalServer):
    """The evalkit HTTP protocol, answering by the session's scenario id (``<kind>-N``)."""

    TOTAL = 20_000_000  # bytes a runaway reply sends at most (the test never hangs)

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        from _http_helpers import send_json

        self.sent: dict[str, int] = {}

        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    send_json(self, 200, {"status": "ok"})
                elif self.path.endswith("/state") and "-surrogate-" in self.path:
                    send_json(self, 200, b'{"end_state": {"who": "x\\udfff"}}')
                else:
                    send_json(self, 404, {"error": "none"})

            def do_DELETE(self) -> None:
                send_json(self, 204, b"")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.path.split("/")[3].split("-")[2]  # session "r-x-KIND-0"
                if kind == "surrogate":
                    send_json(self, 200, b'{"content": "a\\ud800b", "tool_calls": [{"name": "t", "arguments": {"q": "\\udc00"}}]}')
                    return
                if kind == "ssesurrogate":
                    self._start("text/event-stream")
                    self.wfile.write(b'event: token\ndata: {"text": "x\\ud800"}\n\n')
                    return
                self._start("text/event-stream" if kind in ("flood", "longline") else "application/json",
                            500 if kind == "errorflood" else 200)
                if kind == "flood":
                    piece = b'event: token\ndata: {"text": "' + b"t" * 1000 + b'"}\n\n'
                elif kind == "longline":
                    self.wfile.write(b"data: ")
                    piece = b"y" * 65536
                else:  # big JSON body, or an error text that never ends
                    self.wfile.write(b'{"content": "')
                    piece = b"z" * 65536
                sent = 0
                try:
                    while sent < agent.TOTAL:
                        self.wfile.write(piece)
                        sent += len(piece)
                except OSError:
                    pass
                agent.sent[kind] = sent

            def _start(self, ctype: str, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.end_headers()

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def test_http_agent_surrogates_and_runaway_bodies(tmp_path: Path):
    kinds = ["surrogate", "ssesurrogate", "big", "flood", "longline", "errorflood"]
    suite = suite_of(tmp_path / "suite", [f"x-{k}" for k in kinds], steps=1)
    out = tmp_path / "run"
    with HostileHttpAgent() as server:
        started = time.monotonic()
        run = Runner(
            RunConfig(suite=[suite], agent=server.url, out=out, max_reply_bytes=1_000_000, turn_timeout_s=20,
                      progress=False, handle_signals=False, run_id="r")
        ).run_sync()
        wall = time.monotonic() - started
    got = {c.transcript.scenario_id.split("-")[1]: c.transcript for c in run.conversations}
    assert run.manifest.status == "complete" and len(got) == len(kinds)
    surrogate = got["surrogate"]
    assert surrogate.error is None
    turn = surrogate.agent_turns[0]
    assert turn.content == "a\ufffdb" and turn.tool_calls[0].arguments == {"q": "\ufffd"}
    assert turn.notes and surrogate.end_state == {"who": "x\ufffd"}
    assert got["ssesurrogate"].agent_turns[0].content == "x\ufffd"
    for kind in ("big", "flood", "longline"):
        t = got[kind]
        assert t.stop_reason == StopReason.agent_error, (kind, t.error)
        assert "larger than the limit of 1000000 bytes (max_reply_bytes); stopped reading it" in t.error
    assert got["errorflood"].error.startswith("turn 1: agent raised AgentHTTPError: HTTP 500: {\"content\": \"zzz")
    assert wall < 15, wall  # nobody read 20 MB bodies to the end
    assert (out / "conversations.jsonl").stat().st_size < 200_000


# -- 4. catastrophic regexes ------------------------------------------------------------------


def test_catastrophic_regex_against_an_echoing_agent_finishes(tmp_path: Path):
    """``(a+)+$`` on 40 a's and a '!' is 2^40 steps for a backtracking engine: the run used
    to hang past every timeout and ignore SIGTERM. RE2 matches it in linear time."""
    import subprocess
    import sys

    suite = tmp_path / "suite"
    write(
        suite / "s.yaml",
        """
        id: bomb
        user:
          script:
            - say: "%s!"
        expect:
          - said: {regex: '(a+)+$'}
          - never_said: {regex: '(a|aa)+$'}
        """ % ("a" * 40),
    )
    out = tmp_path / "run"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(suite), "--agent", "_hostile_agents:Echo", "--out", str(out),
         "--no-progress", "--conversation-timeout", "5"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    verdicts = load_run(out).conversations[0].verdicts
    assert [v.passed for v in verdicts] == [False, True]  # the text ends with '!'


def test_patterns_re2_cannot_compile_are_one_line_validation_errors(tmp_path: Path):
    suite = tmp_path / "suite"
    write(
        suite / "s.yaml",
        """
        id: s
        user:
          script:
            - say: hi
        expect:
          - said: {regex: '(?<=order )\\d+'}
          - handoff: {reason: 're:(x)\\1'}
          - tool_called: {name: t, arguments: {id: '(?=a)'}, match: {id: regex}}
        """,
    )
    r = cli("validate", str(suite))
    assert r.code == 2
    lines = r.out.strip().splitlines()
    assert len(lines) == 3, r.out
    assert lines[0].startswith(f"{suite / 's.yaml'}:6: expect[0].said.regex: invalid regex '(?<=order )\\\\d+': invalid perl operator: (?<= (lookarounds")
    assert "expect[1].handoff.reason: invalid regex '(x)\\\\1': invalid escape sequence: \\1" in lines[1]
    assert "expect[2].tool_called" in lines[2] and "argument 'id': invalid regex '(?=a)'" in lines[2]
    assert r.err == ""  # RE2 prints nothing of its own


# -- 6. YAML aliases under the alias-count limit -------------------------------------------------


def test_few_aliases_of_a_big_string_are_refused_by_expanded_size(tmp_path: Path):
    """A 4 MB file with 190 aliases of one 4 MB string used to validate, then expand to an
    801 MB journal line and a MemoryError. Now: one line naming the file, exit 2."""
    big = "x" * 4_000_000
    aliases = ", ".join(["*big"] * 190)
    path = tmp_path / "bomb.yaml"
    path.write_text(
        f"id: bomb\nuser:\n  script:\n    - say: hi\ninitial_state:\n  blob: &big {big}\n  copies: [{aliases}]\n"
    )
    for args in (["validate", str(path)], ["run", str(path), "--agent", "_hostile_agents:Echo", "--out", str(tmp_path / "run")]):
        r = cli(*args)
        assert r.code == 2, (args, r.out, r.err)
        text = (r.out + r.err).strip()
        assert len(text.splitlines()) == 1
        assert f"{path}:7: " in text and "YAML aliases (*ref) expand the document to more than" in text
    assert not (tmp_path / "run").exists()


def test_sharing_a_block_by_alias_still_works(tmp_path: Path):
    """150 scenarios sharing one 50-field customer block: an honest use of aliases."""
    fields = "".join(f"      field{i}: value number {i}\n" for i in range(50))
    text = "scenarios:\n  - id: s0\n    customer: &cust\n" + fields + "    user: {script: [{say: hi}]}\n"
    text += "".join(f"  - id: s{i}\n    customer: *cust\n    user: {{script: [{{say: hi}}]}}\n" for i in range(1, 150))
    write(tmp_path / "s.yaml", text)
    r = cli("validate", str(tmp_path / "s.yaml"))
    assert r.code == 0, r.out + r.err


# -- 15. config that runs code ------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder (the working directory) with judge modules whose import leaves a mark."""
    import sys

    side = "import pathlib\npathlib.Path(__file__).with_suffix('.ran').write_text('imported')\n"
    judge = (
        "from typing import ClassVar\nfrom evalkit.judges.base import Judge\n\n"
        "class Polite(Judge):\n    name: ClassVar[str] = 'polite'\n\n"
        "    def evaluate(self, ctx):\n        return self.verdict(True, 'polite enough')\n"
    )
    write(tmp_path / "plug_judges.py", side + judge)
    write(tmp_path / "plugpkg" / "__init__.py", side)
    write(tmp_path / "plugpkg" / "deep.py", side + judge)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("plug_judges", "plugpkg", "plugpkg.deep"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_validate_executes_nothing(plugin_dir: Path):
    marker = plugin_dir / "shell-ran"
    suite = plugin_dir / "suite"
    write(suite / "suite.yaml", f"agent: 'subprocess:getoutput?cmd=touch {marker}'\njudges:\n  - plug_judges:Polite: {{}}\n")
    write(
        suite / "s.yaml",
        """
        id: s
        user:
          script:
            - say: hi
        expect:
          - plugpkg.deep:Polite: {}
        """,
    )
    r = cli("validate", str(suite))
    assert (r.code, r.out, r.err) == (0, "", "")
    ran = sorted(p.name for p in plugin_dir.rglob("*.ran"))
    assert ran == [] and not marker.exists()  # no module imported, no shell command run


def test_validate_names_a_judge_module_it_cannot_find(plugin_dir: Path):
    suite = plugin_dir / "suite"
    write(suite / "suite.yaml", "judges:\n  - plugpkg.missing:Polite: {}\n  - not a ref:X: {}\n")
    write(suite / "s.yaml", "id: s\nuser:\n  script:\n    - say: hi\n")
    r = cli("validate", str(suite))
    assert r.code == 2
    lines = r.out.strip().splitlines()
    assert lines[0] == (
        f"{suite / 'suite.yaml'}:2: judges[0].plugpkg.missing:Polite: no module named 'plugpkg.missing' "
        "for judge 'plugpkg.missing:Polite' (is it on PYTHONPATH?)"
    )
    assert "'not a ref:X' is not a 'module:Class' reference" in lines[1]
    assert sorted(p.name for p in plugin_dir.rglob("*.ran")) == []


def test_run_shows_the_resolved_agent_and_judges_before_it_starts(plugin_dir: Path):
    suite = plugin_dir / "suite"
    write(suite / "suite.yaml", "agent: '_hostile_agents:Echo'\njudges:\n  - plug_judges:Polite: {}\n")
    write(suite / "s.yaml", "id: s\nuser:\n  script:\n    - say: hi\n")
    r = cli("run", str(suite), "--out", str(plugin_dir / "run"))
    assert r.code == 0, r.err
    agents_file = Path(__file__).parent / "_hostile_agents.py"
    lines = r.err.splitlines()
    assert lines[0] == f"evalkit: agent _hostile_agents:Echo = _hostile_agents:Echo from {agents_file}"
    assert lines[1] == f"evalkit: judge plug_judges:Polite = plug_judges:Polite from {plugin_dir / 'plug_judges.py'}"
    assert load_run(plugin_dir / "run").conversations[0].verdicts[0].reason == "polite enough"


@pytest.mark.parametrize("what", ["system_exit", "base_exception", "bad_str"])
def test_judge_base_exceptions_are_verdict_errors(tmp_path: Path, what: str):
    import asyncio

    from _hostile_agents import ExitingJudge

    from evalkit.core.transcript import Transcript
    from evalkit.judges import run_judge
    from evalkit.judges.base import JudgeContext

    ctx = JudgeContext(transcript=Transcript(scenario_id="s"), scenario=None, window=None, llm=None)
    verdict = asyncio.run(run_judge(ExitingJudge(what), ctx))
    assert verdict.passed is None and verdict.error is not None
    assert verdict.reason.startswith("judge crashed: ")


def test_imported_recordings_with_lone_surrogates_can_be_written_and_read(tmp_path: Path):
    """Recorded conversations are text from outside too: ``evalkit import`` used to crash
    writing the journal of a log holding a ``\\ud800`` escape."""
    log = tmp_path / "log.jsonl"
    line = (
        '{"id": "c1", "messages": [{"role": "user", "content": "hi \\ud800"}, {"role": "assistant", '
        '"content": "ok \\udfff", "tool_calls": [{"id": "t1", "type": "function", "function": '
        '{"name": "f", "arguments": "{\\"q\\": \\"\\\\ud800\\"}"}}]}]}'
    )
    log.write_text(line + "\n")
    out = tmp_path / "run"
    r = cli("import", "openai-messages", str(log), "--out", str(out))
    assert r.code == 0, r.err
    t = load_run(out).conversations[0].transcript
    assert t.turns[0].content == "hi \ufffd" and t.turns[1].content == "ok \ufffd"
    assert t.turns[1].tool_calls[0].arguments == {"q": "\ufffd"}
