"""The local stack's Web Push service: subscriptions it makes, and the pushes it takes.

On the local stack a profile's `push` subscriptions point here (`/local/push/{id}`), so
the push channel runs exactly as on AWS — pywebpush encrypts for the subscription's
keys, signs a VAPID token and POSTs — and the sink does what a browser and its push
service would: checks the VAPID token (RFC 8292), decrypts the aes128gcm body (RFC 8291)
with the subscription's private key, and keeps the payload for `GET /local/push`.
An unsubscribed id answers 410 Gone, as a real push service does. State is in memory.

Pushes for a real browser's subscription come here too (`<sink>/forwarded`, the endpoint
they were for in `X-Push-Endpoint`): nothing but webhook calls leaves the local stack.
The sink checks them the same way, but only that browser holds the key to read them: it
keeps them encrypted, with `payload` None.

`LoopbackPushService` serves a sink on its own loopback port, for a stack run in-process
without an HTTP server (tests driving the app through `chalice.test.Client`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from chalicelib.adapters.channels.push import FORWARDED, FORWARDED_FOR
from chalicelib.adapters.clock import now
from chalicelib.config import settings
from chalicelib.scenarios.durations import format_datetime

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096  # RFC 8030: a push service must accept at least this much
MIN_BODY_BYTES = 86 + 17  # RFC 8188: the aes128gcm header with the sender's key, one record
MAX_TOKEN_LIFETIME = 24 * 60 * 60  # RFC 8292: `exp` no more than 24 hours ahead
KEEP = 1000  # received pushes kept, newest last


@dataclass
class _Subscription:
    id: str
    name: str | None
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    active: bool = True


class PushSink:
    """Push subscriptions with their private keys, and what was pushed to them.

    `base_url` is where the sink is served (default: the stack's public URL, read when a
    subscription is made). Safe to call from several threads.
    """

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url
        self._lock = threading.Lock()
        self._subscriptions: dict[str, _Subscription] = {}
        self._received: deque[dict[str, Any]] = deque(maxlen=KEEP)

    def subscribe(self, name: str | None = None) -> dict[str, Any]:
        """A new subscription, as a browser's `PushSubscription.toJSON()`: its endpoint and
        the public half of a fresh P-256 key pair with a 16-byte auth secret."""
        subscription_id = secrets.token_urlsafe(16)
        base = (self.base_url or settings().public_url).rstrip("/")
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        subscription = _Subscription(
            id=subscription_id,
            name=name,
            endpoint=f"{base}/local/push/{subscription_id}",
            private_key=private_key,
            auth=auth,
        )
        with self._lock:
            self._subscriptions[subscription_id] = subscription
        public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": subscription.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64url(public), "auth": _b64url(auth)},
        }

    def unsubscribe(self, subscription_id: str) -> bool:
        """End a subscription (a browser unsubscribing): later pushes get 410. False when
        there was no such active subscription."""
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is None or not subscription.active:
                return False
            subscription.active = False
            return True

    def receive(self, subscription_id: str, headers: Mapping[str, str], body: bytes) -> int:
        """Take one push; returns the HTTP status a push service would answer: 201 when
        the VAPID token verifies and the body decrypts, 400 when either fails (or a
        header is missing), 413 for a body over 4096 bytes, 410 for an unknown or
        unsubscribed id. A push forwarded for another service's subscription is taken
        when its token verifies for that service and it is encrypted, and kept sealed."""
        fields = {name.lower(): value for name, value in headers.items()}
        if subscription_id == FORWARDED:
            endpoint = fields.get(FORWARDED_FOR.lower(), "")
            return self._taken(endpoint, None, fields, body) if endpoint else 400
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
        if subscription is None or not subscription.active:
            return 410
        return self._taken(subscription.endpoint, subscription, fields, body)

    def _taken(
        self,
        endpoint: str,
        subscription: _Subscription | None,
        fields: dict[str, str],
        body: bytes,
    ) -> int:
        """Check a push for `endpoint` (headers lower-cased) and keep it: decrypted for
        one of the sink's subscriptions, sealed for any other."""
        if len(body) > MAX_BODY_BYTES:
            return 413
        problem = _vapid_problem(fields.get("authorization", ""), _origin(endpoint))
        if problem:
            logger.warning("push to %s refused: %s", _origin(endpoint), problem)
            return 400
        ttl = fields.get("ttl", "")
        if not ttl.isdigit():
            logger.warning("push to %s refused: no TTL header", _origin(endpoint))
            return 400
        if fields.get("content-encoding", "").lower() != "aes128gcm" or len(body) < MIN_BODY_BYTES:
            logger.warning("push to %s refused: not aes128gcm", _origin(endpoint))
            return 400
        if subscription is None:  # only the browser holding the subscription can read it
            self._keep(endpoint, None, None, int(ttl), fields)
            return 201
        subscription_id = subscription.id
        try:
            plain = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth,
                version="aes128gcm",
            )
        except Exception as error:  # http_ece raises bare ECEException and crypto errors
            logger.warning("push to %s does not decrypt: %s", subscription_id, error)
            return 400
        text = plain.decode("utf-8", errors="replace")
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        self._keep(endpoint, subscription, payload, int(ttl), fields)
        return 201

    def _keep(
        self,
        endpoint: str,
        subscription: _Subscription | None,
        payload: Any,
        ttl: int,
        fields: dict[str, str],
    ) -> None:
        with self._lock:
            self._received.append(
                {
                    "subscription_id": subscription.id if subscription else None,
                    "name": subscription.name if subscription else None,
                    "endpoint": endpoint,
                    "payload": payload,
                    "decrypted": subscription is not None,
                    "ttl": ttl,
                    "urgency": fields.get("urgency", "normal"),
                    "at": format_datetime(now()),
                }
            )

    def received(self) -> list[dict[str, Any]]:
        """The pushes taken, oldest first: subscription id and name, the endpoint, the
        payload (`decrypted`; None for another service's subscription), TTL, urgency and
        when (on the stack's clock)."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget every subscription and push."""
        with self._lock:
            self._subscriptions.clear()
            self._received.clear()


