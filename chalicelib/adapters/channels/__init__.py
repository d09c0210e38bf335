"""The channel providers: the only code that talks to SES, SNS, Web Push services and the
HTTP APIs that `webhook` nodes call.

Each adapter sends one message and either returns or raises `DeliveryError`, whose
`retryable` tells the channel worker whether the message goes back to its queue; `Gone`
is a Web Push subscription its service no longer knows; `Unanswered` a request that got
no answer, which the provider may or may not have taken. The `valid_*` checks tell an
address that can never be delivered to before anything is sent.
"""

from __future__ import annotations

from .email import send_email, valid_email
from .exceptions import DeliveryError, Gone, Unanswered
from .http import Response, call
from .push import send_push
from .sms import send_sms, valid_phone

__all__ = [
    "DeliveryError",
    "Gone",
    "Response",
    "Unanswered",
    "call",
    "send_email",
    "send_push",
    "send_sms",
    "valid_email",
    "valid_phone",
]
