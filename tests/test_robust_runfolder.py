"""The run folder under attack: one writer, one run, only its own folder, nothing secret.

Each test reproduces an attack of issue #13 (items 7 to 14) against the real CLI and checks
the promise that now holds (docs/robustness.md, "The run folder").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _robust_helpers import cli3

ROOT = Path(__file__).resolve().parents[1]
ECHO_AGENT = "evalkit.testing.agents:EchoAgent"


def _env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "OPENAI_"))}
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return e


def _suite(folder: Path, n: int = 3, *, gate: str = "", said: str = "You said") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(f"name: s\nmax_turns: 2\n{gate}")
    items = "".join(
        f"  - id: s{i}\n    user: {{script: ['hello {i}']}}\n    expect:\n      - said: {{contains: '{said}'}}\n"
        for i in range(n)
    )
    (folder / "scenarios.yaml").write_text("scenarios:\n" + items)
    return folder


def _run(suite: Path, out: Path, *extra: str, agent: str = ECHO_AGENT) -> tuple[int | None, str, str]:
    return cli3("run", str(suite), "--agent", agent, "--out", str(out), "--no-progress", *extra)


def _journal(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines() if x.strip()]


# --- 7. one writer: an exclusive lock ------------------------------------------------------------


def test_a_second_writer_is_refused_and_told_who_holds_the_folder(tmp_path: Path) -> None:
    """Two runs of one folder at once used to both exit 0 with two runs' lines mixed; a run and
    a resume at once played conversations twice. Now the second one (run, --resume, score,
    report, gate) exits 2 naming the holder, and the first finishes alone."""
    suite = _suite(tmp_path / "suite", n=6)
    out = tmp_path / "run"
    slow = "evalkit.testing.agents:SlowAgent?delay_ms=2000"
    # Every command is imported (a first run) before the clock starts: imports on a loaded
    # machine can take longer than the other run lasts.
    assert _run(suite, tmp_path / "warm-up")[0] == 0
    assert cli3("report", str(tmp_path / "warm-up"))[0] == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "run", str(suite), "--agent", slow, "--out", str(out),
         "--concurrency", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "manifest.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        attempts = {
            "run": ("run", str(suite), "--agent", slow, "--out", str(out), "--no-progress"),
            "resume": ("run", "--resume", "--out", str(out), "--no-progress"),
            "score": ("score", str(out), "--scenarios", str(suite)),
            "report": ("report", str(out)),
            "gate": ("gate", str(out), "--min", "task_completion_rate=0"),
        }
        for name, args in attempts.items():
            code, _, err = cli3(*args)
            assert code == 2, (name, err)
            assert err.count("\n") == 1, (name, err)
            assert f"{out}: in use by another evalkit process (pid {proc.pid} on " in err, (name, err)
            assert "evalkit run" in err  # the holder's command
        proc.terminate()  # stopped cleanly (exit 130), or already done
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), stderr
    assert not (out / ".evalkit.lock").exists()  # the lock goes with its holder
    # Free again: the resume finishes the run, every line of the one run, each conversation once.
    assert cli3("run", "--resume", "--out", str(out), "--no-progress")[0] == 0
    lines = _journal(out)
    assert len(lines) == 6 and len({x["run_id"] for x in lines}) == 1
    assert len({(x["transcript"]["scenario_id"], x["transcript"]["trial"]) for x in lines}) == 6


def test_a_refused_setup_leaves_no_folder_behind(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite")
    out = tmp_path / "new" / "run"
    code, _, err = _run(suite, out, agent="no_such_module_xyz:make")
    assert code == 2 and "no_such_module_xyz" in err
    assert not (tmp_path / "new").exists()


# --- 8. one run: foreign journal lines -----------------------------------------------------------


def test_resume_refuses_journal_lines_of_another_run_or_suite(tmp_path: Path) -> None:
    """Lines pasted in from another run used to be counted (24 of 10 planned)."""
    a = tmp_path / "a"
    b = tmp_path / "b"
    assert _run(_suite(tmp_path / "suite_a"), a)[0] == 0
    assert _run(_suite(tmp_path / "suite_b", n=2, said="other"), b)[0] == 0
    first = _journal(a)
    assert all(x["run_id"] == first[0]["run_id"] and x["suite_hash"].startswith("sha256:") for x in first)

    own = (a / "conversations.jsonl").read_text()
    (a / "conversations.jsonl").write_text(own + (b / "conversations.jsonl").read_text().splitlines()[0] + "\n")
    code, _, err = cli3("run", "--resume", "--out", str(a), "--no-progress")
    assert code == 2 and err.count("\n") == 1
    assert f"{a / 'conversations.jsonl'}:4: journal line of another run" in err

    # The same run id, copied from a run of another suite.
    stranger = dict(first[0], suite_hash="sha256:0000000000000000")
    (a / "conversations.jsonl").write_text(own + json.dumps(stranger) + "\n")
    code, _, err = cli3("run", "--resume", "--out", str(a), "--no-progress")
    assert code == 2 and f"{a / 'conversations.jsonl'}:4: journal line of another suite" in err

    (a / "conversations.jsonl").write_text(own)
    code, out, err = cli3("run", "--resume", "--out", str(a), "--no-progress")
    assert code == 0, err
    assert json.loads((a / "summary.json").read_text())["n_conversations"] == 3


def test_resume_refuses_a_suite_edited_since_the_run_started(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite")
    out = tmp_path / "run"
    assert _run(suite, out)[0] == 0
    (suite / "scenarios.yaml").write_text((suite / "scenarios.yaml").read_text().replace("hello 1", "hi 1"))
    code, _, err = cli3("run", "--resume", "--out", str(out), "--no-progress")
    assert code == 2 and "the suite changed since this run started" in err


def test_a_run_begun_before_suite_hashes_still_resumes(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite")
    out = tmp_path / "run"
    assert _run(suite, out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("suite_hash", "gate"):
        manifest.pop(key)
    manifest["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(manifest))
    lines = _journal(out)[:2]
    for line in lines:
        line.pop("suite_hash")
    (out / "conversations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for _ in range(2):  # and again: the lines it adds match the old ones
        code, _, err = cli3("run", "--resume", "--out", str(out), "--no-progress")
        assert code == 0, err
    assert len(_journal(out)) == 3


# --- 9. only its own folder ------------------------------------------------------------------------


def test_out_of_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    """`--out` of a folder holding the user's files used to overwrite their report.html;
    `--out /` wrote eight files into /."""
    suite = _suite(tmp_path / "suite")
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "report.html").write_text("my own report")
    for args in (
        ("run", str(suite), "--agent", ECHO_AGENT, "--out", str(mine), "--no-progress"),
        ("run", "--resume", "--out", str(mine), "--no-progress"),
    ):
        code, _, err = cli3(*args)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{mine}: not empty and not an evalkit run folder" in err
    assert sorted(p.name for p in mine.iterdir()) == ["report.html"]
    assert (mine / "report.html").read_text() == "my own report"

    before = sorted(os.listdir("/"))
    code, _, err = _run(suite, Path("/"))
    assert code == 2 and "/: not empty and not an evalkit run folder" in err
    assert sorted(os.listdir("/")) == before

    # The other writers keep to the same rule.
    assert _run(suite, tmp_path / "run")[0] == 0
    code, _, err = cli3("score", str(tmp_path / "run"), "--out", str(mine), "--scenarios", str(suite))
    assert code == 2 and "not an evalkit run folder" in err
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"id": "x", "messages": [{"role": "user", "content": "hi"},
                                                       {"role": "assistant", "content": "hello"}]}) + "\n")
    code, _, err = cli3("import", "openai-messages", str(log), "--out", str(mine))
    assert code == 2 and "not an evalkit run folder" in err
    assert sorted(p.name for p in mine.iterdir()) == ["report.html"]


# --- 10. symbolic links inside a run folder ------------------------------------------------------


def test_a_symlink_inside_a_run_folder_is_never_followed(tmp_path: Path) -> None:
    """A symlinked conversations.jsonl used to be followed: its target emptied and rewritten."""
    suite = _suite(tmp_path / "suite")
    out = tmp_path / "run"
    assert _run(suite, out)[0] == 0
    victim = tmp_path / "precious.txt"
    victim.write_text("precious data\n")
    journal = out / "conversations.jsonl"
    journal.unlink()
    journal.symlink_to(victim)
    for args in (("run", "--resume", "--out", str(out), "--no-progress"), ("report", str(out)),
                 ("gate", str(out), "--min", "task_completion_rate=0")):
        code, _, err = cli3(*args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert f"{journal}" in err and "symbolic link" in err, err
    assert victim.read_text() == "precious data\n"

    # Any other file too: the report is not written through a link.
    journal.unlink()
    assert _run(suite, tmp_path / "other")[0] == 0
    (tmp_path / "other" / "conversations.jsonl").rename(journal)
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(victim)
    code, _, err = cli3("report", str(out))
    assert code == 2 and "report.html: is a symbolic link" in err
    assert victim.read_text() == "precious data\n"


# --- 11. the gate fails closed ---------------------------------------------------------------------


def test_gate_reads_the_thresholds_recorded_with_the_run_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evalkit gate RUN` from another folder used to find no suite (recorded as a relative
    path) and print "(no checks configured) gate PASSED" on a run of errors only."""
    _suite(tmp_path / "work" / "suite", n=4, gate="gate:\n  min:\n    task_completion_rate: 0.9\n")
    monkeypatch.chdir(tmp_path / "work")
    broken = "evalkit.testing.agents:FlakyAgent?mode=raise&rate=1.0"
    code, _, err = cli3("run", "suite", "--agent", broken, "--out", "run", "--no-progress")
    # Every conversation failed alike before the agent answered: a configuration error (exit 2),
    # and the run folder is kept, so a CI step that gates it anyway must still fail.
    assert code == 2 and "configuration problem" in err, err
    assert json.loads(Path("run/summary.json").read_text())["n_errors"] == 4
    monkeypatch.chdir(tmp_path)
    code, out, err = cli3("gate", "work/run")
    assert code == 1, out
    assert "task_completion_rate" in out and ">= 90.0%" in out and "gate FAILED" in out
    assert "thresholds from the run's manifest" in err


