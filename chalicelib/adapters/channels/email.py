"""E-mail through Amazon SES (API v2).

Every message goes out under the stack's configuration set, whose event destination
reports deliveries, bounces, opens and clicks to the feedback topic; the `message_id`
tag makes each of those events name our message, not only SES's id.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import client
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
    try:
        answer = client("sesv2").send_email(**request)
    except (ClientError, BotoCoreError) as error:
        raise from_aws(error, f"SES refused message {message_id}") from error
    logger.debug("e-mail %s accepted by SES as %s", message_id, answer["MessageId"])
    return str(answer["MessageId"])
