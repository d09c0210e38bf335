"""The end-to-end harness: the whole stack in-process, driven like a user drives it.

HTTP goes through Chalice's test client into the real app (middleware, auth, problems);
queued work is pumped into the real queue handlers by the local stack's `Runtime`; time
is a `VirtualClock` moved with `POST /local/clock` (or `advance_to`), which fires the
minute schedules — the sweeper and the schedule tick — at every due moment on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalice.test import TestHTTPClient

from chalicelib.adapters.clock import VirtualClock
from chalicelib.bootstrap import services
from chalicelib.engine import Instance
from chalicelib.local.clock import advance_to
from chalicelib.local.stack import Runtime
from chalicelib.scenarios.durations import format_datetime
from tests.api.gateway import gateway_client
from tests.loopback import Recorder, serving

API_KEY = "test-key"
START = datetime(2026, 6, 10, 10, tzinfo=UTC)  # a Wednesday, 10:00 UTC
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRM = "https://crm.example"  # the examples' webhook host


def person(profile_id: str, number: int = 100, **fields: Any) -> dict[str, Any]:
    """Fields of a reachable profile: `<id>@example.com`, phone `+1415555<number>` and
    consent to every channel; keyword fields are added (None clears one on upsert)."""
    return {
        "first_name": profile_id.title(),
        "email": f"{profile_id}@example.com",
        "phone": f"+1415555{number:04d}",
        "consents": {"email": True, "sms": True, "push": True},
        **fields,
    }


def scenario(
    nodes: dict[str, Any], triggers: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    """A scenario document on the `customers` database entering at its first node."""
    return {
        "name": settings.pop("name", "Test scenario"),
        "profile_db": "customers",
        "entry": next(iter(nodes)),
        "triggers": triggers or [],
        "nodes": nodes,
        **settings,
    }


def email(subject: str, next_node: str | None = None) -> dict[str, Any]:
    """A send node on the e-mail channel."""
    node: dict[str, Any] = {
        "type": "send",
        "channel": "email",
        "template": {"subject": subject, "body": f"{subject} for {{{{ profile.first_name }}}}"},
    }
    if next_node:
        node["next"] = next_node
    return node


def pause(duration: str, next_node: str | None = None) -> dict[str, Any]:
    """A pause node of an ISO 8601 duration."""
    node: dict[str, Any] = {"type": "pause", "duration": duration}
    if next_node:
        node["next"] = next_node
    return node


def on_event(event: str, next_node: str, trigger_id: str = "start", **extra: Any) -> dict[str, Any]:
    """An event trigger (`where`, `limit`, `actuality` as keywords)."""
    return {"id": trigger_id, "type": "event", "event": event, "next": next_node, **extra}


class ApiError(AssertionError):
    """The API answered with a status the test did not expect."""


@dataclass
class Stack:
    """One test's stack: an HTTP client, the queue pumps and the virtual clock."""

    http: TestHTTPClient
    runtime: Runtime
    clock: VirtualClock
    crm: Recorder  # a loopback HTTP server: the far end of webhook nodes

    # --- HTTP ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int | tuple[int, ...] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Call the API with the key; the JSON answer. `status`: what it must answer."""
        sent = {"X-Api-Key": API_KEY, "Content-Type": "application/json", **(headers or {})}
        raw = b"" if body is None else json.dumps(body).encode()
        response = self.http.request(method, path, headers=sent, body=raw)
        expected = (status,) if isinstance(status, int) else status
        if expected is None:
            expected = (200, 201, 202, 204)
        if response.status_code not in expected:
            raise ApiError(
                f"{method} {path} answered {response.status_code}: {response.body.decode()}"
            )
        return response.json_body

    def get(self, path: str, **options: Any) -> Any:
        return self.call("GET", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.call("POST", path, body, **options)

    def put(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.call("PUT", path, body, **options)

    def delete(self, path: str, **options: Any) -> Any:
        return self.call("DELETE", path, **options)

    # --- scenarios, profiles, events -------------------------------------------------------

    def create(self, document: dict[str, Any], activate: bool = True) -> str:
        """Create a scenario (and activate it); its id."""
        scenario_id: str = self.post("/scenarios", document, status=201)["id"]
        if activate:
            self.post(f"/scenarios/{scenario_id}/activate")
        return scenario_id

    def example(self, name: str) -> dict[str, Any]:
        """An example scenario, its webhook nodes calling the test's CRM server."""
        text = (EXAMPLES / f"{name}.json").read_text().replace(CRM, self.crm.url)
        document: dict[str, Any] = json.loads(text)
        return document

    def upsert(self, profile_id: str, fields: dict[str, Any], db: str = "customers") -> Any:
        return self.put(f"/profiles/{db}/{profile_id}", {"fields": fields})

    def event(
        self,
        event_type: str,
        profile_id: str,
        *,
        db: str = "customers",
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        data: dict[str, Any] | None = None,
    ) -> Any:
        """POST one event; the 202 answer (`accepted`, `duplicates`, `rejected`)."""
        body: dict[str, Any] = {
            "type": event_type,
            "profile_db": db,
            "profile_id": profile_id,
            "data": data or {},
        }
        if event_id is not None:
            body["id"] = event_id
        if occurred_at is not None:
            body["occurred_at"] = format_datetime(occurred_at)
        return self.post("/events", body, status=202)

    def fields(self, profile_id: str, db: str = "customers") -> dict[str, Any]:
        fields: dict[str, Any] = self.get(f"/profiles/{db}/{profile_id}")["fields"]
        return fields

    def stats(self, scenario_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.get(f"/scenarios/{scenario_id}/stats")
        return answer

    def at_node(self, scenario_id: str, node: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.get(f"/scenarios/{scenario_id}/nodes/{node}/profiles")[
            "profiles"
        ]
        return answer

    # --- time and queues -------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def drain(self) -> int:
        """Run queued work until every queue is idle (`POST /local/drain`)."""
        handled: int = self.post("/local/drain")["handled"]
        return handled

    def advance(self, duration: str) -> None:
        """Move virtual time on by an ISO 8601 duration (`POST /local/clock`)."""
        self.post("/local/clock", {"advance": duration})

    def advance_to(self, moment: datetime) -> None:
        advance_to(self.runtime, self.clock, moment)

    # --- what happened ---------------------------------------------------------------------

    def sent(self, **match: Any) -> list[dict[str, Any]]:
        """Messages the sandbox channels delivered (`GET /local/sent`), those matching."""
        messages: list[dict[str, Any]] = self.get("/local/sent")["messages"]
        return [m for m in messages if all(m.get(k) == v for k, v in match.items())]

    def instances(
        self, profile_id: str, scenario_id: str | None = None, db: str = "customers"
    ) -> list[Instance]:
        """The profile's instances, oldest capture first."""
        found = services().storage.instances_of_profile(db, profile_id, scenario_id)
        return sorted((s.instance for s in found), key=lambda i: (i.entered_at, i.instance_id))

    def instance(self, profile_id: str, scenario_id: str | None = None) -> Instance:
        (only,) = self.instances(profile_id, scenario_id)
        return only


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """June `day` 2026 at the given UTC time."""
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


@contextmanager
def running_stack() -> Iterator[Stack]:
    """The app with the local routes, the pumps and a virtual clock at START (on whatever
    AWS the caller set up)."""
    from app import app
    from chalicelib.adapters.clock import use_clock
    from chalicelib.local import routes

    if "/local/sent" not in app.routes:
        app.register_blueprint(routes.blueprint)
    clock = VirtualClock(START)
    previous = use_clock(clock)
    runtime = Runtime(app)
    routes.runtime = runtime
    try:
        with serving() as crm:
            yield Stack(gateway_client(app), runtime, clock, crm)
    finally:
        routes.runtime = None
        use_clock(previous)
