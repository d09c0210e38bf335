"""Events: record them on the profile, then capture into scenarios and move journeys.

An event is processed once however often it is delivered: each thing it causes is
idempotent on its own — the same history entry, deterministic instance ids,
`seen_events` on instances, revenue counted once per event and scenario, a conversion
once per instance — so a redelivery changes nothing. One unit of work reads the profile
and its instances once for all the journeys the event moves.
"""

from __future__ import annotations

import logging

from chalicelib.adapters.clock import now as clock_now
from chalicelib.engine import EventArrived, reacts_to

from . import commerce, loyalty, measurement, membership, merges, orders, revenue, sessions
from .journeys import capture_profile, event_triggers, feed
from .messages import EventMessage, parse_event
from .storage import ReadAhead
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)


def process(message: EventMessage, uow: UnitOfWork | None = None) -> None:
    """Handle one event of a profile: its history first (a batch's unit of work writes it
    at `flush`, before what the event caused goes out), then what it moves; an outbox
    row's event is consumed after it."""
    uow = uow or UnitOfWork()
    event = message.event.event()
    profile_id = merges.resolve(uow, message.profile_db, message.profile_id)
    if profile_id != message.profile_id:  # sent for a merged profile: it applies to `into`
        message = message.model_copy(update={"profile_id": profile_id})
    profile_db = message.profile_db
    uow.record_event(profile_db, profile_id, event)  # before anything reads its history
    loyalty.keep_balance(uow, message)  # before journeys look at the profile
    orders.keep_order(uow, message)
    sessions.keep_session(uow, message)
    commerce.keep(uow, message)  # lists, views, the cart's stage
    # the journeys the event may move, convert or earn revenue for: the active ones, and
    # the ended ones whose conversion window is open or that ended after the event occurred;
    # none when no scenario's journeys listen to its type and it is no order
    listened = event.type == revenue.ORDER or uow.listened(event.type)
    since = min(clock_now(), event.occurred_at)
    instances = uow.instances_of_profile(profile_db, profile_id, since=since) if listened else []
    revenue.attribute(  # before it moves journeys
        profile_db, profile_id, event,
        [(s.instance, s.rev, s.seen) for s in instances],
    )  # fmt: skip
    if listened:
        measurement.conversions(uow, profile_db, profile_id, event)
    measurement.engagement(uow, profile_db, profile_id, event)
    for stored in instances:
        instance = stored.instance
        if instance.active and reacts_to(
            uow.version(instance.scenario_id, instance.version), instance, event.type
        ):
            feed(uow, instance.instance_id, EventArrived(event), event_id=event.id)
    for scenario_id in uow.scenarios_for_event(event.type):
        scenario = uow.active_version(scenario_id)
        if scenario is None:
            continue
        for trigger_id in event_triggers(scenario, event.type):
            capture_profile(uow, scenario_id, profile_db, profile_id, event, trigger_id=trigger_id)
    membership.after_event(uow, profile_db, profile_id, event, clock_now())
    if message.row_id is not None:
        uow.consume_row(message.row_id)


def read_ahead(uow: UnitOfWork, bodies: list[str]) -> None:
    """Before a batch of events, in one read: which of their profiles are aliases of merged
    ones, which of their types journeys listen to and which scenarios they trigger (a
    stack that has not listed those yet queries them); then, when they trigger some, in a
    second: those scenarios, the profiles' guards of their captures into them and the
    control percent (a body that does not parse fails on its own, later)."""
    messages = []
    for body in bodies:
        try:
            messages.append(parse_event(body))
        except ValueError:
            continue
    profiles = [(message.profile_db, message.profile_id) for message in messages]
    uow.read_ahead(ReadAhead(aliases=profiles, event_types=[m.event.type for m in messages]))
    captures = [
        (message.profile_db, uow.merged_into(*profile) or message.profile_id, scenario_id)
        for message, profile in zip(messages, profiles, strict=True)
        for scenario_id in uow.scenarios_for_event(message.event.type)
    ]
    if captures:
        scenarios = [scenario_id for *_, scenario_id in captures]
        uow.read_ahead(ReadAhead(scenarios=scenarios, guards=captures, control=True))


def seen(event_ids: list[str]) -> set[str]:
    """The ids among these (each once) whose events are already queued."""
    return UnitOfWork().storage.events_seen(event_ids)


def mark_queued(event_ids: list[str]) -> None:
    """Remember the event ids the API has queued, for a week."""
    if event_ids:
        UnitOfWork().storage.mark_events_queued(event_ids, clock_now())
