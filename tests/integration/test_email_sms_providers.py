"""The SES and SNS adapters on moto: what goes out and how refusals are classified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib.adapters.aws import client
from chalicelib.adapters.channels import (
    DeliveryError,
    Unanswered,
    send_email,
    send_sms,
    valid_phone,
)
from chalicelib.adapters.queues import queue_url
from chalicelib.config import settings
from chalicelib.runtime.ses_events import from_notification

pytestmark = pytest.mark.usefixtures("aws_stack")

SENDER = "news@shop.example"


@pytest.fixture
def verified_sender(aws_stack: None) -> None:
    client("sesv2").create_email_identity(EmailIdentity=SENDER)


@pytest.fixture
def ses_requests(aws_stack: None) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every SES v2 SendEmail call (moto keeps neither tags nor the
    configuration set, so they are read off the request)."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    events = client("sesv2").meta.events
    events.register("provide-client-params.sesv2.SendEmail", record)
    yield seen
    events.unregister("provide-client-params.sesv2.SendEmail", record)


def _sent_messages() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][settings().region].sent_messages)


@pytest.mark.usefixtures("verified_sender")
def test_an_email_is_sent_with_its_tag_and_configuration_set(
    ses_requests: list[dict[str, Any]],
) -> None:
    ses_id = send_email(
        message_id="m-1",
        sender=f"Shop <{SENDER}>",
        to="ada@example.com",
        subject="Welcome, Ada",
        text="Hello",
        html="<p>Hello</p>",
    )

    (sent,) = _sent_messages()
    assert sent.id == ses_id
    assert (sent.source, sent.subject) == (f"Shop <{SENDER}>", "Welcome, Ada")
    assert sent.destinations == {"ToAddresses": ["ada@example.com"]}
    (request,) = ses_requests
    assert request["EmailTags"] == [{"Name": "message_id", "Value": "m-1"}]
    assert request["ConfigurationSetName"] == "scenaria-test-email"
    assert request["Content"]["Simple"]["Body"] == {
        "Text": {"Data": "Hello", "Charset": "UTF-8"},
        "Html": {"Data": "<p>Hello</p>", "Charset": "UTF-8"},
    }


def test_an_unverified_sender_is_refused_for_good() -> None:
    with pytest.raises(DeliveryError, match="MessageRejected") as raised:
        send_email(
            message_id="m-1", sender=SENDER, to="ada@example.com", subject="s", text="t", html=None
        )
    assert not raised.value.retryable
    assert _sent_messages() == []


@pytest.mark.usefixtures("verified_sender")
def test_a_bad_address_or_no_body_is_refused_before_ses() -> None:
    with pytest.raises(DeliveryError) as bad_address:
        send_email(message_id="m", sender=SENDER, to="ada@", subject="s", text="t", html=None)
    with pytest.raises(DeliveryError) as no_body:
        send_email(
            message_id="m", sender=SENDER, to="a@b.example", subject="s", text=None, html=None
        )
    assert not bad_address.value.retryable
    assert not no_body.value.retryable
    assert _sent_messages() == []


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendEmail"), True),
        (ClientError({"Error": {"Code": "InternalFailure", "Message": "oops"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "SendEmail"), True),
        (ClientError({"Error": {"Code": "SomethingNew", "Message": "?"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "SendEmail"), True),
        (EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"), True),
        (ClientError({"Error": {"Code": "MessageRejected", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail"), False),
        (ClientError({"Error": {"Code": "MailFromDomainNotVerifiedException", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail"), False),
        (ClientError({"Error": {"Code": "AccountSuspendedException", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail"), False),
    ],
)  # fmt: skip
def test_ses_failures_are_classified(
    monkeypatch: pytest.MonkeyPatch, error: Exception, retryable: bool
) -> None:
    def failing(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(client("sesv2"), "send_email", failing)
    with pytest.raises(DeliveryError) as raised:
        send_email(
            message_id="m", sender=SENDER, to="a@b.example", subject="s", text="t", html=None
        )
    assert raised.value.retryable is retryable
    assert not isinstance(raised.value, Unanswered)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
    ids=["read timeout", "connection closed"],
)
def test_a_request_without_an_answer_is_unanswered(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def failing(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(client("sesv2"), "send_email", failing)
    with pytest.raises(Unanswered):
        send_email(
            message_id="m", sender=SENDER, to="a@b.example", subject="s", text="t", html=None
        )
    monkeypatch.setattr(client("sns"), "publish", failing)
    with pytest.raises(Unanswered):
        send_sms(message_id="m", to="+14155550100", body="hi")


def test_ses_and_sns_sends_are_never_retried_by_botocore() -> None:
    # a read timeout retried there would send the message twice
    for service in ("sesv2", "sns"):
        assert client(service).meta.config.retries["total_max_attempts"] == 1


@pytest.mark.usefixtures("verified_sender")
def test_on_moto_ses_s_send_event_reaches_the_feedback_queue() -> None:
    ses_id = send_email(
        message_id="m-9", sender=SENDER, to="ada@example.com", subject="s", text="t", html=None
    )

    (message,) = client("sqs").receive_message(QueueUrl=queue_url("feedback"))["Messages"]
    envelope = json.loads(message["Body"])
    assert from_notification(envelope) == [("m-9", "sent", ANY, {})]
    event = json.loads(envelope["Message"])
    assert (event["eventType"], event["mail"]["messageId"]) == ("Send", ses_id)


def test_an_sms_is_published_as_transactional() -> None:
    sns_id = send_sms(message_id="m-2", to="+33612345678", body="Your code: 1234")

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    backend = sns_backends[DEFAULT_ACCOUNT_ID][settings().region]
    assert backend.sms_messages[sns_id] == ("+33612345678", "Your code: 1234")


def test_an_sms_carries_the_transactional_type(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[dict[str, Any]] = []

    class Recording:
        def publish(self, **params: Any) -> dict[str, str]:
            published.append(params)
            return {"MessageId": "sns-1"}

    monkeypatch.setattr("chalicelib.adapters.channels.sms.client", lambda _: Recording())
    assert send_sms(message_id="m", to="+14155550100", body="hi") == "sns-1"
    assert published[0]["MessageAttributes"] == {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
    }


def test_an_invalid_number_is_not_sent() -> None:
    assert not valid_phone("0612345678")
    with pytest.raises(DeliveryError) as raised:
        send_sms(message_id="m", to="0612345678", body="hi")
    assert not raised.value.retryable
