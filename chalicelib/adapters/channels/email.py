"""E-mail through Amazon SES (API v2).

Every message goes out under the stack's configuration set, whose event destination
reports sends, deliveries, bounces, opens and clicks to the feedback topic; the
`message_id` tag makes each of those events name our message, not only SES's id. The
Send event is SES's own record that it took a message: the channel worker asks it when
its call got no answer.

moto's SES publishes no events. With `settings().ses_sandbox` (the local stack, the
tests) the SES client publishes the Send event itself, the moment SES has accepted the
message and before its answer reaches the caller, to the feedback queue, as SES's
topic delivers it there on AWS.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import client
from chalicelib.adapters.clock import now
from chalicelib.adapters.queues import send
from chalicelib.config import settings
from chalicelib.scenarios.addresses import valid_email

from .exceptions import DeliveryError, from_aws

logger = logging.getLogger(__name__)


def send_email(
    *,
    message_id: str,
    sender: str,
    to: str,
    subject: str,
    text: str | None,
    html: str | None,
    reply_to: str | None = None,
) -> str:
    """Send one e-mail; returns SES's MessageId.

    Raises DeliveryError: retryable for throttling, SES's 5xx and endpoint failures; not
    for a rejected message, a bad address, an unverified sender or nothing to send.
    """
    if not valid_email(to):
        raise DeliveryError(f"not an e-mail address: {to!r}", retryable=False)
    if text is None and html is None:
        raise DeliveryError("the e-mail has neither a text nor an HTML body", retryable=False)
    body: dict[str, Any] = {}
    if text is not None:
        body["Text"] = {"Data": text, "Charset": "UTF-8"}
    if html is not None:
        body["Html"] = {"Data": html, "Charset": "UTF-8"}
    request: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": [to]},
        "Content": {"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": body}},
        "ConfigurationSetName": settings().ses_configuration_set(),
        "EmailTags": [{"Name": "message_id", "Value": message_id}],
    }
    if reply_to is not None:
        request["ReplyToAddresses"] = [reply_to]
    ses = client("sesv2")
    if settings().ses_sandbox:
        _publish_send_events(ses)
    try:
        answer = ses.send_email(**request)
    except (ClientError, BotoCoreError) as error:
        raise from_aws(error, f"SES refused message {message_id}") from error
    logger.debug("e-mail %s accepted by SES as %s", message_id, answer["MessageId"])
    return str(answer["MessageId"])


def _publish_send_events(ses: Any) -> None:
    """Make this SES client publish SES's Send event for each e-mail SES accepts (once
    per client: botocore keeps one handler per `unique_id`)."""
    events = ses.meta.events
    events.register(
        "before-parameter-build.sesv2.SendEmail", _keep_request, unique_id="sandbox-request"
    )
    events.register(
        "after-call.sesv2.SendEmail", _publish_send_event, unique_id="sandbox-send-event"
    )


def _keep_request(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["sandbox_request"] = dict(params)


def _publish_send_event(
    http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
) -> None:
    """Publish SES's Send event (event publishing's format) for an accepted SendEmail, in
    the SNS envelope the feedback queue gets it in."""
    request = context.get("sandbox_request")
    if request is None or http_response.status_code >= 300 or "MessageId" not in parsed:
        return
    tags: dict[str, list[str]] = {}
    for tag in request.get("EmailTags") or []:
        tags.setdefault(tag["Name"], []).append(tag["Value"])
    event = {
        "eventType": "Send",
        "mail": {
            "timestamp": now().isoformat(timespec="milliseconds"),  # the stack's clock
            "source": request.get("FromEmailAddress"),
            "messageId": parsed["MessageId"],
            "destination": (request.get("Destination") or {}).get("ToAddresses") or [],
            "tags": tags,
        },
        "send": {},
    }
    send("feedback", {"Type": "Notification", "Message": json.dumps(event)})
