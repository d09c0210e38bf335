"""`POST /events` (SPEC §3.4): accept events onto the events queue, dedup by id."""

from __future__ import annotations

import uuid

from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.adapters.clock import now
from chalicelib.bootstrap import services
from chalicelib.runtime.events import mark_queued, seen
from chalicelib.runtime.messages import EventBody, EventMessage
from chalicelib.scenarios.durations import format_datetime

from .errors import BadRequest, invalid_input
from .http import json_document, routes
from .models import EventIn

blueprint = Blueprint(__name__)
route = routes(blueprint)

MAX_BATCH = 500


@route("/events", methods=["POST"])
def post_events() -> Response:
    """One event or `{"events": [...]}`; each valid one is queued unless its id was seen.

    A single event that is not valid is a 400 naming the field; in a batch each event is
    checked on its own and the invalid ones are listed in `rejected`."""
    document = json_document(blueprint.current_request)
    if not isinstance(document, dict):
        raise BadRequest('$: an event object or {"events": [...]}')
    if "events" in document:
        items = document["events"]
    else:
        try:
            EventIn.model_validate(document)
        except ValidationError as error:
            raise invalid_input(error) from None
        items = [document]
    if not isinstance(items, list):
        raise BadRequest("$.events: a list of events")
    if len(items) > MAX_BATCH:
        raise BadRequest(f"$.events: at most {MAX_BATCH} events per call, got {len(items)}")
    rejected, valid = [], []
    for index, item in enumerate(items):
        try:
            valid.append(EventIn.model_validate(item))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            rejected.append(
                {"index": index, "detail": f"{where}: {first['msg']}" if where else first["msg"]}
            )
    # An id counts as seen once its event is queued: a call that failed before that
    # (queueing refused, a crash) is retried in full; the consumer drops what it has done.
    known = seen(list(dict.fromkeys(event.id for event in valid if event.id)))
    duplicates, queued, given = 0, [], []
    for event in valid:
        if event.id in known:
            duplicates += 1
            continue
        if event.id:
            known.add(event.id)
            given.append(event.id)
        event_id = event.id or str(uuid.uuid4())  # a new id is nobody's duplicate
        body = EventBody(
            id=event_id, type=event.type, data=event.data,
            occurred_at=format_datetime(event.occurred_at or now()),
        )  # fmt: skip
        message = EventMessage(profile_db=event.profile_db, profile_id=event.profile_id, event=body)
        queued.append((message, 0))
    services().queues.send("events", queued)
    mark_queued(given)
    return Response(
        {"accepted": len(queued), "duplicates": duplicates, "rejected": rejected}, status_code=202
    )
