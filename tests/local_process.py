"""`make run` in a process of its own, as the end-to-end, CLI and browser tests meet it:
`python -m chalicelib.local` on a free port, and calls to it with the local key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "local-dev-key"
VIRTUAL_DAYTIME = {  # a virtual clock in the daytime: the example's quiet hours hold nothing
    "SCENARIA_CLOCK": "virtual",
    "SCENARIA_CLOCK_START": "2026-06-01T10:00:00+00:00",
}


def _interruptible() -> None:
    """Ctrl-C's default in the stack's process, as in a terminal: a shell that starts the
    tests in the background has them ignore SIGINT, and the stack would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def started(**settings: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m chalicelib.local` on a free port with these settings (environment
    variables), until it answers; its URL and process. Terminated at the end if still up."""
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SCENARIA_", "AWS_"))  # the stack sets its own
    }
    environment.update(PORT=str(port), **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_interruptible,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/openapi.json", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.stdout.read() if process.stdout else ""
                    raise RuntimeError(f"the local stack did not start:\n{output}") from None
                time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
    """(status, content type, JSON answer) of one request with the local key."""
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"X-Api-Key": KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())
