"""Delivery feedback: a message's status changes, counted once, and journeys hear of it.

A status (`sent` from the channel worker; `delivered`, `opened`, `clicked`, `bounced`,
`unsubscribed`, `failed` from `POST /feedback`, SES notifications and tracking links)
takes effect once per message however often it is reported, even concurrently: its flag
`feedback.<status>` on the message row is set with a conditional write, in one
transaction with the channel counter and the outbox row of its `message.<status>` event
(SPEC §4). Only the report whose transaction wins goes on to update the profile's message
history (which `message` conditions read) and, for `unsubscribed`, revoke the channel's
consent, for a hard `bounced`, mark the address invalid. `clicked` implies `opened`.

SES's own event notifications are read by `ses_events`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import profiles as profile_items
from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.dynamodb_storage import shard_of
from chalicelib.bootstrap import services
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from . import stats
from .commit import REDISPATCH_AFTER, epoch
from .messages import EventBody, EventMessage
from .profiles import set_consent

logger = logging.getLogger(__name__)

STATUSES = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")  # callers'
ALL_STATUSES = ("sent", *STATUSES)  # and the channel worker's `sent`


class UnknownMessage(LookupError):
    """No message with that id: never sent, or erased with its profile."""


# --- recording a status ----------------------------------------------------------------


def record(message_id: str, status: str, at: datetime, **details: Any) -> dict[str, Any]:
    """Record a status of a message once and return its row (with `feedback` {status: at}).

    `details`: `url` (clicked), `reason` (failed, bounced), `hard` (bounced: the address
    is invalid). Raises UnknownMessage for a message id that is not a message's.
    """
    record_row(message(message_id), status, at, **details)
    return message(message_id)


def record_row(row: dict[str, Any], status: str, at: datetime, **details: Any) -> None:
    """`record` for a message row already read (the channel worker's)."""
    if status not in ALL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ALL_STATUSES)}, got {status!r}")
    if status == "clicked":  # mail clients that block images report no open
        _record_once(row, "opened", at, {})
    _record_once(row, status, at, details)


def message(message_id: str) -> dict[str, Any]:
    """The message's row; UnknownMessage unless it is a message's."""
    row = store.messages.get({"message_id": message_id})
    if row is None or row.get("kind") != "message":
        raise UnknownMessage(f"no message {message_id!r}")
    return row


def _record_once(row: dict[str, Any], status: str, at: datetime, details: dict[str, Any]) -> None:
    """Flag, count and announce the status unless the row has it; then its effects."""
    message_id = row["message_id"]
    if status in (row.get("feedback") or {}):
        return  # already known: feedback is delivered at least once
    if "feedback" not in row:
        _start_feedback(message_id)
    event = _event(row, status, at, details)
    outbox_id, body = _outbox(row, event)

    def counted() -> bool:
        return status in (message(message_id).get("feedback") or {})

    if not stats.count_once(_writes(row, status, at, outbox_id, body), counted):
        return
    services().queues.send("events", [(body, 0)])  # its consumer takes the row out
    _effects(row, status, at, details)


def _start_feedback(message_id: str) -> None:
    """Give the row an empty `feedback` map, so statuses can be set in it one by one."""
    try:
        store.messages.update(
            {"message_id": message_id},
            "SET feedback = :empty",
            "attribute_exists(message_id) AND attribute_not_exists(feedback)",
            values={":empty": {}},
        )
    except ConditionFailed:
        message(message_id)  # erased meanwhile (UnknownMessage), or another report made it


def _writes(
    row: dict[str, Any], status: str, at: datetime, outbox_id: str, body: EventMessage
) -> list[dict[str, Any]]:
    """The flag (the condition of it all), the channel counter and the event's outbox row."""
    flag = store.messages.tx_update(
        {"message_id": row["message_id"]},
        "SET feedback.#s = :at",
        "attribute_exists(message_id) AND attribute_not_exists(feedback.#s)",
        names={"#s": status},
        values={":at": format_datetime(at)},
    )
    counter = stats.counter_update(
        row["scenario_id"],
        int(row["version"]),
        at.astimezone(UTC).date(),
        row["message_id"],
        {stats.channel_counter(status, row["channel"], row["node"]): 1},
    )
    now = clock_now()
    outbox = store.messages.tx_put(
        {
            "message_id": outbox_id,
            "kind": "event",
            "instance_id": row.get("instance_id"),
            "scenario_id": row["scenario_id"],
            "version": row["version"],
            "profile_db": row["profile_db"],
            "profile_id": row["profile_id"],
            "created_at": format_datetime(now),
            "queue": "events",
            "payload": body.model_dump(mode="json", exclude_none=True),
            "pending_shard": shard_of(outbox_id),
            "dispatch_at": epoch(now + REDISPATCH_AFTER),
        }
    )
    return [flag, counter, outbox]


def _event(row: dict[str, Any], status: str, at: datetime, details: dict[str, Any]) -> Event:
    """The `message.<status>` event (SPEC §4)."""
    data: dict[str, Any] = {
        "message_id": row["message_id"],
        "scenario_id": row["scenario_id"],
        "node": row["node"],
        "channel": row["channel"],
    }
    if status == "clicked" and details.get("url"):
        data["url"] = details["url"]
    if status in ("failed", "bounced") and details.get("reason"):
        data["reason"] = details["reason"]
    return Event(f"message.{status}", at, data, id=f"{row['message_id']}:{status}")


def _outbox(row: dict[str, Any], event: Event) -> tuple[str, EventMessage]:
    """The outbox row id and queue message of the event: the sweeper sends it if a crash
    loses the dispatch after the commit (the row is deleted once the event is queued)."""
    outbox_id = f"feedback-{event.id}"
    message = EventMessage(
        profile_db=row["profile_db"], profile_id=row["profile_id"], event=EventBody.of(event),
        row_id=outbox_id,
    )  # fmt: skip
    return outbox_id, message


def _effects(row: dict[str, Any], status: str, at: datetime, details: dict[str, Any]) -> None:
    """What a status changes beyond the message: its history, consent, the address."""
    partition = store.profile_partition(row["profile_db"], row["profile_id"])
    try:
        store.profiles.update(
            {"pk": partition, "sk": f"M#{row.get('deliver_at')}#{row['message_id']}"},
            "SET statuses.#s = :at",
            "attribute_exists(pk)",
            names={"#s": status},
            values={":at": format_datetime(at)},
        )
    except ConditionFailed:
        logger.info("no history item for message %s (profile erased?)", row["message_id"])
    if status == "unsubscribed":
        revoke_consent(row["profile_db"], row["profile_id"], row["channel"])
    if status == "bounced" and details.get("hard") and isinstance(row.get("to"), str):
        mark_invalid(row["profile_db"], row["profile_id"], row["channel"], row["to"])


def revoke_consent(profile_db: str, profile_id: str, channel: str) -> None:
    """Withdraw the profile's consent to a channel (`profile.field_changed` announces it)."""
    set_consent(profile_db, profile_id, channel, False)


def mark_invalid(profile_db: str, profile_id: str, channel: str, address: str) -> None:
    """Remember that `address` hard-bounced on `channel`: the profile item's top-level
    `invalid` map {channel: address}. The channel worker skips a send to that very
    address (`no_address`); a changed address is tried again."""
    profile_items.mark_invalid(profile_db, profile_id, channel, address)
