"""Revenue (SPEC §3.3): `order.created` totals attributed to the scenarios that earned them.

An order counts for every scenario the profile was in when it was placed, or that sent
it a message in the 7 days before — once per scenario, in the stats of the version of
that journey (or message) on the order's day, in cents. Each attribution is written in
one transaction with an idempotency item `revenue#<event id>#<scenario id>`, so an event
redelivered after a crash never counts twice.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.engine import Instance
from chalicelib.scenarios.facts import Event

from . import stats
from .storage import Once, StatsDelta

logger = logging.getLogger(__name__)

ORDER = "order.created"
WINDOW = timedelta(days=7)  # an order this soon after a scenario's send is its revenue
REMEMBERED = timedelta(days=7)  # as long as event ids are (events.DEDUP_WINDOW)


def order_cents(event: Event) -> int | None:
    """The order's `data.total` in cents, or None when it is not an order with a number."""
    total = (event.data or {}).get("total") if event.type == ORDER else None
    if isinstance(total, bool) or not isinstance(total, int | float | Decimal):
        return None
    if isinstance(total, float) and not math.isfinite(total):
        return None
    try:
        return int((Decimal(str(total)) * 100).to_integral_value())
    except InvalidOperation:
        return None


def attribute(
    profile_db: str,
    profile_id: str,
    event: Event,
    instances: list[tuple[Instance, int, list[str]]],
) -> int:
    """Count an `order.created` event's total for each scenario it is attributed to (of
    the profile's `instances`, as read before the event moved them); how many counted now."""
    cents = order_cents(event)
    if cents is None or not event.id:
        return 0
    versions = _journeys_at(event.occurred_at, instances)
    sends = _recent_sends(profile_db, profile_id, event.occurred_at, instances)
    for scenario_id, version in sends.items():
        versions.setdefault(scenario_id, version)
    return sum(
        _count(scenario_id, version, event, cents) for scenario_id, version in versions.items()
    )


def _journeys_at(
    moment: datetime, instances: list[tuple[Instance, int, list[str]]]
) -> dict[str, int]:
    """Scenario → version of the journeys the profile was on at `moment` (not those the
    order itself starts: they enter at its very moment)."""
    found: dict[str, int] = {}
    for instance, _, _ in instances:
        ended = instance.ended_at
        if instance.entered_at < moment and (instance.active or (ended and ended >= moment)):
            found.setdefault(instance.scenario_id, instance.version)
    return found


def _recent_sends(
    profile_db: str,
    profile_id: str,
    moment: datetime,
    instances: list[tuple[Instance, int, list[str]]],
) -> dict[str, int]:
    """Scenario → version of the messages that went out to the profile in the WINDOW
    before `moment` (not skipped, not failed)."""
    storage = services().storage
    version_of = {instance.instance_id: instance.version for instance, _, _ in instances}
    found: dict[str, int] = {}
    for message in storage.messages_between(profile_db, profile_id, moment - WINDOW, moment):
        if "sent" not in message.statuses or "failed" in message.statuses:
            continue
        if message.scenario_id not in found:
            version = version_of.get(message.instance_id or "") or storage.message_version(
                message.message_id
            )
            if version is not None:
                found[message.scenario_id] = version
    return found


def _count(scenario_id: str, version: int, event: Event, cents: int) -> int:
    """Add the order to the scenario's revenue unless this event already was; 1 if now."""
    now = clock_now()
    counted = stats.commit_once(
        Once(f"revenue#{event.id}#{scenario_id}", now, now + REMEMBERED),
        StatsDelta(
            scenario_id, version, event.occurred_at.astimezone(UTC).date().isoformat(),
            f"{event.id}#{scenario_id}", {stats.REVENUE: cents},
        ),
    )  # fmt: skip
    if counted:
        logger.info("revenue counted", extra={"scenario_id": scenario_id, "cents": cents})
    return int(counted)
