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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import profiles as profile_items
from chalicelib.adapters import store
from chalicelib.adapters.channels import DeliveryError, Gone, Unanswered, email, http, push, sms
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import time_value
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.bootstrap import services
from chalicelib.config import settings
from chalicelib.engine import delivery
from chalicelib.scenarios.addresses import valid_push_subscription
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Profile

from . import feedback, stats, tracking
from .commit import MAX_DELAY_SECONDS, REDISPATCH_AFTER, epoch
from .messages import ChannelMessage, WebhookDone, parse
from .segments import library
from .storage import Changes, StatsDelta

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(seconds=10)  # then 30 s, 90 s, 270 s: tripled each time
LEASE = REDISPATCH_AFTER  # a claim older than this was interrupted; SES's record came by then
UNSETTLED = ("sending", "unconfirmed")  # a claim whose provider call has not answered clearly
RECORDED = ("email",)  # channels whose provider keeps a record we can ask (SES's Send event)
PUSH_TTL = timedelta(hours=24)  # when the node sets none
MAX_SAVED_RESPONSE = 64 * 1024  # characters of JSON a webhook result may keep for `save_as`


class NotYet(Exception):
    """A message arrived before its delivery time; the queue hands it back later."""


@dataclass(frozen=True)
class Claim:
    """A row this worker holds: moved to `sending` by it, at `row["claimed_at"]`."""

    row: dict[str, Any]

    @property
    def key(self) -> dict[str, str]:
        return {"message_id": self.row["message_id"]}


def deliver(message: ChannelMessage) -> None:
    """Handle one channel-queue message: send the message (or make the call) of its row."""
    row = store.messages.get({"message_id": message.message_id})
    if row is None:
        return
    now = clock_now()
    if row.get("status") in UNSETTLED and time_value(row["claimed_at"]) + LEASE <= now:
        resent = _settle(row)
        if resent is None:
            return
        row = resent
    status = row.get("status")
    if status != "queued":
        # handled already: nothing goes out again, but a crash may have lost what followed
        if row["kind"] == "webhook" and "result" in row:
            announce_result(row, row["result"])
        elif status == "sent" and "sent" not in (row.get("feedback") or {}):
            feedback.record_row(row, "sent", time_value(row["sent_at"]) or now)
        return
    # `retry_at` after a failed attempt; `deliver_at` stays as the journey set it: it is
    # part of the key of the message in the profile's history.
    due_text = row.get("retry_at") or row.get("deliver_at")
    due = time_value(due_text)
    if due is not None and due > now + timedelta(seconds=1):
        raise NotYet(f"message {row['message_id']} is due at {due_text}")
    if row["kind"] == "message" and _waits_for_its_slot(row, now):
        return
    claim = _claim(row, now)
    if claim is None:
        return  # another delivery of this message claimed it first
    if row["kind"] == "webhook":
        _call(claim)
    else:
        _send(claim)


# --- messages ---------------------------------------------------------------------------


def _send(claim: Claim) -> None:
    row = claim.row
    profile = store.profiles.get(
        {"pk": store.profile_partition(row["profile_db"], row["profile_id"]), "sk": "P"}
    )
    reason = skip_reason(row, profile) or _recheck(row)
    if reason is not None:
        _finish(claim, "skipped", reason=reason)
        _skipped_in_history(row, reason)
        _count_skipped(row)
        logger.info("skipped", extra={"message_id": row["message_id"], "reason": reason})
        return
    try:
        provider_id = _to_provider(row, profile)
    except Unanswered as error:
        _unanswered(claim, str(error))
        return
    except DeliveryError as error:  # `retryable`: the provider may take it later
        (_retry_or_fail if error.retryable else _fail)(claim, str(error))
        return
    except Exception as error:  # a bug: whether the provider took it is unknown
        logger.exception("delivery crashed", extra={"message_id": row["message_id"]})
        _unanswered(claim, f"crashed: {error!r}")
        return
    _finish(claim, "sent", provider_id=provider_id)
    feedback.record_row(claim.row, "sent", clock_now())
    logger.info("sent", extra={"message_id": row["message_id"], "channel": row["channel"]})


