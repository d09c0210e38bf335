"""Routes the local stack adds: `/local/sent`, the Web Push sink under `/local/push`, a
webhook sink under `/local/webhooks` (the example's call center), and with a virtual
clock `/local/clock` and `/local/drain` (SPEC §3.5). Never part of a deployed stack."""

from __future__ import annotations

from collections import deque
from typing import Any

from chalice import Blueprint, Response

from chalicelib.adapters.clock import VirtualClock, clock
from chalicelib.api import auth
from chalicelib.api.errors import BadRequest, NotFoundError, problem
from chalicelib.api.http import body, json_document, routes
from chalicelib.api.models import ClockChange
from chalicelib.runtime.channels import delivered
from chalicelib.scenarios.durations import format_datetime, parse_duration

from .clock import advance_to
from .push_sink import KEEP, PushSink
from .stack import Runtime

blueprint = Blueprint(__name__)
route = routes(blueprint)
runtime: Runtime | None = None  # set by the local stack when it starts
push_sink = PushSink()  # its endpoints are under the stack's public URL

PUSH_ENDPOINT = "/local/push/{subscription_id}"
# Push services take pushes from whoever holds a subscription's endpoint, without our key;
# only POST is open (DELETE asks for the key itself). Registered only where this module is
# imported: the local stack and its tests.
auth.make_public(PUSH_ENDPOINT)
WEBHOOK_SINK = "/local/webhooks/{name}"
auth.make_public(WEBHOOK_SINK)  # webhook nodes call it as they call any API: without our key
webhook_calls: deque[dict[str, Any]] = deque(maxlen=KEEP)  # the latest, oldest first
_PUSH_REFUSALS = {
    400: ("Bad request", "the push's VAPID token does not verify or its body does not decrypt"),
    410: ("Gone", "no such push subscription, or it was unsubscribed"),
    413: ("Payload too large", "a push body holds at most 4096 bytes"),
}


def _virtual() -> VirtualClock:
    current = clock()
    if not isinstance(current, VirtualClock):
        raise BadRequest("the stack runs on the real clock; start it with SCENARIA_CLOCK=virtual")
    return current


@route("/local/sent", methods=["GET"])
def sent() -> dict[str, Any]:
    return {"messages": delivered()}


@route("/local/clock", methods=["GET"])
def read_clock() -> dict[str, Any]:
    return {"now": format_datetime(_virtual().now())}


@route("/local/clock", methods=["POST"])
def move_clock() -> dict[str, Any]:
    virtual = _virtual()
    change = body(blueprint.current_request, ClockChange)
    if (change.advance is None) == (change.set is None):
        raise BadRequest("$: give exactly one of 'advance' (a duration) or 'set' (a datetime)")
    target = virtual.now() + parse_duration(change.advance) if change.advance else change.set
    assert target is not None
    assert runtime is not None
    if target < virtual.now():
        raise BadRequest(
            f"$.{'advance' if change.advance else 'set'}: the clock only moves forward"
        )
    stops = advance_to(runtime, virtual, target)
    return {"now": format_datetime(virtual.now()), "stops": stops}


@route("/local/drain", methods=["POST"])
def drain() -> dict[str, Any]:
    _virtual()
    assert runtime is not None
    return {"handled": runtime.drain()}


@route("/local/push/subscriptions", methods=["POST"])
def new_push_subscription() -> Response:
    """A new subscription of the local push sink, as a browser's PushSubscription JSON:
    store it in a profile's `push` field. Optional body: `{"name": "..."}`."""
    request = blueprint.current_request
    name = None
    if request.raw_body:
        document = json_document(request)
        name = document.get("name") if isinstance(document, dict) else None
        if name is not None and not isinstance(name, str):
            raise BadRequest("$.name: a string, if given")
    return Response(body=push_sink.subscribe(name), status_code=201)


@route(PUSH_ENDPOINT, methods=["POST"], content_types=["application/octet-stream"])
def receive_push(subscription_id: str) -> Response:
    """A push service's endpoint: takes an encrypted push (RFC 8030/8291/8292)."""
    request = blueprint.current_request
    raw = request.raw_body or b""
    status = push_sink.receive(
        subscription_id, dict(request.headers), raw.encode() if isinstance(raw, str) else raw
    )
    if status in _PUSH_REFUSALS:
        title, detail = _PUSH_REFUSALS[status]
        return problem(status, title, detail)
    return Response(body="", status_code=status)


@route(PUSH_ENDPOINT, methods=["DELETE"])
def unsubscribe_push(subscription_id: str) -> Response:
    """Unsubscribe, as a browser would: later pushes to it are answered 410 Gone."""
    auth.require_key(dict(blueprint.current_request.headers))
    if not push_sink.unsubscribe(subscription_id):
        raise NotFoundError(f"no active push subscription {subscription_id!r}")
    return Response(body="", status_code=204)


@route("/local/push", methods=["GET"])
def pushes() -> dict[str, Any]:
    """What the sink took, oldest first, decrypted."""
    return {"pushes": push_sink.received()}


@route(WEBHOOK_SINK, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], content_types=["*/*"])
def webhook_sink(name: str) -> dict[str, Any]:
    """Take any call, remember it, answer `{"ok": true}`: an API for webhook nodes to call."""
    request = blueprint.current_request
    raw = request.raw_body or b""
    webhook_calls.append(
        {
            "name": name,
            "method": request.method,
            "headers": dict(request.headers),
            "body": raw.decode(errors="replace") if isinstance(raw, bytes) else raw,
            "at": format_datetime(clock().now()),
        }
    )
    return {"ok": True}


@route("/local/webhooks", methods=["GET"])
def webhook_sink_calls() -> dict[str, Any]:
    """The calls the webhook sink took, oldest first."""
    return {"calls": list(webhook_calls)}
