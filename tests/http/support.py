"""Helpers of the HTTP suite: raw calls (any body, any headers) and problem checks."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import HTTPResponse

from chalicelib.runtime.commit import epoch
from chalicelib.runtime.hooks import sign
from tests.e2e.harness import API_KEY, Stack, email, on_event, pause, scenario

PROBLEM_JSON = "application/problem+json"
UNSET: Any = object()


NIGHTLY = {"id": "nightly", "type": "schedule", "daily": "19:30", "next": "hello"}


def journey(*triggers: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """A valid scenario on `customers`: hello → wait a day → bye, with an event trigger
    (`start`, on `signup`), a webhook trigger (`crm`) and any `triggers` given."""
    return scenario(
        {
            "hello": email("Hello", "wait"),
            "wait": pause("P1D", "bye"),
            "bye": email("Bye"),
        },
        [
            on_event("signup", "hello"),
            {"id": "crm", "type": "webhook", "next": "hello"},
            *triggers,
        ],
        **settings,
    )


def wait_for_open() -> dict[str, Any]:
    """Nodes: an e-mail, then wait a day for it to be opened: `thanks` if so, else `nudge`."""
    return {
        "hello": email("Hello", "opened"),
        "opened": {
            "type": "wait_for",
            "event": "message.opened",
            "timeout": "P1D",
            "next": "thanks",
            "timeout_next": "nudge",
        },
        "thanks": email("Thanks for reading"),
        "nudge": email("Did you see it?"),
    }


def send(
    stack: Stack,
    method: str,
    path: str,
    body: Any = UNSET,
    *,
    raw: bytes | None = None,
    key: str | None = API_KEY,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """One call as it is: `body` as JSON or `raw` bytes, the key unless `key` is None."""
    sent = {"Content-Type": "application/json"}
    if key is not None:
        sent["X-Api-Key"] = key
    sent.update(headers or {})
    if raw is None:
        raw = b"" if body is UNSET else json.dumps(body).encode()
    return stack.http.request(method, path, headers=sent, body=raw)


def content_type(response: HTTPResponse) -> str | None:
    for name, value in response.headers.items():
        if name.lower() == "content-type":
            return str(value)
    return None


def assert_problem(response: HTTPResponse, status: int, *named: str) -> dict[str, Any]:
    """An RFC 9457 problem document of that status whose `detail` names each of `named`."""
    text = response.body.decode()
    assert response.status_code == status, f"answered {response.status_code}: {text}"
    assert content_type(response) == PROBLEM_JSON, text
    document: dict[str, Any] = json.loads(text)
    assert document["status"] == status
    assert isinstance(document["title"], str)
    assert document["title"]
    assert isinstance(document["detail"], str)
    for name in named:
        assert name in document["detail"], f"{name!r} not in {document['detail']!r}"
    return document


def signed_hook(
    stack: Stack,
    scenario_id: str,
    trigger_id: str,
    body: Any,
    secret: str,
    *,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """A webhook trigger call signed with `secret`, without the API key."""
    raw = json.dumps(body).encode()
    stamp = str(epoch(stack.now) if timestamp is None else timestamp)
    return send(
        stack,
        "POST",
        f"/hooks/{scenario_id}/{trigger_id}",
        raw=raw,
        key=None,
        headers={"X-Timestamp": stamp, "X-Signature": sign(secret, stamp, raw), **(headers or {})},
    )
