"""SES event notifications: what SES reports of an e-mail, as statuses to record.

SES publishes its events (configuration set → SNS topic) to the feedback queue
(`process_notification`), and callers may POST them to `/feedback` too, bare or in their
SNS envelope; `from_notification` reads both shapes. Our message id is the `message_id`
tag every e-mail is sent with. A Send event is SES's record that it took the message:
it records `sent`, which settles a send whose call got no answer (`channels.recorded`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from chalicelib.scenarios.validation import json_path

from .channels import recorded
from .feedback import UnknownMessage, record
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

MESSAGE_TAG = "message_id"  # the SES message tag (EmailTags) that carries our message id
Outcome = tuple[str, str, datetime, dict[str, Any]]  # message id, status, at, details


class BadNotification(ValueError):
    """A document that is not an SES event notification; the message names the field."""


class SubscriptionConfirmation(BadNotification):
    """An SNS subscription (or unsubscription) confirmation, not an SES event."""


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
    send: _Loose | None = None


class SnsEnvelope(_Loose):
    """An SNS message as SNS delivers it to SQS (without raw delivery) or over HTTP."""

    Type: str
    Message: str | None = None


IGNORED = ("DeliveryDelay",)  # not a status of SPEC §1.4
STATUS_OF = {
    "Send": "sent",
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
    "Send": "send",
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
    event (`eventType`, or the legacy `notificationType`). DeliveryDelay reports no status
    (an empty list); a subscription change that does not opt out neither. Raises
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


def process_notification(body: dict[str, Any], uow: UnitOfWork | None = None) -> None:
    """The feedback queue's consumer: record what an SES event reports (with a buffered
    `uow`, the batch's: the statuses' events are queued together at its end).

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
            row = record(message_id, status, at, uow, **details)
        except UnknownMessage:
            logger.info("feedback for unknown message %s dropped (%s)", message_id, status)
            continue
        if status == "sent":  # SES's record of a send the worker got no answer for
            recorded(row)


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
