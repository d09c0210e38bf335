"""E-mail through Amazon SES (API v2).

Every message goes out under the stack's configuration set, whose event destination
reports deliveries, bounces, opens and clicks to the feedback topic; the `message_id`
tag makes each of those events name our message, not only SES's id.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import client
from chalicelib.config import settings

from .exceptions import DeliveryError, from_aws

logger = logging.getLogger(__name__)

# A plain syntax check (no DNS): SES takes 7-bit addresses, an international domain in
# its punycode (xn--) form. The local part is a dot-atom: no leading, trailing or double dot.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")


def valid_email(address: str) -> bool:
    """Whether `address` is a deliverable-looking `local@domain.tld` (syntax only)."""
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    labels = domain.split(".")
    return (
        len(local) <= 64
        and _LOCAL.fullmatch(local) is not None
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and _TOP_LABEL.fullmatch(labels[-1]) is not None
    )


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
