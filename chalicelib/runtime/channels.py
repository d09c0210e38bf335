"""The channel workers: queued messages and webhook calls reach their providers.

A row of the `messages` table goes `queued` → `sending` → `sent`, `failed` or `skipped`.
The worker claims the row with a conditional write before it calls the provider, so a
redelivered queue message is never sent twice. The row stays in the outbox's `pending`
index until it reaches a final state. A provider's clear refusal fails it; its passing
trouble (throttling, a 5xx, no connection) puts the row back to `queued` with a later
`retry_at`, backing off, until `MAX_ATTEMPTS`.

A call with no clear answer (a read timeout, a dropped connection, the worker's own
crash) may or may not have reached the provider, and is never made again blind:

- an e-mail goes `sending` → `unconfirmed` (a worker that died leaves it `sending`) and
  waits, for the lease from its claim, for SES's own record of it: the Send event tagged
  with our message id, which the feedback path records as the status `sent` (and which
  makes an `unconfirmed` row `sent` at once, `recorded`). When the lease ends the
  sweeper hands the row back: with that record it is `sent`; without, SES never took
  it, and it goes back to `queued` and out again;
- an SMS or a push has no such record: it is `failed` (`interrupted`), at once when the
  call went unanswered, after the lease when the worker died.

Before a message goes out the worker asks the delivery policy again
(`chalicelib/engine/delivery.py`, the rules the journey applied when it queued the
message) with the profile as it is now: the channel's consent, an address that is valid
and has not hard-bounced, and the send node's `recheck` condition. A message that may not
go out is `skipped` with its reason, and counted so in the statistics.

A message of a scenario with a `rate_limit` takes a send slot first (`runtime.pacing`);
one whose slot is later waits `queued` for it, without counting as an attempt.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.channels import DeliveryError, Gone, Unanswered, email, http, push, sms
from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.config import settings
from chalicelib.engine import delivery
from chalicelib.scenarios.addresses import valid_push_subscription
from chalicelib.scenarios.durations import format_datetime, parse_datetime
from chalicelib.scenarios.facts import Profile

from . import feedback, stats, tracking
from .commit import MAX_DELAY_SECONDS, REDISPATCH_AFTER
from .messages import CallWebhook, ChannelMessage, Deliver, WebhookDone, parse, parse_channel
from .segments import library
from .storage import (
    Changes,
    Conflict,
    HistoryMark,
    MessageMove,
    MessageRow,
    ReadAhead,
    StatsDelta,
    StatusWrite,
)
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(seconds=10)  # then 30 s, 90 s, 270 s: tripled each time
EARLY = timedelta(seconds=1)  # a message due this soon goes out now (SQS delays: whole s)
LEASE = REDISPATCH_AFTER  # a claim older than this was interrupted; SES's record came by then
UNSETTLED = ("sending", "unconfirmed")  # a claim whose provider call has not answered clearly
RECORDED = ("email",)  # channels whose provider keeps a record we can ask (SES's Send event)
PUSH_TTL = timedelta(hours=24)  # when the node sets none
MAX_SAVED_RESPONSE = 64 * 1024  # characters of JSON a webhook result may keep for `save_as`


class NotYet(Exception):
    """A message arrived before its delivery time; the queue hands it back later."""


@dataclass(frozen=True)
class Claim:
    """A row this worker holds: moved to `sending` by it, at `row.claimed_at`."""

    row: MessageRow


def deliver(message: ChannelMessage, uow: UnitOfWork | None = None) -> None:
    """Handle one channel-queue message: send the message (or make the call) of its row.

    A row that needs no send slot is claimed in the request that reads it, when it is
    `queued` and due: the common case, one write. Any other row is decided from what that
    request found, as a row read first. With a buffered `uow` (the queue's batch), the
    `message.sent` events go out with the batch's others, at its end."""
    now = clock_now()
    if _needs_no_slot(message):
        claim, row = _claim_if_due(message, now)
        if claim is not None:
            _make(claim, uow)
            return
    else:
        row = services().storage.outbox_message(message.message_id)
    if row is None:
        return
    if row.status in UNSETTLED and row.claimed_at is not None and row.claimed_at + LEASE <= now:
        resent = _settle(row)
        if resent is None:
            return
        row = resent
    if row.status != "queued":
        # handled already: nothing goes out again, but a crash may have lost what followed
        if row.kind == "webhook" and row.result is not None:
            announce_result(row, row.result)
        elif row.status == "sent" and "sent" not in (row.feedback or {}):
            feedback.record_row(row, "sent", row.sent_at or now, uow)
        elif row.status == "sent":  # this message stands for its event's outbox row
            feedback.announce_again(row, "sent", uow)
        return
    # `retry_at` after a failed attempt; `deliver_at` stays as the journey set it: it is
    # part of the key of the message in the profile's history.
    due = row.retry_at or row.deliver_at
    if due is not None and due > now + EARLY:
        raise NotYet(f"message {row.message_id} is due at {format_datetime(due)}")
    if row.kind == "message" and _waits_for_its_slot(row, now):
        return
    claim = _claim(row, now)
    if claim is None:
        return  # another delivery of this message claimed it first
    _make(claim, uow)


def read_ahead(uow: UnitOfWork, bodies: list[str]) -> None:
    """Before a batch of messages: the profiles they go to, in one read for the batch (a
    body that does not parse, or does not say whose it is, reads its own, later)."""
    profiles = []
    for body in bodies:
        try:
            message = parse_channel(body)
        except ValueError:
            continue
        if isinstance(message, Deliver) and message.profile_db and message.profile_id:
            profiles.append((message.profile_db, message.profile_id))
    uow.read_ahead(ReadAhead(profiles=profiles))


def _needs_no_slot(message: ChannelMessage) -> bool:
    """Whether the message is known, before its row is read, to take no send slot: a
    webhook call, or a message of a version without a `rate_limit`."""
    if isinstance(message, CallWebhook):
        return True
    if message.scenario_id is None or message.version is None:
        return False
    return services().storage.version(message.scenario_id, message.version).rate_limit is None


def _make(claim: Claim, uow: UnitOfWork | None) -> None:
    """The claimed row's send or call."""
    if claim.row.kind == "webhook":
        _call(claim)
    else:
        _send(claim, uow)


# --- messages ---------------------------------------------------------------------------


def _send(claim: Claim, uow: UnitOfWork | None) -> None:
    row = claim.row
    record = (uow or UnitOfWork()).profile(row.profile_db, row.profile_id, history=False)
    if uow is not None and row.channel == "push":  # its gone subscriptions may leave the profile
        uow.forget_profile(row.profile_db, row.profile_id)
    profile = record.view if record.exists else None
    reason = skip_reason(row, profile) or _recheck(row)
    if reason is not None:
        _finish(claim, "skipped", reason=reason)
        _skipped_in_history(row, reason)
        _count_skipped(row)
        logger.info("skipped", extra={"message_id": row.message_id, "reason": reason})
        return
    assert profile is not None  # skip_reason refuses a profile that is gone
    try:
        provider_id = _to_provider(row, profile)
    except Unanswered as error:
        _unanswered(claim, str(error))
        return
    except DeliveryError as error:  # `retryable`: the provider may take it later
        (_retry_or_fail if error.retryable else _fail)(claim, str(error))
        return
    except Exception as error:  # a bug: whether the provider took it is unknown
        logger.exception("delivery crashed", extra={"message_id": row.message_id})
        _unanswered(claim, f"crashed: {error!r}")
        return
    at = clock_now()

    def sent(recorded: StatusWrite) -> None:
        _finish(claim, "sent", at, provider_id=provider_id, recorded=recorded)

    if not feedback.record_with(row, "sent", at, sent, uow):
        # moved on, or SES's record of the send came first: the move, then the status
        _finish(claim, "sent", at, provider_id=provider_id)
        feedback.record_row(claim.row, "sent", at, uow)
    logger.info("sent", extra={"message_id": row.message_id, "channel": row.channel})


def _skipped_in_history(row: MessageRow, reason: str) -> None:
    """The profile's history said `sent` when the journey queued it; now it says why not
    (so `message` conditions and revenue do not count it). Not at all when the profile
    was erased."""
    services().storage.mark_history(
        HistoryMark(
            row.profile_db, row.profile_id, row.message_id, row.deliver_at, "skipped",
            clock_now(), replaces="sent", reason=reason,
        )
    )  # fmt: skip


def skip_reason(row: MessageRow, profile: Profile | None) -> str | None:
    """Why the message may not go out to this profile as it is now, or None
    (`delivery.refusal`: consent, a valid address that has not hard-bounced)."""
    if profile is None:
        return delivery.NO_ADDRESS  # erased since the journey sent it
    channel = row.channel or ""
    to = _subscriptions(row, profile.fields) if channel == "push" else row.values.get("to")
    return delivery.refusal(channel, to, profile)


def _recheck(row: MessageRow) -> str | None:
    """`recheck` when the send node's recheck condition, evaluated again now with the
    profile as it is (its events and messages too), is false; None when it holds or the
    node has none."""
    if not row.values.get("recheck"):
        return None
    storage = services().storage
    scenario = storage.version(row.scenario_id, row.version)
    profile = storage.profile(row.profile_db, row.profile_id, scenario.reads_history).view
    loaded = storage.instance(row.instance_id) if row.instance_id else None
    instance = loaded.instance if loaded is not None else None
    return delivery.recheck(scenario, row.node, instance, profile, clock_now(), library)


def _count_skipped(row: MessageRow) -> None:
    """Count a message skipped as it was to leave, like the journey counts the ones it skips.
    (After the row's move to `skipped`: a crash in between loses the count, never doubles it.)"""
    counter = stats.channel_counter("skipped", row.channel or "", row.node)
    day = clock_now().astimezone(UTC).date().isoformat()
    delta = StatsDelta(row.scenario_id, row.version, day, row.message_id, {counter: 1})
    services().storage.commit(Changes(stats=[delta]))


def _to_provider(row: MessageRow, profile: Profile) -> str | None:
    """Hand the message to its provider; returns the provider's id for it."""
    content = row.values
    if row.channel == "email":
        html = content.get("html")
        return email.send_email(
            message_id=row.message_id,
            sender=content.get("sender") or settings().email_from,
            to=content["to"],
            subject=content.get("subject") or "",
            text=content.get("body"),
            html=tracking.instrument(html, row.message_id) if html else None,
        )
    if row.channel == "sms":
        return sms.send_sms(
            message_id=row.message_id, to=content["to"], body=content.get("body") or ""
        )
    _push_all(row, profile)
    return None


def _subscriptions(row: MessageRow, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile's current subscriptions that this message has not reached yet."""
    reached = set(row.pushed)
    current = fields.get("push")
    return [
        s
        for s in (current if isinstance(current, list) else [])
        if valid_push_subscription(s) and s["endpoint"] not in reached
    ]


def _push_all(row: MessageRow, profile: Profile) -> None:
    """Push to every subscription; gone ones leave the profile. Raises when none took it."""
    content = row.values
    payload = {
        "message_id": row.message_id,
        "title": content.get("title") or content.get("subject"),
        "body": content.get("body"),
        "url": content.get("url"),
    }
    ttl = int(content.get("ttl_seconds") or PUSH_TTL.total_seconds())
    reached, gone, trouble, unanswered = 0, [], None, None
    for subscription in _subscriptions(row, profile.fields):
        try:
            push.send_push(subscription=subscription, payload=payload, ttl_seconds=ttl)
        except Gone:
            gone.append(subscription["endpoint"])
            continue
        except Unanswered as error:
            unanswered = error  # it may have arrived: never pushed to again, like a reached one
        except DeliveryError as error:
            trouble = error
            continue
        else:
            reached += 1
        # remembered, so a retry for another subscription does not push this one again
        services().storage.mark_pushed(row.message_id, subscription["endpoint"])
    if gone:
        _forget_subscriptions(profile, gone)
    if trouble is not None:
        raise trouble
    if not reached and not row.pushed:
        if unanswered is not None:
            raise unanswered
        raise DeliveryError("every push subscription is gone", retryable=False)


def _forget_subscriptions(profile: Profile, endpoints: list[str]) -> None:
    """Remove gone subscriptions from the profile as the worker read it, unless its list
    changed since (then the next push finds them gone again)."""
    services().storage.forget_push_subscriptions(profile, endpoints)
    logger.info(
        "push subscriptions gone", extra={"profile_id": profile.profile_id, "gone": endpoints}
    )


# --- webhook calls ----------------------------------------------------------------------


def _call(claim: Claim) -> None:
    row = claim.row
    request = row.values
    try:
        answer = http.call(
            method=request.get("method") or "POST",
            url=request["url"],
            headers=request.get("headers") or {},
            body=request.get("body"),
            timeout=float(request.get("timeout_seconds") or 10),
        )
    except DeliveryError as error:
        if error.retryable:
            _retry_or_fail(claim, str(error))
        else:  # never sent: a refused address, not an http(s) URL, an unsendable header
            _fail(claim, str(error), failure="refused")
        return
    if answer.status >= 500 or answer.status == 429:
        _retry_or_fail(claim, f"HTTP {answer.status}", status=answer.status)
        return
    body = answer.body
    if len(json.dumps(body, default=str)) > MAX_SAVED_RESPONSE:
        body = None  # too big to keep in the journey's vars
    result = {"ok": 200 <= answer.status < 300, "status": answer.status, "body": body}
    _finish(claim, "sent", result=result)
    announce_result(row, result)


def announce_result(row: MessageRow, result: dict[str, Any]) -> None:
    """Give a webhook call's result to its journey.

    Announced again when the call's queue message is redelivered: the journey ignores a
    result for a step it has left, so only a result lost in a crash makes a difference.
    """
    assert row.instance_id is not None  # a call is its journey's
    done = WebhookDone(
        instance_id=row.instance_id, scenario_id=row.scenario_id, step=row.values["step"], **result
    )
    services().queues.send("steps", [(done, 0)])


# --- the row's states -------------------------------------------------------------------


def _claim_if_due(message: ChannelMessage, now: datetime) -> tuple[Claim | None, MessageRow | None]:
    """queued and due → sending, by this worker only, in the request that reads the row:
    (the claim, its row), or (None, the row as it is: None when there is none)."""
    claimed, row = services().storage.claim_if_due(
        message.message_id, now, now + LEASE, now + EARLY
    )
    return (Claim(row) if claimed and row is not None else None), row


def _claim(row: MessageRow, now: datetime) -> Claim | None:
    """queued → sending, by this worker only; the row stays pending until the lease ends."""
    claimed = services().storage.claim_message(row.message_id, now, now + LEASE)
    return Claim(claimed) if claimed is not None else None


def _finish(claim: Claim, status: str, at: datetime | None = None, **values: Any) -> None:
    """sending (or unconfirmed) → a final state, out of the pending index. `at`: when it
    was sent (SES's record of it), if not now."""
    stamp = at or clock_now()
    ended = "sent_at" if status == "sent" else "ended_at"
    _move(claim, status, final=True, **{ended: stamp}, **values)


def _move(claim: Claim, status: str, **values: Any) -> None:
    """The row, still as this worker holds it (its status and claim), to `status`, with
    the other `MessageMove` values given; Conflict when it is not held so any more."""
    row = claim.row
    assert row.status is not None
    assert row.claimed_at is not None
    move = MessageMove(row.message_id, row.status, row.claimed_at, status, **values)
    services().storage.move_message(move)


def _retry_or_fail(claim: Claim, error: str, status: int | None = None) -> None:
    """Back to `queued` with a later delivery time, or `failed` after the last attempt."""
    attempts = claim.row.attempts
    if attempts >= MAX_ATTEMPTS:
        _fail(claim, f"{error} (after {attempts} attempts)", status=status)
        return
    now = clock_now()
    retry_at = now + FIRST_RETRY * 3 ** (attempts - 1)
    dispatch_at, delay = _again_at(retry_at, now)
    _move(
        claim,
        "queued",
        unpaced=True,  # a paced message takes a new slot for its next attempt
        retry_at=retry_at,
        dispatch_at=dispatch_at,
        last_error=error,
    )
    logger.warning(
        "delivery failed, retrying",
        extra={"message_id": claim.row.message_id, "error": error, "attempt": attempts},
    )
    if delay is not None:
        _queue_again(claim.row, delay)


def _again_at(at: datetime, now: datetime) -> tuple[int, int | None]:
    """A row put back `queued` until `at`: its `dispatch_at`, and the delay to queue its
    message with now — None when it is too far off or delays are not precise: then the
    sweeper sends it at `dispatch_at` (with a queue delay it is the backstop). Whole
    seconds rounded up: never before `at`."""
    delay = math.ceil((at - now).total_seconds())
    soon = settings().precise_delays and delay <= MAX_DELAY_SECONDS
    return math.ceil((at + LEASE if soon else at).timestamp()), max(0, delay) if soon else None


def _fail(claim: Claim, error: str, status: int | None = None, failure: str | None = None) -> None:
    """sending (or unconfirmed) → failed. `failure`: for a webhook call without an HTTP
    answer, the word its journey's path shows (`error refused`); without one, `timeout`."""
    row = claim.row
    logger.warning("delivery failed", extra={"message_id": row.message_id, "error": error})
    if row.kind == "webhook":
        result = {"ok": False, "status": status, "body": None, "error": error}
        if failure is not None:
            result["failure"] = failure
        _finish(claim, "failed", reason=error, result=result)
        announce_result(row, result)
        return
    _finish(claim, "failed", reason=error)
    feedback.record_row(claim.row, "failed", clock_now(), reason=error)


def _unanswered(claim: Claim, error: str) -> None:
    """The provider call had no clear answer: an e-mail waits for SES's record
    (`unconfirmed`, until the lease ends); a message of a channel without one is
    recorded failed rather than risk a second send."""
    if claim.row.channel not in RECORDED:
        _fail(claim, f"interrupted: {error}")
        return
    _move(claim, "unconfirmed", last_error=error)
    logger.warning(
        "no clear answer: waiting for the provider's record",
        extra={"message_id": claim.row.message_id, "error": error},
    )


def recorded(message: dict[str, Any]) -> None:
    """The provider's record of a send came (SES's Send event, recorded as `sent` in the
    row's feedback; `message` as `feedback.record` answers it): a row that waits for it,
    `unconfirmed`, is `sent` now rather than when its lease ends. A row still `sending` is
    its worker's (or the lease's) to settle."""
    recorded_at = parse_datetime((message.get("feedback") or {}).get("sent"))
    claimed_at = parse_datetime(message.get("claimed_at"))
    if message.get("status") != "unconfirmed" or recorded_at is None or claimed_at is None:
        return
    move = MessageMove(
        message["message_id"], "unconfirmed", claimed_at, "sent", final=True, sent_at=recorded_at
    )
    with suppress(Conflict):  # settled meanwhile, by the lease's end
        services().storage.move_message(move)


def _settle(row: MessageRow) -> MessageRow | None:
    """A claim past its lease whose provider call had no clear answer (or whose worker
    died): `sent` when the provider's record says it took the message, `failed`
    (`interrupted`) when there is no record to ask; an e-mail without a record is back to
    `queued` and returned, to be sent now. None when nothing more is to be done."""
    claim = Claim(row)
    recorded_at = (row.feedback or {}).get("sent")
    try:
        if recorded_at is not None:  # the Send event came: SES took it
            _finish(claim, "sent", at=recorded_at)
            return None
        if row.channel not in RECORDED:  # a webhook call has none either
            _fail(claim, "interrupted: the provider may or may not have taken it")
            return None
        if row.attempts >= MAX_ATTEMPTS:
            _fail(claim, f"interrupted: no answer and no record (after {row.attempts} attempts)")
            return None
        error = row.last_error or "interrupted"
        _move(claim, "queued", last_error=f"{error}; SES has no record of it: sent again")
    except Conflict:  # another delivery settled it
        return None
    logger.warning("no record of the send: sending again", extra={"message_id": row.message_id})
    return replace(row, status="queued")


def delivered(limit: int = 1000) -> list[dict[str, Any]]:
    """Messages the channels delivered, oldest first (`GET /local/sent`)."""
    rows = sorted(
        (row.sent_at, row.message_id, row)
        for row in services().storage.sent_messages()
        if row.sent_at is not None
    )
    return [
        {
            "message_id": row.message_id,
            "channel": row.channel or "webhook",
            "to": row.values.get("to", row.values.get("url")),
            "subject": row.values.get("subject") or row.values.get("title"),
            "body": row.values.get("body"),
            "scenario_id": row.scenario_id,
            "node": row.node,
            "profile_id": row.profile_id,
            "at": format_datetime(sent_at),
        }
        for sent_at, _, row in rows[:limit]
    ]


# --- sending discipline -----------------------------------------------------------------


def _waits_for_its_slot(row: MessageRow, now: datetime) -> bool:
    """A message of a scenario with a `rate_limit` takes a send slot before it is claimed
    (`runtime.pacing`; the limit of the version it was queued in). True when its slot is
    later: the row stays `queued` until then (`paced_at`, not an attempt), its message is
    queued again for that moment, and it leaves then without asking again."""
    if row.paced_at is not None:
        if row.paced_at > now:
            raise NotYet(
                f"message {row.message_id} has its slot at {format_datetime(row.paced_at)}"
            )
        return False
    storage = services().storage
    limit = storage.version(row.scenario_id, row.version).rate_limit
    if limit is None:
        return False
    slot = storage.take_send_slot(row.scenario_id, limit, now)
    if slot <= now:
        return False
    dispatch_at, delay = _again_at(slot, now)
    if not storage.pace_message(row.message_id, slot, dispatch_at):
        return True  # another delivery of it got there first (that slot goes unused)
    if delay is not None:
        _queue_again(row, delay)
    return True


def _queue_again(row: MessageRow, delay: int) -> None:
    """Queue the row's message again, to come in `delay` seconds."""
    assert row.queue is not None
    assert row.payload is not None
    services().queues.send(row.queue, [(parse(row.payload), delay)])