def _skipped_in_history(row: dict[str, Any], reason: str) -> None:
    """The profile's history said `sent` when the journey queued it; now it says why not
    (so `message` conditions and revenue do not count it)."""
    partition = store.profile_partition(row["profile_db"], row["profile_id"])
    with suppress(ConditionFailed):  # the profile was erased
        store.profiles.update(
            {"pk": partition, "sk": f"M#{row['deliver_at']}#{row['message_id']}"},
            "SET statuses.skipped = :at, reason = :reason REMOVE statuses.sent",
            "attribute_exists(pk)",
            values={":at": format_datetime(clock_now()), ":reason": reason},
        )


def skip_reason(row: dict[str, Any], profile: dict[str, Any] | None) -> str | None:
    """Why the message may not go out to this profile as it is now, or None
    (`delivery.refusal`: consent, a valid address that has not hard-bounced)."""
    if profile is None:
        return delivery.NO_ADDRESS  # erased since the journey sent it
    view = Profile(
        profile.get("profile_id", row.get("profile_id", "")),
        profile.get("fields") or {},
        invalid=profile.get("invalid") or {},
    )
    channel = row["channel"]
    to = _subscriptions(row, view.fields) if channel == "push" else row.get("to")
    return delivery.refusal(channel, to, view)


def _recheck(row: dict[str, Any]) -> str | None:
    """`recheck` when the send node's recheck condition, evaluated again now with the
    profile as it is (its events and messages too), is false; None when it holds or the
    node has none."""
    if not row.get("recheck"):
        return None
    storage = services().storage
    scenario = storage.version(row["scenario_id"], int(row["version"]))
    profile = storage.profile(row["profile_db"], row["profile_id"]).view
    loaded = storage.instance(row["instance_id"])
    instance = loaded.instance if loaded is not None else None
    return delivery.recheck(scenario, row["node"], instance, profile, clock_now(), library)


def _count_skipped(row: dict[str, Any]) -> None:
    """Count a message skipped as it was to leave, like the journey counts the ones it skips.
    (After the row's move to `skipped`: a crash in between loses the count, never doubles it.)"""
    counter = stats.channel_counter("skipped", row["channel"], row["node"])
    day = clock_now().astimezone(UTC).date().isoformat()
    delta = StatsDelta(
        row["scenario_id"], int(row["version"]), day, row["message_id"], {counter: 1}
    )
    services().storage.commit(Changes(stats=[delta]))


def _to_provider(row: dict[str, Any], profile: dict[str, Any]) -> str | None:
    """Hand the message to its provider; returns the provider's id for it."""
    channel = row["channel"]
    if channel == "email":
        html = row.get("html")
        return email.send_email(
            message_id=row["message_id"],
            sender=row.get("sender") or settings().email_from,
            to=row["to"],
            subject=row.get("subject") or "",
            text=row.get("body"),
            html=tracking.instrument(html, row["message_id"]) if html else None,
        )
    if channel == "sms":
        return sms.send_sms(message_id=row["message_id"], to=row["to"], body=row.get("body") or "")
    _push_all(row, profile)
    return None


