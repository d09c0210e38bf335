"""Delivery feedback: a message's status changes, counted once, and journeys hear of it.

A status (`sent` from the channel worker; `delivered`, `opened`, `clicked`, `bounced`,
`unsubscribed`, `failed` from `POST /feedback`, SES notifications and tracking links)
takes effect once per message however often it is reported, even concurrently: its flag
`feedback.<status>` on the message row is set with a conditional write, in one
transaction with the channel counter and the outbox row of its `message.<status>` event
(SPEC §4). Only the report whose transaction wins goes on to update the profile's message
history (which `message` conditions read) and, for `unsubscribed`, revoke the channel's
consent, for a hard `bounced`, mark the address invalid. `clicked` implies `opened`.

SES publishes its events through SNS to the feedback queue (`process_notification`) and
callers may POST them too; `from_notification` reads both shapes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import event_to_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send_batch
from chalicelib.config import settings
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.validation import json_path

from . import stats
from .commit import REDISPATCH_AFTER, epoch, shard_of
from .profiles import upsert

logger = logging.getLogger(__name__)

STATUSES = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")  # callers'
ALL_STATUSES = ("sent", *STATUSES)  # and the channel worker's `sent`
MESSAGE_TAG = "message_id"  # the SES message tag (EmailTags) that carries our message id


class UnknownMessage(LookupError):
    """No message with that id: never sent, or erased with its profile."""


class BadNotification(ValueError):
    """A document that is not an SES event notification; the message names the field."""


class SubscriptionConfirmation(BadNotification):
    """An SNS subscription (or unsubscription) confirmation, not an SES event."""


Outcome = tuple[str, str, datetime, dict[str, Any]]  # message id, status, at, details


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
    send_batch("events", [(body, 0)])
    # queued: the row was only needed had we crashed before, and it names the profile
    store.messages.delete({"message_id": outbox_id})
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
    row: dict[str, Any], status: str, at: datetime, outbox_id: str, body: dict[str, Any]
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
            "payload": body,
            "pending_shard": shard_of(outbox_id, settings().timer_shards),
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


def _outbox(row: dict[str, Any], event: Event) -> tuple[str, dict[str, Any]]:
    """The outbox row id and queue body of the event: the sweeper sends it if a crash
    loses the dispatch after the commit (the row is deleted once the event is queued)."""
    outbox_id = f"feedback-{event.id}"
    body = {
        "kind": "event",
        "event": {
            **event_to_values(event),
            "profile_db": row["profile_db"],
            "profile_id": row["profile_id"],
        },
        "row_id": outbox_id,
    }
    return outbox_id, body


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
    """Withdraw the profile's consent to a channel (an upsert: `profile.field_changed`)."""
    key = {"pk": store.profile_partition(profile_db, profile_id), "sk": "P"}
    profile = store.profiles.get(key)
    if profile is None:
        return  # erased: nothing to revoke, and no profile to create
    consents = dict((profile.get("fields") or {}).get("consents") or {})
    if consents.get(channel) is False:
        return
    consents[channel] = False
    upsert(profile_db, profile_id, {"consents": consents}, "api")


def mark_invalid(profile_db: str, profile_id: str, channel: str, address: str) -> None:
    """Remember that `address` hard-bounced on `channel`: the profile item's top-level
    `invalid` map {channel: address}. The channel worker skips a send to that very
    address (`no_address`); a changed address is tried again."""
    key = {"pk": store.profile_partition(profile_db, profile_id), "sk": "P"}
    for update, condition, values in (
        ("SET invalid.#c = :a", "attribute_exists(invalid)", {":a": address}),
        ("SET invalid = :m", "attribute_not_exists(invalid)", {":m": {channel: address}}),
        ("SET invalid.#c = :a", "attribute_exists(invalid)", {":a": address}),
    ):
        try:
            store.profiles.update(
                key,
                update,
                f"attribute_exists(pk) AND {condition}",
                names={"#c": channel} if "#c" in update else None,
                values=values,
            )
        except ConditionFailed:
            if store.profiles.get(key) is None:
                return  # erased
            continue
        return


# --- SES event notifications -------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class SesMail(_Loose):
    timestamp: AwareDatetime
    messageId: str | None = None
    tags: dict[str, list[str]] = {}


class SesMoment(_Loose):
    timestamp: AwareDatetime | None = None


class SesBounce(SesMoment):
    bounceType: str
    bounceSubType: str | None = None
    bouncedRecipients: list[dict[str, Any]] = []


class SesClick(SesMoment):
    link: str


class SesReject(_Loose):
    reason: str | None = None


class SesFailure(_Loose):
    errorMessage: str | None = None


class SesSubscription(SesMoment):
    newTopicPreferences: dict[str, Any] = {}


class SesEvent(_Loose):
    """An SES event record (event publishing) or a legacy notification."""

    eventType: str | None = None
    notificationType: str | None = None
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesMoment | None = None
    delivery: SesMoment | None = None
    open: SesMoment | None = None
    click: SesClick | None = None
    reject: SesReject | None = None
    failure: SesFailure | None = None
    subscription: SesSubscription | None = None
    deliveryDelay: SesMoment | None = None


class SnsEnvelope(_Loose):
    """An SNS message as SNS delivers it to SQS (without raw delivery) or over HTTP."""

    Type: str
    Message: str | None = None


IGNORED = ("Send", "DeliveryDelay")  # not a status of SPEC §1.4
STATUS_OF = {
    "Delivery": "delivered",
    "Bounce": "bounced",
    "Complaint": "unsubscribed",
    "Subscription": "unsubscribed",
    "Open": "opened",
    "Click": "clicked",
    "Reject": "failed",
    "Rendering Failure": "failed",
}
PART_OF = {
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Subscription": "subscription",
    "Open": "open",
    "Click": "click",
    "Reject": "reject",
    "Rendering Failure": "failure",
}


