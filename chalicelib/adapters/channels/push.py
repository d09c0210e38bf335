"""Web Push (RFC 8030) with message encryption (RFC 8291) and VAPID (RFC 8292): pywebpush.

pywebpush encrypts the payload for the subscription's keys and signs the VAPID token with
the stack's key; the request itself goes through the guarded HTTP adapter (`.http`), as
a subscription's endpoint comes from profile data and must not reach private addresses.
The VAPID key is the stack's secret (`chalicelib.adapters.secrets`): the environment's
locally, an SSM SecureString on AWS.

On the local stack (`settings().push_sink`) no push leaves the machine: a push for a
subscription of another push service (a real browser's) goes, encrypted for that
subscription's keys and signed for its service, to the stack's sink instead, as
`POST <sink>/forwarded` with the endpoint it was for in `X-Push-Endpoint`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters import secrets
from chalicelib.config import settings
from chalicelib.scenarios.addresses import valid_push_subscription

from . import http
from .exceptions import DeliveryError, Gone, from_aws

if TYPE_CHECKING:
    import requests
    from py_vapid import Vapid02

logger = logging.getLogger(__name__)

# The largest payload one aes128gcm record of 4096 bytes holds: its header takes 86
# bytes (salt, record size, key id: the sender's public key), the tag 16, the padding
# delimiter 1. Push services refuse larger bodies.
MAX_PAYLOAD_BYTES = 4096 - 86 - 16 - 1
PUSH_TIMEOUT = 10.0  # seconds for one request to a push service
FORWARDED = "forwarded"  # the sink's path for pushes to other services' subscriptions
FORWARDED_FOR = "X-Push-Endpoint"  # the header naming the endpoint a forwarded push was for


def send_push(
    *,
    subscription: dict[str, Any],
    payload: dict[str, Any],
    ttl_seconds: int,
    urgency: str | None = None,
    timeout: float = PUSH_TIMEOUT,
) -> None:
    """Encrypt `payload` (as JSON) for `subscription` and hand it to its push service,
    which keeps it up to `ttl_seconds` for a browser that is offline.

    Raises Gone when the service answers 404 or 410 (the subscription is dead); a
    retryable DeliveryError for 429, a 5xx or a connection failure; Unanswered for a
    timeout or a connection dropped after the push went out; a final one for any other
    refusal, a malformed subscription, a payload over
    MAX_PAYLOAD_BYTES, an endpoint on a refused address or a missing VAPID key.
    """
    from pywebpush import WebPushException, webpush  # 0.4 s of imports: only when pushing

    if not valid_push_subscription(subscription):
        raise DeliveryError(
            "not a Web Push subscription (endpoint, keys.p256dh, keys.auth)", retryable=False
        )
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if len(data.encode()) > MAX_PAYLOAD_BYTES:
        raise DeliveryError(
            f"the push payload takes {len(data.encode())} bytes, at most {MAX_PAYLOAD_BYTES} fit",
            retryable=False,
        )
    headers = {"Content-Type": "application/octet-stream"}
    if urgency is not None:
        headers["Urgency"] = urgency
    endpoint = str(subscription["endpoint"])
    try:
        webpush(
            subscription_info=subscription,
            data=data,
            vapid_private_key=vapid_key(),
            vapid_claims={"sub": settings().vapid_subject},  # a new dict: webpush adds to it
            ttl=max(0, int(ttl_seconds)),
            headers=cast(dict[str, str | int | float], headers),
            timeout=timeout,
            requests_session=cast("requests.Session", _GuardedSession()),
        )
    except WebPushException as error:
        status = error.status_code
        if status is None:  # the subscription's keys did not do
            raise DeliveryError(
                f"push to {_origin(endpoint)}: {error.message}", retryable=False
            ) from error
        detail = f"push to {_origin(endpoint)} answered {status}"
        if status in (404, 410):
            raise Gone(f"{detail}: the subscription is gone", status=status) from error
        raise DeliveryError(
            detail, retryable=status == 429 or status >= 500, status=status
        ) from error
    except (ValueError, TypeError) as error:  # keys that do not decode
        raise DeliveryError(
            f"push to {_origin(endpoint)}: bad keys: {error}", retryable=False
        ) from error
    logger.debug("push accepted by %s", _origin(endpoint))


def vapid_key() -> Vapid02:
    """The stack's VAPID signing key (`secrets.vapid_private_key`: PEM, or base64url DER
    or raw) as py_vapid's signer. A missing or unreadable key is a DeliveryError that is
    not retryable: no push can go out until the stack is configured."""
    try:
        text = secrets.vapid_private_key()
    except RuntimeError as error:
        raise DeliveryError(str(error), retryable=False) from error
    except (ClientError, BotoCoreError) as error:
        raise from_aws(error, "reading the VAPID key from SSM") from error
    return _signer(text)


@cache
def _signer(text: str) -> Vapid02:
    from py_vapid import Vapid, VapidException

    try:
        if "-----BEGIN" in text:
            return cast("Vapid02", Vapid.from_pem(text.strip().encode()))
        return cast("Vapid02", Vapid.from_string(text.strip()))
    except (VapidException, ValueError) as error:
        raise DeliveryError(f"the VAPID key does not load: {error}", retryable=False) from error


def _origin(endpoint: str) -> str:
    """The push service, without the subscription's secret path, for messages and logs."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class _GuardedSession:
    """What pywebpush asks of a `requests.Session` (one `post`), over `http.request`, so a
    push goes only to an allowed, checked address, like a webhook call, and on the local
    stack only to its sink."""

    def post(
        self,
        url: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **_: Any,
    ) -> requests.Response:
        import requests
        from requests.structures import CaseInsensitiveDict

        sent_headers = {str(k): str(v) for k, v in (headers or {}).items()}
        sink = settings().push_sink
        target = url
        if sink is not None and not url.startswith(f"{sink}/"):
            target = f"{sink}/{FORWARDED}"
            sent_headers[FORWARDED_FOR] = url
        raw = http.request(
            method="POST",
            url=target,
            headers=sent_headers,
            body=data,
            timeout=timeout if timeout is not None else PUSH_TIMEOUT,
        )
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason
        response.headers = CaseInsensitiveDict(raw.headers)
        response._content = raw.data
        response.encoding = "utf-8"
        response.url = url
        return response
