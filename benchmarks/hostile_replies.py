"""Memory of a run against agents that never stop talking (issue #13, item 5).

Each case runs in a fresh process (so peak RSS is its own) against a local HTTP agent in
another process: a 200 MB JSON reply, an SSE token flood for 5 s, a Python agent returning
200 MB of text. Prints peak RSS of the evalkit process, the wall time and what was recorded.

    python benchmarks/hostile_replies.py                 # default cap (5 MB)
    python benchmarks/hostile_replies.py --max-reply-bytes 50000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve() -> None:
    """The hostile HTTP agent (run as ``--serve``): prints its port, serves until killed."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def do_DELETE(self) -> None:
            self.send_response(204)
            self.end_headers()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            flood = "flood" in self.path
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if flood else "application/json")
            self.end_headers()
            try:
                if flood:
                    piece = b'event: token\ndata: {"text": "' + b"t" * 200 + b'"}\n\n'
                    until = time.monotonic() + 5
                    while time.monotonic() < until:
                        self.wfile.write(piece * 100)
                else:
                    self.wfile.write(b'{"content": "')
                    chunk = b"z" * 1_000_000
                    for _ in range(200):
                        self.wfile.write(chunk)
                    self.wfile.write(b'"}')
            except OSError:
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


class Talker:
    """A Python agent returning 200 MB of text."""

    def respond(self, ctx: object) -> str:
        return "y" * 200_000_000


def one_case(case: str, port: int, cap: int | None) -> None:
    from evalkit.run.runner import RunConfig, Runner

    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        suite.mkdir()
        (suite / "s.yaml").write_text(f"id: {case}\nuser:\n  script:\n    - say: hi\n")
        agent = f"http://127.0.0.1:{port}" if case != "python" else "hostile_replies:Talker"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        run = Runner(
            RunConfig(suite=[suite], agent=agent, out=Path(tmp) / "run", max_reply_bytes=cap, turn_timeout_s=60,
                      progress=False, handle_signals=False)
        ).run_sync()
        wall = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        journal = (Path(tmp) / "run" / "conversations.jsonl").stat().st_size
        print(json.dumps({
            "case": case, "peak_rss_mb": round(peak / 1024), "rss_growth_mb": round((peak - before) / 1024),
            "wall_s": round(wall, 2), "journal_bytes": journal, "error": run.conversations[0].transcript.error,
        }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-reply-bytes", type=int, default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.case:
        sys.path.insert(0, str(Path(__file__).parent))
        one_case(args.case, args.port, args.max_reply_bytes)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        for case in ("big-json", "sse-flood", "python"):
            cmd = [sys.executable, __file__, "--case", case, "--port", str(port)]
            if args.max_reply_bytes:
                cmd += ["--max-reply-bytes", str(args.max_reply_bytes)]
            subprocess.run(cmd, check=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