def is_notification(document: Any) -> bool:
    """True for what looks like an SNS message or an SES event rather than `{"message_id", ...}`."""
    return isinstance(document, dict) and any(
        key in document for key in ("Type", "eventType", "notificationType")
    )


def from_notification(document: dict[str, Any]) -> list[Outcome]:
    """The statuses an SES event reports, as (message id, status, at, details).

    Takes an SNS envelope (`{"Type": "Notification", "Message": "<json>"}`) or a bare SES
    event (`eventType`, or the legacy `notificationType`). Send and DeliveryDelay report no
    status (an empty list); a subscription change that does not opt out neither. Raises
    BadNotification naming the field for anything else that does not fit, and
    SubscriptionConfirmation for SNS's confirmation messages.
    """
    event, prefix = _ses_event(document)
    kind = event.eventType or event.notificationType
    if kind in IGNORED:
        return []
    if kind not in STATUS_OF:
        raise BadNotification(
            f"{json_path([*prefix, 'eventType'])}: not an SES event type we know: {kind!r}"
        )
    part = getattr(event, PART_OF[kind])
    if part is None:
        raise BadNotification(f"{json_path([*prefix, PART_OF[kind]])}: missing for a {kind} event")
    if kind == "Subscription" and not _opted_out(part):
        return []
    message_id = _tagged_id(event, prefix)
    at = getattr(part, "timestamp", None) or event.mail.timestamp
    return [(message_id, STATUS_OF[kind], at, _details(kind, part))]


def message_id_of(document: dict[str, Any]) -> str:
    """Our message id in an SES event notification (BadNotification when it has none)."""
    event, prefix = _ses_event(document)
    return _tagged_id(event, prefix)


def process_notification(body: dict[str, Any]) -> None:
    """The feedback queue's consumer: record what an SES event reports.

    Events of mail we did not send (no message tag, or an unknown or erased message) and
    documents that are no SES event are logged and dropped: trying them again would not
    help."""
    try:
        outcomes = from_notification(body)
    except BadNotification as error:
        logger.warning("feedback dropped: %s", error)
        return
    for message_id, status, at, details in outcomes:
        try:
            record(message_id, status, at, **details)
        except UnknownMessage:
            logger.info("feedback for unknown message %s dropped (%s)", message_id, status)


def _ses_event(document: Any) -> tuple[SesEvent, tuple[str, ...]]:
    """The SES event in a document, and the JSON path prefix of its fields."""
    if not isinstance(document, dict):
        raise BadNotification("$: an SNS notification or an SES event object")
    prefix: tuple[str, ...] = ()
    if "Type" in document:
        document = _unwrap(document)
        prefix = ("Message",)
    if not isinstance(document, dict):
        raise BadNotification(f"{json_path(prefix)}: an SES event object")
    try:
        event = SesEvent.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = json_path([*prefix, *first["loc"]])
        raise BadNotification(f"{where}: {first['msg']}") from None
    if not (event.eventType or event.notificationType):
        raise BadNotification(f"{json_path([*prefix, 'eventType'])}: Field required")
    return event, prefix


def _unwrap(document: dict[str, Any]) -> Any:
    """The SES event inside an SNS envelope."""
    try:
        envelope = SnsEnvelope.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise BadNotification(f"{json_path(first['loc'])}: {first['msg']}") from None
    if envelope.Type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise SubscriptionConfirmation(
            f"$.Type: {envelope.Type} is not confirmed here: subscribe the stack's feedback "
            "queue to the topic (SQS needs no confirmation), or confirm it with its "
            "SubscribeURL yourself"
        )
    if envelope.Type != "Notification":
        raise BadNotification(f"$.Type: 'Notification' expected, got {envelope.Type!r}")
    if envelope.Message is None:
        raise BadNotification("$.Message: Field required")
    try:
        return json.loads(envelope.Message)
    except ValueError:
        raise BadNotification("$.Message: not a JSON document") from None


def _tagged_id(event: SesEvent, prefix: tuple[str, ...]) -> str:
    values = event.mail.tags.get(MESSAGE_TAG) or []
    if not values or not values[0]:
        raise BadNotification(
            f"{json_path([*prefix, 'mail', 'tags', MESSAGE_TAG])}: missing: the mail was "
            "not sent by this stack"
        )
    return values[0]


def _opted_out(subscription: SesSubscription) -> bool:
    """An SES subscription event that unsubscribes: from everything, or from a topic."""
    preferences = subscription.newTopicPreferences
    if preferences.get("unsubscribeAll"):
        return True
    topics = preferences.get("topicSubscriptionStatus") or []
    return any(isinstance(t, dict) and t.get("subscriptionStatus") == "OptOut" for t in topics)


def _details(kind: str, part: Any) -> dict[str, Any]:
    """The details a status carries: the clicked link, why it failed or bounced."""
    if kind == "Click":
        return {"url": part.link}
    if kind == "Bounce":
        diagnosis = next(
            (r.get("diagnosticCode") for r in part.bouncedRecipients if r.get("diagnosticCode")),
            None,
        )
        reason = f"{part.bounceType}/{part.bounceSubType or 'Undetermined'}"
        return {
            "hard": part.bounceType == "Permanent",
            "reason": f"{reason}: {diagnosis}" if diagnosis else reason,
        }
    if kind == "Reject":
        return {"reason": part.reason or "rejected"}
    if kind == "Rendering Failure":
        return {"reason": part.errorMessage or "rendering failure"}
    return {}
