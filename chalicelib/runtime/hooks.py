"""Webhook triggers (SPEC §3.4): signed calls that upsert a profile and capture it."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.model import WebhookTrigger

from .commit import epoch
from .journeys import capture_profile
from .profiles import upsert

SIGNATURE_WINDOW = timedelta(minutes=5)
IDEMPOTENCY_WINDOW = timedelta(days=1)


class HookRejected(Exception):
    """The call is not authentic (bad or stale signature); nothing is changed."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC of "<timestamp>.<body>">`, what callers send as X-Signature."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    if not timestamp or not signature:
        raise HookRejected("X-Timestamp and X-Signature headers are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise HookRejected("X-Timestamp must be Unix seconds") from None
    if abs(epoch(now) - sent) > SIGNATURE_WINDOW.total_seconds():
        raise HookRejected("X-Timestamp is more than 5 minutes from the stack's clock")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise HookRejected("X-Signature does not match the body and timestamp")


def webhook_trigger(meta: dict[str, Any], trigger_id: str) -> WebhookTrigger | None:
    scenario = (
        store.compiled_version(meta["scenario_id"], meta["version"])
        if meta.get("version")
        else None
    )
    trigger = scenario.triggers.get(trigger_id) if scenario else None
    return trigger if isinstance(trigger, WebhookTrigger) else None


def call(
    meta: dict[str, Any],
    trigger_id: str,
    profile_id: str,
    fields: dict[str, Any],
    data: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Upsert the profile's fields and capture it through the trigger, once per key."""
    scenario_id = meta["scenario_id"]
    key = {"key": f"hook#{scenario_id}#{idempotency_key}"} if idempotency_key else None
    if key is not None:
        done = store.idempotency.get(key)
        if done is not None:
            return {**done["response"], "replayed": True}
    db = store.compiled_version(scenario_id, meta["version"]).model.profile_db
    if fields:
        upsert(db, profile_id, fields, "api")
    event = Event("hook", clock_now(), data, id=f"hook-{idempotency_key or uuid.uuid4()}")
    captured = capture_profile(scenario_id, db, profile_id, event, trigger_id=trigger_id)
    response = {
        "captured": captured.refused is None,
        "instance_id": captured.instance_id,
        "reason": captured.refused,
    }
    if key is not None:
        store.idempotency.put(
            {**key, "response": response, "expires_at": epoch(clock_now() + IDEMPOTENCY_WINDOW)}
        )
    return response
