"""SES event notifications read into statuses: every event type, bare and in SNS envelopes.

The documents follow the examples of the SES developer guide ("Examples of event data
that Amazon SES publishes to Amazon SNS"), with the message tag our e-mail adapter sets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.runtime.ses_events import (
    BadNotification,
    SubscriptionConfirmation,
    from_notification,
    message_id_of,
)

MAIL = {
    "timestamp": "2026-06-10T10:00:00.012Z",
    "source": "Shop <no-reply@shop.example>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/shop.example",
    "sendingAccountId": "123456789012",
    "messageId": "0100018f2a3b4c5d-EXAMPLE-000000",
    "destination": ["ada@example.com"],
    "headersTruncated": False,
    "headers": [{"name": "Subject", "value": "Hello"}],
    "commonHeaders": {"from": ["Shop <no-reply@shop.example>"], "subject": "Hello"},
    "tags": {
        "ses:configuration-set": ["scenaria-test-email"],
        "ses:source-ip": ["192.0.2.0"],
        "ses:from-domain": ["shop.example"],
        "ses:caller-identity": ["scenaria"],
        "message_id": ["msg-1"],
    },
}


def ses(event_type: str, **parts: Any) -> dict[str, Any]:
    return {"eventType": event_type, "mail": MAIL, **parts}


def sns(message: dict[str, Any]) -> dict[str, Any]:
    """The SNS envelope SES events arrive in (SQS without raw delivery, or HTTP)."""
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:scenaria-test-feedback",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-06-10T10:00:05.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


DELIVERY = ses(
    "Delivery",
    delivery={
        "timestamp": "2026-06-10T10:00:01.500Z",
        "processingTimeMillis": 1488,
        "recipients": ["ada@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
    },
)
HARD_BOUNCE = ses(
    "Bounce",
    bounce={
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "ada@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-06-10T10:00:02.669Z",
        "feedbackId": "0100018f2a3b4c5d-EXAMPLE-000001",
        "reportingMTA": "dsn; e226-55.smtp-out.us-east-1.amazonses.com",
    },
)
SOFT_BOUNCE = ses(
    "Bounce",
    bounce={
        "bounceType": "Transient",
        "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{"emailAddress": "ada@example.com"}],
        "timestamp": "2026-06-10T10:00:02Z",
    },
)
COMPLAINT = ses(
    "Complaint",
    complaint={
        "complainedRecipients": [{"emailAddress": "ada@example.com"}],
        "timestamp": "2026-06-10T12:00:00.000Z",
        "feedbackId": "0100018f2a3b4c5d-EXAMPLE-000002",
        "userAgent": "Mozilla/5.0",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-06-10T11:59:59.000Z",
    },
)
OPEN = ses(
    "Open",
    open={
        "ipAddress": "192.0.2.1",
        "timestamp": "2026-06-10T11:00:00.000Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    },
)
CLICK = ses(
    "Click",
    click={
        "ipAddress": "192.0.2.1",
        "link": "https://shop.example/sale?utm=mail",
        "linkTags": {"samplekey0": ["samplevalue0"]},
        "timestamp": "2026-06-10T11:05:00.000Z",
        "userAgent": "Mozilla/5.0",
    },
)
REJECT = ses("Reject", reject={"reason": "Bad content"})
RENDERING_FAILURE = ses(
    "Rendering Failure",
    failure={
        "errorMessage": "Attribute 'favoritecolor' is not present in the rendering data.",
        "templateName": "MyTemplate",
    },
)
UNSUBSCRIBE = ses(
    "Subscription",
    subscription={
        "contactList": "SystemMonitor-Canary",
        "timestamp": "2026-06-10T13:00:00.000Z",
        "source": "UnsubscribeHeader",
        "newTopicPreferences": {
            "unsubscribeAll": True,
            "topicSubscriptionStatus": [
                {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}
            ],
        },
        "oldTopicPreferences": {
            "unsubscribeAll": False,
            "topicSubscriptionStatus": [
                {"topicName": "ExampleTopicName", "subscriptionStatus": "OptIn"}
            ],
        },
    },
)
SEND = ses("Send", send={})
DELAY = ses(
    "DeliveryDelay",
    deliveryDelay={
        "timestamp": "2026-06-10T10:30:00.000Z",
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2026-06-10T22:00:00.000Z",
        "delayedRecipients": [{"emailAddress": "ada@example.com", "status": "4.4.1"}],
    },
)


@pytest.mark.parametrize(
    ("document", "status", "at", "details"),
    [
        (SEND, "sent", MAIL["timestamp"], {}),  # SES's record that it took the message
        (DELIVERY, "delivered", "2026-06-10T10:00:01.500Z", {}),
        (
            HARD_BOUNCE,
            "bounced",
            "2026-06-10T10:00:02.669Z",
            {"hard": True, "reason": "Permanent/General: smtp; 550 5.1.1 user unknown"},
        ),
        (
            SOFT_BOUNCE,
            "bounced",
            "2026-06-10T10:00:02Z",
            {"hard": False, "reason": "Transient/MailboxFull"},
        ),
        (COMPLAINT, "unsubscribed", "2026-06-10T12:00:00Z", {}),
        (UNSUBSCRIBE, "unsubscribed", "2026-06-10T13:00:00Z", {}),
        (OPEN, "opened", "2026-06-10T11:00:00Z", {}),
        (CLICK, "clicked", "2026-06-10T11:05:00Z", {"url": "https://shop.example/sale?utm=mail"}),
        (REJECT, "failed", MAIL["timestamp"], {"reason": "Bad content"}),
        (
            RENDERING_FAILURE,
            "failed",
            MAIL["timestamp"],
            {"reason": "Attribute 'favoritecolor' is not present in the rendering data."},
        ),
    ],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "sns"])
def test_each_event_type_is_its_status(
    document: dict[str, Any], status: str, at: str, details: dict[str, Any], wrapped: bool
) -> None:
    given = sns(document) if wrapped else document
    assert from_notification(given) == [("msg-1", status, moment(at), details)]
    assert message_id_of(given) == "msg-1"


def test_a_delay_reports_no_status() -> None:
    assert from_notification(DELAY) == []
    assert from_notification(sns(DELAY)) == []


def test_a_subscription_change_that_opts_in_reports_nothing() -> None:
    opt_in = json.loads(json.dumps(UNSUBSCRIBE))
    opt_in["subscription"]["newTopicPreferences"] = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [{"topicName": "News", "subscriptionStatus": "OptIn"}],
    }
    assert from_notification(opt_in) == []


def test_legacy_notifications_are_read_by_their_notification_type() -> None:
    legacy = {"notificationType": "Bounce", "bounce": HARD_BOUNCE["bounce"], "mail": MAIL}
    ((message_id, status, _, details),) = from_notification(legacy)
    assert (message_id, status, details["hard"]) == ("msg-1", "bounced", True)


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({**OPEN, "mail": {**MAIL, "tags": {}}}, "$.mail.tags.message_id"),
        (sns({**OPEN, "mail": {**MAIL, "tags": {}}}), "$.Message.mail.tags.message_id"),
        ({"eventType": "Open", "open": OPEN["open"]}, "$.mail"),
        ({**OPEN, "mail": {**MAIL, "timestamp": "yesterday"}}, "$.mail.timestamp"),
        ({"eventType": "Click", "mail": MAIL}, "$.click"),
        ({**CLICK, "click": {"timestamp": "2026-06-10T11:05:00Z"}}, "$.click.link"),
        ({**OPEN, "eventType": "Teleport"}, "$.eventType"),
        ({"Type": "Notification", "Message": "{not json"}, "$.Message"),
        ({"Type": "Notification"}, "$.Message"),
        ({"Type": "Surprise", "Message": "{}"}, "$.Type"),
        ({"Type": 7}, "$.Type"),
        (sns([1, 2]), "$.Message"),  # type: ignore[arg-type]
    ],
)
def test_what_is_no_ses_event_is_refused_naming_the_field(
    document: dict[str, Any], named: str
) -> None:
    with pytest.raises(BadNotification) as refused:
        from_notification(document)
    assert str(refused.value).startswith(named), str(refused.value)


def test_an_sns_subscription_confirmation_is_refused_with_what_to_do() -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:scenaria-test-feedback",
        "Message": "You have chosen to subscribe to the topic ...",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2026-06-10T10:00:00.000Z",
    }
    with pytest.raises(SubscriptionConfirmation) as refused:
        from_notification(confirmation)
    assert "$.Type" in str(refused.value)
    assert "feedback queue" in str(refused.value)
