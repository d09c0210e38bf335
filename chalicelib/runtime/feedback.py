"""Delivery feedback: a message's status changes, counted once, and journeys hear of it.

A status (`sent` from the channel worker; `delivered`, `opened`, `clicked`, `bounced`,
`unsubscribed`, `failed` from `POST /feedback`, SES notifications and tracking links)
takes effect once per message however often it is reported, even concurrently: its flag
`feedback.<status>` on the message row is set with a conditional write, in one
transaction with the channel counter and the outbox row of its `message.<status>` event
(SPEC §4). Only the report whose transaction wins goes on to update the profile's message
history (which `message` conditions read) and, for `unsubscribed`, revoke the channel's
consent, for a hard `bounced`, mark the address invalid. `clicked` implies `opened`.
The history's mark stays out of the transaction: a transactional write costs twice the
write units, more than the request it would save; the journey wrote `sent` in the history
when it queued the message, at its planned moment, so a message sent within a second of
it needs no mark. The channel worker's `sent` goes into the write that moves the row to
`sent` (`record_with`): one transaction for both, and its event has no outbox row: the
channel queue's message, which comes back until its batch has queued the event, stands
for it.

SES's own event notifications are read by `ses_events`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from . import stats
from .commit import REDISPATCH_AFTER
from .messages import EventBody, EventMessage
from .profiles import set_consent
from .storage import (
    Conflict,
    Dispatch,
    HistoryMark,
    MessageRow,
    OutboxRow,
    StatsDelta,
    StatusRecord,
    StatusWrite,
)
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# A message sent this soon after its planned moment keeps the history's `sent` of it
AS_PLANNED = timedelta(seconds=1)
STATUSES = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")  # callers'
ALL_STATUSES = ("sent", *STATUSES)  # and the channel worker's `sent`


class UnknownMessage(LookupError):
    """No message with that id: never sent, or erased with its profile."""


# --- recording a status ----------------------------------------------------------------


def record(
    message_id: str, status: str, at: datetime, uow: UnitOfWork | None = None, **details: Any
) -> dict[str, Any]:
    """Record a status of a message once and return the message as `message` does.

    `details`: `url` (clicked), `reason` (failed, bounced), `hard` (bounced: the address
    is invalid). `uow`: as for `record_row`. Raises UnknownMessage for a message id that
    is not a message's.
    """
    record_row(message_row(message_id), status, at, uow, **details)
    return message(message_id)


def record_row(
    row: MessageRow, status: str, at: datetime, uow: UnitOfWork | None = None, **details: Any
) -> None:
    """`record` for a message row already read (the channel worker's). With a buffered
    `uow` (a channel queue's batch) the status's event is queued with the batch's others,
    at its end (its outbox row is written first: a crash before leaves it to the sweeper)."""
    if status not in ALL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ALL_STATUSES)}, got {status!r}")
    if status == "clicked":  # mail clients that block images report no open
        _record_once(row, "opened", at, {}, uow)
    _record_once(row, status, at, details, uow)


def message(message_id: str) -> dict[str, Any]:
    """The message as `POST /feedback` answers it: `message_id`, `status`, `claimed_at`
    and `feedback`, the statuses recorded {status: at}. UnknownMessage unless it is a
    message's id."""
    row = message_row(message_id)
    return {
        "message_id": row.message_id,
        "status": row.status,
        "claimed_at": format_datetime(row.claimed_at) if row.claimed_at else None,
        "feedback": {name: format_datetime(at) for name, at in (row.feedback or {}).items()},
    }


def message_row(message_id: str) -> MessageRow:
    """The message's row; UnknownMessage unless it is a message's."""
    row = services().storage.outbox_message(message_id)
    if row is None or row.kind != "message":
        raise UnknownMessage(f"no message {message_id!r}")
    return row


def _record_once(
    row: MessageRow, status: str, at: datetime, details: dict[str, Any], uow: UnitOfWork | None
) -> None:
    """Unless the row has the status: its effects, then flag, count and announce it.

    The effects (the history's mark, a withdrawn consent, an invalid address) come first
    and are idempotent: a crash after them or after the flag's transaction leaves a status
    that a redelivery applies again or finds recorded, never one recorded without them;
    and the history shows the status before its event reaches a journey's condition."""
    message_id = row.message_id
    if status in (row.feedback or {}):
        return  # already known: feedback is delivered at least once
    write, body = _status_write(row, status, at, details)

    def counted() -> bool:
        return status in (message_row(message_id).feedback or {})

    _effects(row, status, at, details)
    storage = services().storage
    if not stats.count_once(lambda: storage.record_status(write), counted):
        return
    (uow or UnitOfWork()).send("events", [body])  # its consumer takes the row out


def record_with(
    row: MessageRow, status: str, at: datetime, move: Callable[[StatusWrite], None],
    uow: UnitOfWork | None = None,
) -> bool:  # fmt: skip
    """Record a status the row has not reached yet in the write that moves the row
    (`move`, given the status's write: the channel worker's `sent`), its effects first as
    `record_row`'s; False, with nothing of the write made, when it conflicted or the row
    has no map of statuses yet (then move it and `record_row` one after the other).

    The event has no outbox row: the caller's queue message is its outbox. Until the
    event is queued that message comes back, finds the status recorded and announces it
    again (`announce_again`)."""
    if row.feedback is None or status in row.feedback:
        return False
    write, body = _status_write(row, status, at, {}, outbox=False)
    _effects(row, status, at, {})
    try:
        move(write)
    except Conflict:
        return False
    (uow or UnitOfWork()).send("events", [body])
    return True


def announce_again(row: MessageRow, status: str, uow: UnitOfWork | None = None) -> None:
    """Queue the `message.<status>` event of a status the row has recorded, again: its
    consumer takes an event it has handled as a no-op."""
    at = (row.feedback or {})[status]
    (uow or UnitOfWork()).send("events", [_announcement(row, _event(row, status, at, {}))])


def _status_write(
    row: MessageRow, status: str, at: datetime, details: dict[str, Any], outbox: bool = True
) -> tuple[StatusWrite, EventMessage]:
    """The status's flag, counter and (unless not `outbox`) event row, and the event's
    queue message."""
    body = _announcement(row, _event(row, status, at, details))
    row_written = None
    if outbox:
        row_written, body = _outbox(row, body)
    flag = StatusRecord(row.message_id, status, at, started=row.feedback is not None)
    counter = stats.channel_counter(status, row.channel or "", row.node)
    day = at.astimezone(UTC).date().isoformat()
    counters = StatsDelta(row.scenario_id, row.version, day, row.message_id, {counter: 1})
    return StatusWrite(flag, counters, row_written), body


def _event(row: MessageRow, status: str, at: datetime, details: dict[str, Any]) -> Event:
    """The `message.<status>` event (SPEC §4)."""
    data: dict[str, Any] = {
        "message_id": row.message_id,
        "scenario_id": row.scenario_id,
        "node": row.node,
        "channel": row.channel,
    }
    if status == "clicked" and details.get("url"):
        data["url"] = details["url"]
    if status in ("failed", "bounced") and details.get("reason"):
        data["reason"] = details["reason"]
    return Event(f"message.{status}", at, data, id=f"{row.message_id}:{status}")


def _announcement(row: MessageRow, event: Event) -> EventMessage:
    """The queue message of a status's event."""
    return EventMessage(
        profile_db=row.profile_db, profile_id=row.profile_id, event=EventBody.of(event)
    )


def _outbox(row: MessageRow, message: EventMessage) -> tuple[OutboxRow, EventMessage]:
    """The outbox row of the event's message, and the message naming it: the sweeper
    sends it if a crash loses the dispatch after the commit (the row is deleted once the
    event is queued)."""
    outbox_id = f"feedback-{message.event.id}"
    message = message.with_row(outbox_id)
    now = clock_now()
    journey = {"instance_id": row.instance_id, "scenario_id": row.scenario_id,
               "version": row.version}  # fmt: skip
    dispatch = Dispatch("events", message, now, now + REDISPATCH_AFTER)
    outbox = OutboxRow(
        outbox_id, "event", now, row.profile_db, row.profile_id, values=journey, dispatch=dispatch
    )
    return outbox, message


def _effects(row: MessageRow, status: str, at: datetime, details: dict[str, Any]) -> None:
    """What a status changes beyond the message: its history, consent, the address."""
    mark = HistoryMark(row.profile_db, row.profile_id, row.message_id, row.deliver_at, status, at)
    if not _in_history(row, status, at) and not services().storage.mark_history(mark):
        logger.info("no history item for message %s (profile erased?)", row.message_id)
    if status == "unsubscribed":
        revoke_consent(row.profile_db, row.profile_id, row.channel or "")
    to = row.values.get("to")
    if status == "bounced" and details.get("hard") and isinstance(to, str):
        mark_invalid(row.profile_db, row.profile_id, row.channel or "", to)


def _in_history(row: MessageRow, status: str, at: datetime) -> bool:
    """Whether the history has the status at `at` already: a `sent` within a second of its
    planned moment, which the journey wrote there when it queued the message."""
    planned = row.deliver_at
    return status == "sent" and planned is not None and at - planned < AS_PLANNED


def revoke_consent(profile_db: str, profile_id: str, channel: str) -> None:
    """Withdraw the profile's consent to a channel (`profile.field_changed` announces it)."""
    set_consent(profile_db, profile_id, channel, False)


def mark_invalid(profile_db: str, profile_id: str, channel: str, address: str) -> None:
    """Remember that `address` hard-bounced on `channel`: the profile item's top-level
    `invalid` map {channel: address}. The channel worker skips a send to that very
    address (`no_address`); a changed address is tried again."""
    services().storage.mark_address_invalid(profile_db, profile_id, channel, address)
