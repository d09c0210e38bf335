"""Scheduled handlers (the minute tick) and the timers table's TTL stream backstop."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate
from chalice.app import CloudWatchEvent, DynamoDBEvent

from chalicelib.adapters.clock import now
from chalicelib.adapters.dynamodb_storage import expired_timer
from chalicelib.bootstrap import services
from chalicelib.config import settings
from chalicelib.runtime import commerce, measurement, membership, scenarios, schedules, sweeper
from chalicelib.runtime.messages import EventMessage, Wake
from chalicelib.runtime.storage import EventTimer

from .observability import logger

blueprint = Blueprint(__name__)

# Chalice needs a stream ARN here; `chalice package` replaces it through the merge
# template (infra/template.py) with the real stream of the stage's timers table.
TIMERS_STREAM_PLACEHOLDER = f"arn:aws:dynamodb:{settings().region}:000000000000:table/{settings().table('timers')}/stream/latest"


@blueprint.schedule(Rate(1, unit=Rate.MINUTES), name="sweep")
def sweep(event: CloudWatchEvent) -> dict[str, int]:
    """Fire due timers (≤ 60 s late) and re-dispatch outbox rows left behind."""
    swept = sweeper.sweep(now())
    return {"timers": swept.timers, "redispatched": swept.redispatched}


@blueprint.schedule(Rate(1, unit=Rate.MINUTES), name="schedule_tick")
def schedule_tick(event: CloudWatchEvent) -> dict[str, int]:
    """Start the schedule triggers' runs that are due, decide the experiments that are,
    once a day re-evaluate the segments relative to now, and check prices when the
    stack's price check is a schedule (the first time, list what the scenarios saved
    before the stack kept its listened event types listen to)."""
    moment = now()
    wired = services()
    return {
        "listed": scenarios.list_listeners(),
        "runs": schedules.tick(moment),
        "decided": measurement.decide_experiments(wired.storage, moment),
        "membership_runs": int(membership.daily(wired.storage, wired.queues, moment)),
        "price_checks": commerce.check_prices(moment),
    }


@blueprint.on_dynamodb_record(
    stream_arn=TIMERS_STREAM_PLACEHOLDER, batch_size=100, name="timer_expired"
)
def timer_expired(event: DynamoDBEvent) -> dict[str, Any]:
    """DynamoDB TTL deleted a timer the sweeper had not fired: wake the instance anyway
    (a derived event's timer: send its event).

    Only deletions by the TTL service count; a stale or repeated wake-up is a no-op, and
    a derived event sent again has the same id.
    """
    wakes: list[tuple[Wake, int]] = []
    derived: list[tuple[EventMessage, int]] = []
    for record in event.to_dict().get("Records", []):
        identity = record.get("userIdentity") or {}
        if (
            record.get("eventName") != "REMOVE"
            or identity.get("principalId") != "dynamodb.amazonaws.com"
        ):
            continue
        timer = expired_timer(record["dynamodb"].get("OldImage") or {})
        if isinstance(timer, EventTimer):
            derived.append((timer.event, 0))
        elif timer is not None:
            wake = Wake(
                instance_id=timer.instance_id, scenario_id=timer.scenario_id, step=timer.step
            )
            wakes.append((wake, 0))
    services().queues.send("steps", wakes)
    services().queues.send("events", derived)
    woken = len(wakes) + len(derived)
    if woken:
        logger.info("timers expired by TTL", extra={"count": woken})
    return {"woken": woken}
