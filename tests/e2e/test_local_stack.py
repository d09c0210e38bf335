"""`make run` as a user meets it: `python -m chalicelib.local` in a process of its own,
on a virtual clock, driven over real HTTP through the README's walk-through."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.local_process import KEY, call, started
from tests.loopback import Answer, serving


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


def raw_call(
    url: str, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers, text) of a request with any method, with the local key."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"X-Api-Key": KEY})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/scenarios", "GET, POST"),
        ("PATCH", "/scenarios", "GET, POST"),
        ("BREW", "/profiles/customers/ada", "DELETE, GET, PUT"),
    ],
)
def test_a_method_the_route_lacks_is_a_405_problem_naming_its_methods(
    local_stack: str, method: str, path: str, allow: str
) -> None:
    # http.server answered TRACE or an unknown method with a 501 HTML page
    status, headers, text = raw_call(local_stack, method, path)
    assert (status, headers["Content-Type"]) == (405, "application/problem+json"), text
    assert headers["Allow"] == allow
    problem = json.loads(text)
    assert problem["status"] == 405
    assert method in problem["detail"]


def test_a_method_on_an_unknown_route_is_a_404_problem(local_stack: str) -> None:
    status, headers, text = raw_call(local_stack, "TRACE", "/no/such/route")
    assert (status, headers["Content-Type"]) == (404, "application/problem+json"), text


def test_path_parameters_are_percent_decoded_as_api_gateway_does(local_stack: str) -> None:
    fields = {"email": "grace@example.com"}
    path = "/profiles/customers/grace%40example.com"
    status, _, stored = call(local_stack, "PUT", path, {"fields": fields})
    assert (status, stored["profile_id"]) == (200, "grace@example.com")
    status, _, read = call(local_stack, "GET", "/profiles/customers/grace@example.com")
    assert (status, read["fields"]) == (200, fields)


def test_a_burst_of_connections_waits_to_be_accepted() -> None:
    # a listen backlog of 5: of 20 clients connecting at once, those beyond the sixth were
    # not taken while the server was busy (dropped, or reset where the system does that)
    clients = 20
    with started(SCENARIA_CLOCK="virtual") as (url, process):
        port = urllib.parse.urlsplit(url).port
        process.send_signal(signal.SIGSTOP)  # busy: it accepts nothing for now
        sockets = [socket.socket() for _ in range(clients)]
        try:
            for client in sockets:
                client.settimeout(0.5)
            connected = sum(client.connect_ex(("127.0.0.1", port)) == 0 for client in sockets)
        finally:
            process.send_signal(signal.SIGCONT)
            for client in sockets:
                client.close()
        assert connected == clients


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_it_stops_within_two_seconds_even_while_busy(sent: signal.Signals) -> None:
    # a pump in the middle of a batch (here a webhook call that takes long to answer) used
    # to be waited for, five seconds a queue thread: Ctrl-C took about 20 s on a busy stack
    with serving() as slow, started(SCENARIA_CLOCK="real") as (url, process):
        slow.default = Answer(delay=60)
        document = {
            "name": "Calls a slow API",
            "profile_db": "customers",
            "entry": "call",
            "nodes": {"call": {"type": "webhook", "method": "POST", "url": f"{slow.url}/x"}},
        }
        status, _, created = call(url, "POST", "/scenarios", document)
        assert status == 201, created
        assert call(url, "POST", f"/scenarios/{created['id']}/activate")[0] == 200
        assert call(url, "PUT", "/profiles/customers/ada", {"fields": {}})[0] == 200
        capture = {"profile_id": "ada"}
        assert call(url, "POST", f"/scenarios/{created['id']}/profiles", capture)[0] == 201
        deadline = time.monotonic() + 30
        while not slow.requests:  # the webhook worker is now waiting for its answer
            assert time.monotonic() < deadline, "the webhook was never called"
            time.sleep(0.1)
        process.send_signal(sent)
        began = time.monotonic()
        code = process.wait(timeout=30)
        assert time.monotonic() - began < 2.0
        assert code == 0
