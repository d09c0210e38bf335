"""Webhook triggers and delivery feedback (SPEC §3.4)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.adapters.clock import now
from chalicelib.runtime import feedback, hooks, scenarios, ses_events

from .errors import BadRequest, Conflict, NotFoundError, Unauthorized, invalid_input
from .http import body, idempotency_key, json_document, routes
from .models import Feedback, HookCall

blueprint = Blueprint(__name__)
route = routes(blueprint)


@route("/hooks/{scenario_id}/{trigger_id}", methods=["POST"])
def call_hook(scenario_id: str, trigger_id: str) -> Response:
    """Authenticated by its signature alone: a bad or stale one changes nothing."""
    request = blueprint.current_request
    meta = scenarios.find(scenario_id)
    if meta is None or not meta.get("webhook_secret"):
        raise NotFoundError(f"no scenario {scenario_id!r} with webhook triggers")
    try:
        hooks.verify(
            meta["webhook_secret"],
            request.headers.get("x-timestamp"),
            request.headers.get("x-signature"),
            request.raw_body or b"",
            now(),
        )
    except hooks.HookRejected as error:
        raise Unauthorized(str(error)) from None
    call = body(request, HookCall)
    key = idempotency_key(request)
    if meta["status"] != "active":
        raise Conflict(f"the scenario is {meta['status']}: activate it to accept hook calls")
    if hooks.webhook_trigger(meta, trigger_id) is None:
        raise NotFoundError(f"scenario {scenario_id} has no webhook trigger {trigger_id!r}")
    try:
        result = hooks.call(
            meta,
            trigger_id,
            call.profile_id,
            call.profile,
            call.data,
            key,
            request.headers["x-signature"],
            request.lambda_context,
        )
    except hooks.HookReplayed as error:
        raise Conflict(str(error)) from None
    return Response(result, status_code=202)


@route("/feedback", methods=["POST"])
def post_feedback() -> dict[str, Any]:
    """Delivery feedback for a message: its status changes and journeys react.

    The body is `{"message_id", "status", "at"}` or an SES event notification (bare or in
    its SNS envelope). Every status counts once per message, so a repeat changes nothing.
    """
    document = json_document(blueprint.current_request)
    if ses_events.is_notification(document):
        message_id, outcomes = _notification(document)
    else:
        try:
            request = Feedback.model_validate(document)
        except ValidationError as error:
            raise invalid_input(error) from None
        message_id = request.message_id
        outcomes = [(message_id, request.status, request.at or now(), {})]
    try:
        row = feedback.message(message_id)
        for _, status, at, details in outcomes:
            row = feedback.record(message_id, status, at, **details)
    except feedback.UnknownMessage as error:
        raise NotFoundError(str(error)) from None
    return {"message_id": message_id, "feedback": row.get("feedback", {})}


def _notification(document: dict[str, Any]) -> tuple[str, list[ses_events.Outcome]]:
    """Our message id and what an SES event notification reports (a 400 naming the field
    when it is none; an SNS subscription confirmation is refused so)."""
    try:
        return ses_events.message_id_of(document), ses_events.from_notification(document)
    except ses_events.BadNotification as error:
        raise BadRequest(str(error)) from None
