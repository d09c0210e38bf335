"""Scenario routes (SPEC §3.1, §3.2, §3.3)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from chalice import Blueprint, Response

from chalicelib.adapters import store
from chalicelib.adapters.clock import now
from chalicelib.runtime import scenarios, stats
from chalicelib.runtime.journeys import capture_profile
from chalicelib.runtime.schedules import fan_out
from chalicelib.scenarios.facts import Event

from .errors import BadRequest, Conflict
from .http import body, json_document, routes
from .models import Capture, Deactivation, ScenarioDraft, SendSegment

blueprint = Blueprint(__name__)
route = routes(blueprint)


def present(meta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A scenario as the API shows it."""
    return {
        "id": meta["scenario_id"],
        "name": meta.get("name"),
        "status": meta["status"],
        "version": meta["version"],
        "tags": meta.get("tags", []),
        "webhook_secret": meta.get("webhook_secret"),
        "created_at": meta.get("created_at"),
        "updated_at": meta.get("updated_at"),
        "scenario": meta.get("document"),
        **extra,
    }


@route("/scenarios", methods=["POST"])
def create_scenario() -> Response:
    document = json_document(blueprint.current_request)
    body(blueprint.current_request, ScenarioDraft)
    meta = scenarios.create(document)
    return Response(present(meta, problems=meta["problems"]), status_code=201)


@route("/scenarios/{scenario_id}", methods=["GET"])
def read_scenario(scenario_id: str) -> dict[str, Any]:
    return present(scenarios.get(scenario_id))


@route("/scenarios/{scenario_id}", methods=["PUT"])
def replace_scenario(scenario_id: str) -> dict[str, Any]:
    document = json_document(blueprint.current_request)
    body(blueprint.current_request, ScenarioDraft)
    meta = scenarios.replace(scenario_id, document)
    return present(meta, problems=meta["problems"])


@route("/scenarios/{scenario_id}/activate", methods=["POST"])
def activate_scenario(scenario_id: str) -> dict[str, Any]:
    meta = scenarios.activate(scenario_id)
    return {
        "status": meta["status"],
        "version": meta["version"],
        "webhook_secret": meta["webhook_secret"],
    }


@route("/scenarios/{scenario_id}/deactivate", methods=["POST"])
def deactivate_scenario(scenario_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    keep = body(request, Deactivation).keep_profiles if request.raw_body else None
    return present(scenarios.deactivate(scenario_id, keep))


@route("/scenarios/{scenario_id}/clear", methods=["POST"])
def clear_scenario(scenario_id: str) -> dict[str, Any]:
    return {"removed": scenarios.clear(scenario_id)}


@route("/scenarios/{scenario_id}/profiles", methods=["POST"])
def add_profile(scenario_id: str) -> Response:
    """The default capture: the profile enters at `entry`; `data` is the entry event's data."""
    request = body(blueprint.current_request, Capture)
    meta = scenarios.get(scenario_id)
    if meta["status"] != "active":
        raise Conflict(f"the scenario is {meta['status']}: activate it to add profiles")
    db = store.compiled_version(scenario_id, meta["version"]).model.profile_db
    event = Event("api", now(), request.data, id=f"api-{uuid.uuid4()}")
    captured = capture_profile(scenario_id, db, request.profile_id, event)
    if captured.instance_id is None:
        raise Conflict(
            f"profile {request.profile_id!r} was not captured: {captured.refused}",
            reason=captured.refused,
        )
    return Response(
        {"instance_id": captured.instance_id, "profile_id": request.profile_id}, status_code=201
    )


@route("/scenarios/{scenario_id}/send-segment", methods=["POST"])
def send_segment(scenario_id: str) -> Response:
    request = body(blueprint.current_request, SendSegment)
    meta = scenarios.get(scenario_id)
    if meta["status"] != "active":
        raise Conflict(f"the scenario is {meta['status']}: activate it to send to a segment")
    target = blueprint.current_request.json_body["segment"]
    scenario = store.compiled_version(scenario_id, meta["version"])
    run_id = fan_out(scenario, now(), segment=target if request.segment is not None else None)
    return Response({"run_id": run_id}, status_code=202)


@route("/scenarios/{scenario_id}/nodes/{node_id}/profiles", methods=["GET"])
def profiles_at_node(scenario_id: str, node_id: str) -> dict[str, Any]:
    scenarios.get(scenario_id)
    items = store.instances_at_node(scenario_id, node_id, limit=1000)
    return {
        "profiles": [
            {
                "profile_id": i["profile_id"],
                "instance_id": i["instance_id"],
                "entered_at": i.get("node_entered_at"),
                "wake_at": i.get("wake_at"),
            }
            for i in items
        ]
    }


@route("/scenarios/{scenario_id}/stats", methods=["GET"])
def scenario_stats(scenario_id: str) -> dict[str, Any]:
    scenarios.get(scenario_id)
    params = blueprint.current_request.query_params or {}
    try:
        version = int(params["version"]) if "version" in params else None
        start = date.fromisoformat(params["from"][:10]) if "from" in params else None
        end = date.fromisoformat(params["to"][:10]) if "to" in params else None
    except ValueError as error:
        raise BadRequest(f"query parameters version, from, to: {error}") from None
    return stats.scenario_stats(scenario_id, version, start, end)