def _subscriptions(row: dict[str, Any], fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile's current subscriptions that this message has not reached yet."""
    reached = set(row.get("pushed") or ())
    current = fields.get("push")
    return [
        s
        for s in (current if isinstance(current, list) else [])
        if valid_push_subscription(s) and s["endpoint"] not in reached
    ]


def _push_all(row: dict[str, Any], profile: dict[str, Any]) -> None:
    """Push to every subscription; gone ones leave the profile. Raises when none took it."""
    payload = {
        "message_id": row["message_id"],
        "title": row.get("title") or row.get("subject"),
        "body": row.get("body"),
        "url": row.get("url"),
    }
    ttl = int(row.get("ttl_seconds") or PUSH_TTL.total_seconds())
    reached, gone, trouble, unanswered = 0, [], None, None
    for subscription in _subscriptions(row, profile.get("fields") or {}):
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
        store.messages.update(
            {"message_id": row["message_id"]},
            "SET pushed = list_append(if_not_exists(pushed, :none), :one)",
            values={":none": [], ":one": [subscription["endpoint"]]},
        )
    if gone:
        _forget_subscriptions(profile, gone)
    if trouble is not None:
        raise trouble
    if not reached and not row.get("pushed"):
        if unanswered is not None:
            raise unanswered
        raise DeliveryError("every push subscription is gone", retryable=False)


def _forget_subscriptions(profile: dict[str, Any], endpoints: list[str]) -> None:
    """Remove gone subscriptions from the profile as the worker read it, unless its list
    changed since (then the next push finds them gone again)."""
    profile_id = profile["profile_id"]
    profile_items.remove_push_subscriptions(profile, endpoints)
    logger.info("push subscriptions gone", extra={"profile_id": profile_id, "gone": endpoints})


# --- webhook calls ----------------------------------------------------------------------


def _call(claim: Claim) -> None:
    row = claim.row
    try:
        answer = http.call(
            method=row.get("method") or "POST",
            url=row["url"],
            headers=row.get("headers") or {},
            body=row.get("body"),
            timeout=float(row.get("timeout_seconds") or 10),
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


def announce_result(row: dict[str, Any], result: dict[str, Any]) -> None:
    """Give a webhook call's result to its journey.

    Announced again when the call's queue message is redelivered: the journey ignores a
    result for a step it has left, so only a result lost in a crash makes a difference.
    """
    done = WebhookDone(instance_id=row["instance_id"], step=row["step"], **result)
    services().queues.send("steps", [(done, 0)])


# --- the row's states -------------------------------------------------------------------


def _claim(row: dict[str, Any], now: datetime) -> Claim | None:
    """queued → sending, by this worker only; the row stays pending until the lease ends."""
    stamp = format_datetime(now)
    try:
        store.messages.update(
            {"message_id": row["message_id"]},
            "SET #s = :sending, claimed_at = :now, dispatch_at = :lease,"
            " attempts = if_not_exists(attempts, :zero) + :one,"
            " feedback = if_not_exists(feedback, :none)",
            "#s = :queued",
            names={"#s": "status"},
            values={
                ":sending": "sending",
                ":queued": "queued",
                ":now": stamp,
                ":lease": epoch(now + LEASE),
                ":zero": 0,
                ":one": 1,
                ":none": {},  # statuses are recorded into it (feedback.record)
            },
        )
    except ConditionFailed:
        return None
    claimed = {"status": "sending", "claimed_at": stamp, "attempts": row.get("attempts", 0) + 1}
    return Claim({"feedback": {}, **row, **claimed})


def _finish(claim: Claim, status: str, at: str | None = None, **values: Any) -> None:
    """sending (or unconfirmed) → a final state, out of the pending index. `at`: when it
    was sent (SES's record of it), if not now."""
    stamp = at or format_datetime(clock_now())
    ended = "sent_at" if status == "sent" else "ended_at"
    _move(claim, status, remove="pending_shard, dispatch_at", **{ended: stamp}, **values)


def _move(claim: Claim, status: str, remove: str = "", **values: Any) -> None:
    """The row, still as this worker holds it (its status and claim), to `status`, with
    `values` set (a None one is left alone) and the `remove` attributes removed."""
    names = {"#s": "status"}
    expression_values: dict[str, Any] = {
        ":to": status,
        ":held": claim.row["status"],
        ":claimed": claim.row["claimed_at"],
    }
    sets = ["#s = :to"]
    for index, (name, value) in enumerate(values.items()):
        if value is not None:
            names[f"#v{index}"] = name
            expression_values[f":v{index}"] = value
            sets.append(f"#v{index} = :v{index}")
    store.messages.update(
        claim.key,
        "SET " + ", ".join(sets) + (f" REMOVE {remove}" if remove else ""),
        "#s = :held AND claimed_at = :claimed",
        names=names,
        values=expression_values,
    )


def _retry_or_fail(claim: Claim, error: str, status: int | None = None) -> None:
    """Back to `queued` with a later delivery time, or `failed` after the last attempt."""
    attempts = claim.row["attempts"]
    if attempts >= MAX_ATTEMPTS:
        _fail(claim, f"{error} (after {attempts} attempts)", status=status)
        return
    now = clock_now()
    retry_at = now + FIRST_RETRY * 3 ** (attempts - 1)
    dispatch_at, delay = _again_at(retry_at, now)
    _move(
        claim,
        "queued",
        remove="paced_at",  # a paced message takes a new slot for its next attempt
        retry_at=format_datetime(retry_at),
        dispatch_at=dispatch_at,
        last_error=error,
    )
    logger.warning(
        "delivery failed, retrying",
        extra={"message_id": claim.row["message_id"], "error": error, "attempt": attempts},
    )
    if delay is not None:
        services().queues.send(claim.row["queue"], [(parse(claim.row["payload"]), delay)])


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
    logger.warning("delivery failed", extra={"message_id": row["message_id"], "error": error})
    if row["kind"] == "webhook":
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
    if claim.row["channel"] not in RECORDED:
        _fail(claim, f"interrupted: {error}")
        return
    _move(claim, "unconfirmed", last_error=error)
    logger.warning(
        "no clear answer: waiting for the provider's record",
        extra={"message_id": claim.row["message_id"], "error": error},
    )


def recorded(row: dict[str, Any]) -> None:
    """The provider's record of a send came (SES's Send event, recorded as `sent` in the
    row's feedback): a row that waits for it, `unconfirmed`, is `sent` now rather than when
    its lease ends. A row still `sending` is its worker's (or the lease's) to settle."""
    recorded_at = (row.get("feedback") or {}).get("sent")
    if row.get("status") != "unconfirmed" or recorded_at is None:
        return
    with suppress(ConditionFailed):  # settled meanwhile, by the lease's end
        _finish(Claim(row), "sent", at=recorded_at)


def _settle(row: dict[str, Any]) -> dict[str, Any] | None:
    """A claim past its lease whose provider call had no clear answer (or whose worker
    died): `sent` when the provider's record says it took the message, `failed`
    (`interrupted`) when there is no record to ask; an e-mail without a record is back to
    `queued` and returned, to be sent now. None when nothing more is to be done."""
    claim = Claim(row)
    recorded_at = (row.get("feedback") or {}).get("sent")
    try:
        if recorded_at is not None:  # the Send event came: SES took it
            _finish(claim, "sent", at=recorded_at)
            return None
        if row.get("channel") not in RECORDED:  # a webhook call has none either
            _fail(claim, "interrupted: the provider may or may not have taken it")
            return None
        if row.get("attempts", 0) >= MAX_ATTEMPTS:
            _fail(claim, f"interrupted: no answer and no record (after {row['attempts']} attempts)")
            return None
        error = row.get("last_error") or "interrupted"
        _move(claim, "queued", last_error=f"{error}; SES has no record of it: sent again")
    except ConditionFailed:  # another delivery settled it
        return None
    logger.warning("no record of the send: sending again", extra={"message_id": row["message_id"]})
    return {**row, "status": "queued"}


def delivered(limit: int = 1000) -> list[dict[str, Any]]:
    """Messages the channels delivered, oldest first (`GET /local/sent`)."""
    rows = list(
        store.messages.scan(filter="#s = :sent", names={"#s": "status"}, values={":sent": "sent"})
    )
    rows.sort(key=lambda row: (row["sent_at"], row["message_id"]))
    return [
        {
            "message_id": row["message_id"],
            "channel": row.get("channel", "webhook"),
            "to": row.get("to", row.get("url")),
            "subject": row.get("subject") or row.get("title"),
            "body": row.get("body"),
            "scenario_id": row["scenario_id"],
            "node": row["node"],
            "profile_id": row["profile_id"],
            "at": row["sent_at"],
        }
        for row in rows[:limit]
    ]


# --- sending discipline -----------------------------------------------------------------


def _waits_for_its_slot(row: dict[str, Any], now: datetime) -> bool:
    """A message of a scenario with a `rate_limit` takes a send slot before it is claimed
    (`runtime.pacing`; the limit of the version it was queued in). True when its slot is
    later: the row stays `queued` until then (`paced_at`, not an attempt), its message is
    queued again for that moment, and it leaves then without asking again."""
    paced_at = time_value(row.get("paced_at"))
    if paced_at is not None:
        if paced_at > now:
            raise NotYet(f"message {row['message_id']} has its slot at {row['paced_at']}")
        return False
    storage = services().storage
    limit = storage.version(row["scenario_id"], int(row["version"])).rate_limit
    if limit is None:
        return False
    slot = storage.take_send_slot(row["scenario_id"], limit, now)
    if slot <= now:
        return False
    dispatch_at, delay = _again_at(slot, now)
    try:
        store.messages.update(
            {"message_id": row["message_id"]},
            "SET retry_at = :slot, paced_at = :slot, dispatch_at = :dispatch",
            "#s = :queued AND attribute_not_exists(paced_at)",
            names={"#s": "status"},
            values={":slot": format_datetime(slot), ":dispatch": dispatch_at, ":queued": "queued"},
        )
    except ConditionFailed:
        return True  # another delivery of it got there first (that slot goes unused)
    if delay is not None:
        services().queues.send(row["queue"], [(parse(row["payload"]), delay)])
    return True
