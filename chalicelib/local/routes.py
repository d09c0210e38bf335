"""Routes the local stack adds: `/local/sent`, and with a virtual clock `/local/clock`
and `/local/drain` (SPEC §3.5). Never part of a deployed stack."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.adapters.clock import VirtualClock, clock
from chalicelib.api.errors import BadRequest
from chalicelib.api.http import body, routes
from chalicelib.api.models import ClockChange
from chalicelib.runtime.channels import delivered
from chalicelib.scenarios.durations import format_datetime, parse_duration

from .clock import advance_to
from .stack import Runtime

blueprint = Blueprint(__name__)
route = routes(blueprint)
runtime: Runtime | None = None  # set by the local stack when it starts


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