def test_a_gate_with_no_checks_fails_unless_allowed(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite")
    out = tmp_path / "run"
    assert _run(suite, out)[0] == 0
    code, text, _ = cli3("gate", str(out))
    assert code == 1 and "no checks configured" in text and "gate FAILED" in text
    code, text, _ = cli3("gate", str(out), "--allow-empty")
    assert code == 0 and "gate PASSED" in text


# --- 12. secrets: an endpoint echoing the Authorization header -------------------------------------

KEY = "sk-echo-SECRET789-Hq2Wn5Zr8Tb1"
TOKEN = "tok-agent-SECRET246-Vx9Lm3"


def _echo_header(req: Any) -> Any:
    """Answer every call with the caller's Authorization header, in every free-text field."""
    from evalkit.testing.fake_openai import example_for_schema

    echo = f"echo of your header: {req.headers.get('authorization')}"
    schema = req.schema
    if schema is None:
        return echo
    answer = example_for_schema(schema)
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("type") == "string" and "enum" not in prop and "const" not in prop:
            answer[name] = echo
    return answer


class TokenAgent:
    """Repeats the token it reads from its environment (an agent leaking its own credential)."""

    def respond(self, ctx: Any) -> Any:
        from evalkit.agents.base import AgentReply

        return AgentReply(content=f"my token is {os.environ['SUPPORT_BOT_TOKEN']}; you said {ctx.message}")


def test_no_configured_secret_reaches_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An echoing endpoint used to put sk-... into the journal, verdicts.parquet, junit.xml,
    report.html and the response cache; an agent's token was written as it said it."""
    from evalkit.testing.fake_openai import FakeOpenAIServer

    for var in [v for v in os.environ if v.startswith(("EVALKIT_", "OPENAI_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SUPPORT_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("EVALKIT_SECRET_ENV", "SUPPORT_BOT_TOKEN")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "s.yaml").write_text("scenarios:\n" + "".join(
        f"  - id: p{i}\n    user:\n      persona:\n        goal: {{description: Track order {i}, intent: track_order}}\n"
        f"        max_turns: 2\n    expect:\n      - rubric: {{criteria: The agent helps.}}\n"
        for i in range(3)
    ))
    tokens = tmp_path / "suite2"
    _suite(tokens, n=2)
    cache = tmp_path / "cache"
    with FakeOpenAIServer(default=_echo_header) as srv:
        code, _, err = cli3("run", str(suite), "--out", str(tmp_path / "run"), "--model", "fake-model",
                            "--base-url", srv.base_url, "--simulator", "llm", "--agent", "openai-chat:fake-model",
                            "--cache-dir", str(cache), "--no-progress")
        assert code == 0, err
        assert {r.headers.get("authorization") for r in srv.chat_requests} == {f"Bearer {KEY}"}
        code, _, err = _run(tokens, tmp_path / "tokens", agent="test_robust_runfolder:TokenAgent")
        assert code == 0, err
        code, _, err = cli3("score", str(tmp_path / "run"), "--out", str(tmp_path / "rescored"), "--model",
                            "fake-model", "--base-url", srv.base_url, "--cache-dir", str(cache))
        assert code == 0, err
    # The echo really was recorded (masked): the test is not vacuous.
    said = [t["content"] for x in _journal(tmp_path / "run") for t in x["transcript"]["turns"] if t["role"] == "agent"]
    assert said and all("echo of your header: Bearer ***" in s for s in said), said[:2]
    reasons = [v["reason"] for x in _journal(tmp_path / "rescored") for v in x["verdicts"]]
    assert any("echo of your header: Bearer ***" in r for r in reasons), reasons[:2]
    assert "my token is ***" in (tmp_path / "tokens" / "conversations.jsonl").read_text()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"conversations.jsonl", "verdicts.parquet", "junit.xml", "report.html", "summary.md"} <= {
        p.name for p in files
    }
    # Every answer echoed the key: none was cached (counted), and the cache holds no key.
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["cache"]["withheld"] > 0
    for p in files:
        data = p.read_bytes()
        for secret in (KEY, TOKEN, "SECRET789", "SECRET246"):
            assert secret.encode() not in data, f"{p.relative_to(tmp_path)} holds {secret}"


def test_the_response_cache_never_stores_a_secret(tmp_path: Path) -> None:
    from evalkit.core.masking import Secrets
    from evalkit.llm.cache import ResponseCache, request_key

    cache = ResponseCache(tmp_path, secrets=Secrets().plus(KEY))
    request = {"model": "m", "messages": [{"role": "user", "content": f"my key is {KEY}"}]}
    cache.put(request_key(request), request, {"content": f"echo Bearer {KEY}"})
    assert cache.stats.withheld == 1 and not list(tmp_path.rglob("*.json"))
    cache.put(request_key(request), request, {"content": "fine"})
    (entry,) = tmp_path.rglob("*.json")
    assert KEY not in entry.read_text() and "my key is ***" in entry.read_text()


# --- 13. credentials in --base-url -------------------------------------------------------------------


def test_credentials_in_base_url_are_masked_in_what_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--base-url https://user:pass@host` used to be written verbatim to the manifest and report."""
    from evalkit.llm.settings import ModelSettings
    from evalkit.testing.fake_openai import FakeOpenAIServer

    for var in [v for v in os.environ if v.startswith(("EVALKIT_", "OPENAI_"))]:
        monkeypatch.delenv(var)
    password = "hunter2-Pa55word"
    suite = _suite(tmp_path / "suite", n=2)
    (suite / "scenarios.yaml").write_text(
        (suite / "scenarios.yaml").read_text().replace("      - said:", "      - rubric: {criteria: helps}\n      - said:")
    )
    with FakeOpenAIServer() as srv:
        url = srv.base_url.replace("http://", f"http://evaluser:{password}@")
        masked = srv.base_url.replace("http://", "http://***@")
        code, _, err = _run(suite, tmp_path / "run", "--judge-model", "fake-model", "--base-url", url,
                            "--cache-dir", str(tmp_path / "cache"))
        assert code == 0, err
        assert srv.chat_requests, "the judge reached the server"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["models"]["judge"] == f"fake-model @ {masked}"
    assert "--base-url" in manifest["command"]
    for p in (tmp_path / "run").iterdir():
        assert password.encode() not in p.read_bytes(), p.name
        assert b"evaluser:" not in p.read_bytes(), p.name
    assert password not in ModelSettings(model="m", base_url=url).describe()


# --- 14. Markdown outputs: transcript text stays text ------------------------------------------------

PIXEL = "![x](https://evil.example/p.png) and [click](https://evil.example/) <img src=x>"


class PixelAgent:
    """Fails every conversation with a reply that is live Markdown (a tracking pixel)."""

    def respond(self, ctx: Any) -> Any:
        raise RuntimeError(PIXEL)


def test_transcript_text_is_inert_in_markdown_and_xml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.md (posted as a PR comment) used to keep an agent's image as live Markdown."""
    import xml.etree.ElementTree as ET

    from markdown_it import MarkdownIt

    suite = _suite(tmp_path / "suite", n=2, gate="gate:\n  min:\n    task_completion_rate: 0.9\n")
    out = tmp_path / "run"
    # Every conversation fails alike before the agent answers: exit 2, the folder is kept.
    assert _run(suite, out, agent="test_robust_runfolder:PixelAgent")[0] == 2
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert cli3("gate", str(out))[0] == 1
    md = (out / "summary.md").read_text()
    assert "evil.example" in md  # the text is there, as text

    def live(text: str) -> list[str]:
        """Images, links and HTML that came from the transcript (evalkit's own <details> is fine).
        A bare URL may still be autolinked by GitHub: clickable, never loaded."""
        found = []
        for t in MarkdownIt("commonmark").enable("table").parse(text):
            for child in [t, *(t.children or [])]:
                if child.type in ("image", "link_open") or (
                    child.type.startswith("html") and ("img" in child.content or "evil" in child.content)
                ):
                    found.append(f"{child.type} {child.attrs} {child.content}")
        return found

    assert live(md) == [], live(md)
    assert live(step.read_text()) == []
    root = ET.parse(out / "junit.xml").getroot()
    messages = [f.get("message", "") + (f.text or "") for f in root.iter("error")] + [
        f.get("message", "") + (f.text or "") for f in root.iter("failure")
    ]
    assert any(PIXEL in m for m in messages), messages[:2]
