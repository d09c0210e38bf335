"""Scenario routes (SPEC §3.1, §3.2, §3.3)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.adapters.clock import now
from chalicelib.adapters.idempotency import once
from chalicelib.bootstrap import services
from chalicelib.engine import CompiledScenario, simulate
from chalicelib.runtime import scenarios, stats
from chalicelib.runtime.journeys import capture_profile
from chalicelib.runtime.schedules import quick_send
from chalicelib.runtime.storage import UnknownToken
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.model import ScheduleTrigger
from chalicelib.scenarios.schedules import next_runs
from chalicelib.scenarios.validation import ScenarioInvalid

from . import auth, templates
from .errors import BadRequest, Conflict, Forbidden, NotFoundError
from .http import (
    MAX_CONDITION_BYTES,
    MAX_DOCUMENT_BYTES,
    body,
    check_size,
    idempotency_key,
    json_document,
    page_params,
    query_int,
    routes,
)
from .models import (
    Capture,
    Deactivation,
    FromTemplate,
    ScenarioDraft,
    SendSegment,
    SimulationRequest,
)

blueprint = Blueprint(__name__)
_route = routes(blueprint)

STATUSES = ("draft", "active", "stopped", "trashed")
MAX_STATS_DAYS = 366  # days listed by the statistics' `by=day`


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@route(path, methods=[...])`: a route whose errors become problems, and which, when
    it is one scenario's (`{scenario_id}` in the path), answers only for a scenario the
    calling key sees (its groups): any other is a 404, as if it did not exist."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        return _route(path, **options)(_scoped(view) if "{scenario_id}" in path else view)

    return register


def _scoped(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def scoped(**ids: str) -> Any:
        if auth.caller().groups:  # a key of every group sees every scenario: no read
            scenario_in_scope(ids["scenario_id"])
        return view(**ids)

    return scoped


def scenario_in_scope(scenario_id: str) -> dict[str, Any]:
    """The scenario's metadata when the calling key sees its group; else the very 404 of
    an unknown scenario, so a key learns nothing of other groups' scenarios."""
    meta = scenarios.get(scenario_id)
    if not auth.caller().sees((meta.get("document") or {}).get("group")):
        raise scenarios.NotFound(f"no scenario {scenario_id!r}")
    return meta


def in_callers_groups(document: dict[str, Any]) -> dict[str, Any]:
    """A document the calling key may save: a key limited to groups saves only scenarios
    of one of them. Without `group`, a key of one group gives it its own; a key of
    several must name one (403 otherwise, and nothing is saved)."""
    groups = auth.caller().groups
    if not groups:
        return document
    if "group" not in document and len(groups) == 1:
        return {**document, "group": groups[0]}
    if document.get("group") not in groups:
        raise Forbidden(f"$.group: this key saves only scenarios of the groups {', '.join(groups)}")
    _jumps_in_scope(document)
    return document


def _jumps_in_scope(document: dict[str, Any]) -> None:
    """A key limited to groups moves profiles only into scenarios it sees: a `jump` to any
    other (or to none yet) is a 403, the same whether the target exists or not."""
    nodes = document.get("nodes")
    for node_id, node in nodes.items() if isinstance(nodes, dict) else ():
        if not isinstance(node, dict) or node.get("type") != "jump":
            continue
        try:
            scenario_in_scope(str(node.get("scenario")))
        except scenarios.NotFound:
            raise Forbidden(
                f"$.nodes.{node_id}.scenario: this key moves profiles only into scenarios of "
                "its groups"
            ) from None


