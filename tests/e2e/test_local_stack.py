"""`make run` as a user meets it: `python -m chalicelib.local` in a process of its own,
on a virtual clock, driven over real HTTP through the README's walk-through."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "local-dev-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def local_stack() -> Iterator[str]:
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SCENARIA_", "AWS_"))  # the stack sets its own
    }
    environment.update(
        PORT=str(port),
        SCENARIA_CLOCK="virtual",
        SCENARIA_CLOCK_START="2026-06-01T10:00:00+00:00",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/openapi.json", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    raise RuntimeError(f"the local stack did not start:\n{output}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


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


def test_the_readme_walk_through(local_stack: str) -> None:
    fields = {
        "first_name": "Ada",
        "email": "ada@example.com",
        "phone": "+14155550100",
        "consents": {"email": True, "sms": True},
    }
    assert call(local_stack, "PUT", "/profiles/customers/ada", {"fields": fields})[0] == 200
    call(local_stack, "POST", "/local/drain")
    _, _, sent = call(local_stack, "GET", "/local/sent")
    assert [(m["channel"], m["subject"]) for m in sent["messages"]] == [("email", "Welcome, Ada")]

    call(local_stack, "POST", "/local/clock", {"advance": "P2D"})

    _, _, sent = call(local_stack, "GET", "/local/sent")
    assert [m["channel"] for m in sent["messages"]] == ["email", "sms", "webhook"]
    _, _, calls = call(local_stack, "GET", "/local/webhooks")
    (crm,) = calls["calls"]
    assert (crm["name"], crm["body"]) == ("crm", '{"phone": "+14155550100"}')


def test_an_unknown_route_is_a_404_problem(local_stack: str) -> None:
    status, content_type, problem = call(local_stack, "GET", "/no/such/route")
    assert (status, content_type) == (404, "application/problem+json")
    assert problem["detail"] == "no route GET /no/such/route"