class LoopbackPushService:
    """A sink served on 127.0.0.1 (a free port): `POST /local/push/{id}` → `receive`.
    Its subscriptions' endpoints are on that port. Use as a context manager, or `close()`."""

    def __init__(self, sink: PushSink | None = None) -> None:
        self.sink = sink or PushSink()
        receive = self.sink.receive

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY_BYTES + 1))
                prefix, _, subscription_id = self.path.rpartition("/")
                status = (
                    receive(subscription_id, dict(self.headers.items()), body)
                    if prefix == "/local/push"
                    else 404
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.sink.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="push-sink", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LoopbackPushService:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _vapid_problem(authorization: str, audience: str) -> str | None:
    """What is wrong with a `vapid t=<JWT>, k=<public key>` header (None when nothing):
    the token must be signed (ES256) by that key, for this push service's origin, and
    not expired. `exp` is real time: pywebpush signs with the wall clock, whatever the
    stack's clock says."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "vapid":
        return "no `Authorization: vapid t=..., k=...` header"
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        parts[name.strip()] = value.strip()
    token, key = parts.get("t", ""), parts.get("k", "")
    if token.count(".") != 2 or not key:
        return "the VAPID header lacks its token (t) or key (k)"
    signed, _, signature = token.rpartition(".")
    try:
        verifier = Vapid02.from_raw_public(key.encode())
        verified = verifier.verify_token(signed.encode(), signature)
        claims = json.loads(_b64url_decode(signed.split(".")[1]))
    except (ValueError, TypeError, binascii.Error) as error:
        return f"the VAPID token does not parse: {error}"
    if not verified:
        return "the VAPID signature does not verify against its key"
    if not isinstance(claims, dict) or claims.get("aud") != audience:
        return f"the VAPID token is not for {audience}"
    expires = claims.get("exp")
    if not isinstance(expires, int) or not time.time() < expires <= time.time() + (
        MAX_TOKEN_LIFETIME + 60
    ):
        return "the VAPID token has expired or lives longer than 24 hours"
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "the VAPID token has no mailto: or https: subject"
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