def present(meta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A scenario as the API shows it. Not its webhook secret to a viewer key: whoever
    holds the secret can put profiles in through the scenario's webhook triggers."""
    viewer = auth.caller().role == "viewer"
    return {
        "id": meta["scenario_id"],
        "name": meta.get("name"),
        "status": meta["status"],
        "version": meta["version"],
        "tags": meta.get("tags", []),
        "webhook_secret": None if viewer else meta.get("webhook_secret"),
        "created_at": meta.get("created_at"),
        "updated_at": meta.get("updated_at"),
        "scenario": meta.get("document"),
        **extra,
    }


@route("/scenarios", methods=["POST"])
def create_scenario() -> Response:
    """A draft from a document, or (`{"template", "name"?, "group"?}`) from a template."""
    document = json_document(blueprint.current_request)
    if isinstance(document, dict) and "template" in document:
        document = templates.draft(body(blueprint.current_request, FromTemplate))
    else:
        body(blueprint.current_request, ScenarioDraft)
    document = in_callers_groups(document)
    check_size(document, "$", MAX_DOCUMENT_BYTES)
    meta = scenarios.create(document)
    return Response(present(meta, problems=meta["problems"]), status_code=201)


@route("/scenarios", methods=["GET"])
def list_scenarios() -> dict[str, Any]:
    request = blueprint.current_request
    params = request.query_params or {}
    limit, token = page_params(request)
    if params.get("status") and params["status"] not in STATUSES:
        raise BadRequest(f"query parameter 'status' must be one of {', '.join(STATUSES)}")
    with page_token():
        page = scenarios.list_page(
            limit,
            token,
            status=params.get("status"),
            tag=params.get("tag"),
            group=params.get("group"),
            q=params.get("q"),
            groups=auth.caller().groups,
        )
    listed = [
        {
            "id": m["scenario_id"],
            "name": m.get("name"),
            "status": m["status"],
            "version": m["version"],
            "tags": m.get("tags", []),
            "group": _group(m),
            "updated_at": m.get("updated_at"),
            "profiles_in": services().storage.count_active(m["scenario_id"]),
        }
        for m in page.scenarios
    ]
    return {"scenarios": listed, "next_token": page.next_token, "partial": page.partial}


@contextmanager
def page_token() -> Iterator[None]:
    """A list's page read with a token that list did not issue: a 400 naming the token."""
    try:
        yield
    except UnknownToken as error:
        raise BadRequest(f"next_token: {error}") from None


def _group(meta: dict[str, Any]) -> str | None:
    """The scenario's access group, as its document names it (a draft's may be anything)."""
    group = (meta.get("document") or {}).get("group")
    return group if isinstance(group, str) else None


@route("/scenarios/simulate", methods=["POST"])
def simulate_scenario() -> dict[str, Any]:
    """The engine's simulation in virtual time: nothing is sent, nothing stored."""
    request = body(blueprint.current_request, SimulationRequest)
    if (request.scenario is None) == (request.scenario_id is None):
        raise BadRequest("$: give exactly one of 'scenario' (a document) or 'scenario_id'")
    uow = UnitOfWork()
    if request.scenario is not None:
        document = request.scenario
    else:
        meta = scenario_in_scope(request.scenario_id or "")
        document = meta["document"]
        if not request.winners and meta.get("status") == "active":  # as the stack decided
            winners = uow.winners(meta["scenario_id"], meta["version"])
            request = request.model_copy(update={"winners": winners})
    try:
        scenario = CompiledScenario.from_document(document, request.scenario_id or "simulation")
    except ScenarioInvalid as error:
        error.problems = [
            replace(p, path=p.path.replace("$", "$.scenario", 1)) for p in error.problems
        ]
        raise
    return simulate(scenario, request, now(), uow.control_percent())


@route("/scenarios/{scenario_id}", methods=["GET"])
def read_scenario(scenario_id: str) -> dict[str, Any]:
    return present(scenarios.get(scenario_id))


@route("/scenarios/{scenario_id}", methods=["PUT"])
def replace_scenario(scenario_id: str) -> dict[str, Any]:
    document = json_document(blueprint.current_request)
    body(blueprint.current_request, ScenarioDraft)
    document = in_callers_groups(document)
    check_size(document, "$", MAX_DOCUMENT_BYTES)
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


@route("/scenarios/{scenario_id}", methods=["DELETE"])
def trash_scenario(scenario_id: str) -> dict[str, Any]:
    return present(scenarios.trash(scenario_id))


@route("/scenarios/{scenario_id}/restore", methods=["POST"])
def restore_scenario(scenario_id: str) -> dict[str, Any]:
    return present(scenarios.restore(scenario_id))


@route("/scenarios/{scenario_id}/clone", methods=["POST"])
def clone_scenario(scenario_id: str) -> Response:
    meta = scenarios.clone(scenario_id)
    return Response(present(meta, problems=meta["problems"]), status_code=201)


@route("/scenarios/{scenario_id}/versions", methods=["GET"])
def scenario_versions(scenario_id: str) -> dict[str, Any]:
    limit, token = page_params(blueprint.current_request)
    with page_token():
        found, next_token = scenarios.versions(scenario_id, limit, token)
    return {"versions": found, "next_token": next_token}


@route("/scenarios/{scenario_id}/triggers/{trigger_id}/next-runs", methods=["GET"])
def next_runs_of_trigger(scenario_id: str, trigger_id: str) -> dict[str, Any]:
    count = query_int(blueprint.current_request, "count", 12, 1, 100)
    document = scenarios.get(scenario_id)["document"]
    scenario = CompiledScenario.from_document(document, scenario_id)
    trigger = scenario.triggers.get(trigger_id)
    if trigger is None:
        raise NotFoundError(f"scenario {scenario_id} has no trigger {trigger_id!r}")
    if not isinstance(trigger, ScheduleTrigger):
        raise BadRequest(f"trigger {trigger_id!r} is a {trigger.type} trigger, not a schedule")
    runs = next_runs(trigger, now(), count, scenario.model.timezone)
    return {"trigger_id": trigger_id, "runs": [format_datetime(run) for run in runs]}


@route("/scenarios/{scenario_id}/clear", methods=["POST"])
def clear_scenario(scenario_id: str) -> dict[str, Any]:
    return {"removed": scenarios.clear(scenario_id)}


@route("/scenarios/{scenario_id}/profiles", methods=["POST"])
def add_profile(scenario_id: str) -> Response:
    """The default capture: the profile enters at `entry`; `data` is the entry event's data.
    The profile must exist (upsert it first): an unknown id is a 404 and captures nothing."""
    request = body(blueprint.current_request, Capture)
    meta = scenarios.get(scenario_id)
    if meta["status"] != "active":
        raise Conflict(f"the scenario is {meta['status']}: activate it to add profiles")
    uow = UnitOfWork()
    db = uow.version(scenario_id, meta["version"]).model.profile_db
    if not uow.profile(db, request.profile_id, history=False).exists:
        raise NotFoundError(f"$.profile_id: no profile {request.profile_id!r} in {db!r}")
    event = Event("api", now(), request.data, id=f"api-{uuid.uuid4()}")
    captured = capture_profile(uow, scenario_id, db, request.profile_id, event)
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
    storage = services().storage
    if isinstance(request.segment, str) and storage.segment_definition(request.segment) is None:
        raise NotFoundError(f"$.segment: no segment {request.segment!r}")
    target = blueprint.current_request.json_body["segment"]
    check_size(target, "$.segment", MAX_CONDITION_BYTES)
    scenario = storage.version(scenario_id, meta["version"])
    segment = target if request.segment is not None else None
    key = idempotency_key(blueprint.current_request)
    if key is None:
        return Response({"run_id": quick_send(scenario, segment)}, status_code=202)
    answer, _ = once(
        f"send-segment#{scenario_id}",
        key,
        {"segment": segment},
        lambda: {"run_id": quick_send(scenario, segment, key)},
        blueprint.current_request.lambda_context,
    )
    return Response(answer, status_code=202)


@route("/scenarios/{scenario_id}/profiles/{profile_id}", methods=["DELETE"])
def remove_profile(scenario_id: str, profile_id: str) -> dict[str, Any]:
    return {"removed": scenarios.remove_profile(scenario_id, profile_id)}


@route("/scenarios/{scenario_id}/nodes/{node_id}/profiles", methods=["DELETE"])
def remove_profiles_at_node(scenario_id: str, node_id: str) -> Response:
    return Response({"removed": scenarios.remove_at_node(scenario_id, node_id)}, status_code=202)


@route("/scenarios/{scenario_id}/nodes/{node_id}/profiles", methods=["GET"])
def profiles_at_node(scenario_id: str, node_id: str) -> dict[str, Any]:
    scenarios.get(scenario_id)
    limit, token = page_params(blueprint.current_request)
    with page_token():
        found, next_token = services().storage.node_page(scenario_id, node_id, limit, token)
    return {
        "next_token": next_token,
        "profiles": [
            {
                "profile_id": at.profile_id,
                "instance_id": at.instance_id,
                "entered_at": format_datetime(at.entered_at) if at.entered_at else None,
                "wake_at": format_datetime(at.wake_at) if at.wake_at else None,
            }
            for at in found
        ],
    }


@route("/scenarios/{scenario_id}/stats", methods=["GET"])
def scenario_stats(scenario_id: str) -> dict[str, Any]:
    """The counters; with `by=day` also `days`, the scenario-wide counters of each day."""
    scenarios.get(scenario_id)
    request = blueprint.current_request
    version, start, end = stats_query(request)
    by_day = (request.query_params or {}).get("by") is not None
    if by_day and (request.query_params or {})["by"] != "day":
        raise BadRequest("query parameter 'by' must be 'day'")
    if by_day and start and end and (end - start).days >= MAX_STATS_DAYS:
        raise BadRequest(f"query parameters from, to: by=day lists at most {MAX_STATS_DAYS} days")
    answer = stats.scenario_stats(scenario_id, version, start, end)
    if by_day:
        answer["days"] = stats.daily_totals(scenario_id, version, start, end, MAX_STATS_DAYS)
    return answer


def stats_query(request: Request) -> tuple[int | None, date | None, date | None]:
    """`version`, `from` and `to` of a statistics call (the diagram's counters too)."""
    params = request.query_params or {}
    try:
        version = int(params["version"]) if "version" in params else None
        start = date.fromisoformat(params["from"][:10]) if "from" in params else None
        end = date.fromisoformat(params["to"][:10]) if "to" in params else None
    except ValueError as error:
        raise BadRequest(f"query parameters version, from, to: {error}") from None
    return version, start, end
