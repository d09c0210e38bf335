"""An HTTP server on loopback that records what it is sent and answers as scripted: the
far end of webhook nodes in tests (a CRM, a call center)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    delay: float = 0.0  # seconds before answering (to make a caller time out)


class Recorder:
    """What the server got, and what it answers next (the default once the script ends)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[Request] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self.lock = threading.Lock()
        self.release = threading.Event()  # set to cut a delayed answer short

    def answer_next(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def _next(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.default


@contextmanager
def serving() -> Iterator[Recorder]:
    """Serve on 127.0.0.1 on a free port until the block ends."""
    recorder: Recorder

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            answer = recorder._next(
                Request(self.command, self.path, dict(self.headers.items()), body)
            )
            if answer.delay:
                recorder.release.wait(answer.delay)
            payload = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the caller gave up waiting

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder = Recorder(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="loopback", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.release.set()
        server.shutdown()
        server.server_close()
