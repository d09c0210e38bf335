"""SMS through Amazon SNS: a direct publish to a phone number, no topic.

Messages are sent as `Transactional` (SNS's higher-priority route, which also delivers
to numbers on do-not-disturb lists where the law allows it for service messages) unless
the caller asks for `Promotional`.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import client
from chalicelib.scenarios.addresses import valid_phone

from .exceptions import DeliveryError, from_aws

logger = logging.getLogger(__name__)


def send_sms(*, message_id: str, to: str, body: str, sms_type: str = "Transactional") -> str:
    """Send one SMS; returns SNS's MessageId.

    Raises DeliveryError: retryable for throttling, SNS's 5xx and endpoint failures; not
    for a number that is not E.164 or one SNS refuses.
    """
    if not valid_phone(to):
        raise DeliveryError(f"not an E.164 phone number: {to!r}", retryable=False)
    if not body:
        raise DeliveryError("the SMS has no text", retryable=False)
    try:
        answer = client("sns").publish(
            PhoneNumber=to,
            Message=body,
            MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type}
            },
        )
    except (ClientError, BotoCoreError) as error:
        raise from_aws(error, f"SNS refused SMS {message_id}") from error
    logger.debug("SMS %s accepted by SNS as %s", message_id, answer["MessageId"])
    return str(answer["MessageId"])
