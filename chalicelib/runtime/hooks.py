"""Webhook triggers (SPEC §3.4): signed calls that upsert a profile and capture it."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.idempotency import once
from chalicelib.bootstrap import services
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.model import WebhookTrigger

from .commit import epoch
from .journeys import capture_profile
from .profiles import upsert
from .storage import Changes, Conflict, Once
from .unit_of_work import UnitOfWork

SIGNATURE_WINDOW = timedelta(minutes=5)


class HookRejected(Exception):
    """The call is not authentic (bad or stale signature); nothing is changed."""


class HookReplayed(Exception):
    """The very same signed call came again; nothing is changed."""


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
        services().storage.version(meta["scenario_id"], meta["version"])
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
    signature: str,
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Upsert the profile's fields and capture it through the trigger, once per call.

    A signed call is accepted once: its signature is remembered while its timestamp is
    within the window, and a replay of the same bytes is refused (HookReplayed). With an
    `Idempotency-Key`, a repeat gets the first call's answer (`replayed`), a call while
    the first runs waits for it, and the key with another body is refused (KeyReused).
    """
    scenario_id = meta["scenario_id"]

    def accept() -> dict[str, Any]:
        remember_signature(scenario_id, signature)
        try:
            return _upsert_and_capture(meta, trigger_id, profile_id, fields, data, idempotency_key)
        except Exception:
            forget_signature(scenario_id, signature)  # it was not accepted: a retry may run
            raise

    if idempotency_key is None:
        return accept()
    request = {"trigger_id": trigger_id, "profile_id": profile_id, "profile": fields, "data": data}
    answer, replayed = once(f"hook#{scenario_id}", idempotency_key, request, accept, lambda_context)
    return {**answer, "replayed": True} if replayed else answer


def _upsert_and_capture(
    meta: dict[str, Any],
    trigger_id: str,
    profile_id: str,
    fields: dict[str, Any],
    data: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    scenario_id = meta["scenario_id"]
    db = services().storage.version(scenario_id, meta["version"]).model.profile_db
    if fields:
        upsert(db, profile_id, fields, "api")
    event = Event("hook", clock_now(), data, id=f"hook-{idempotency_key or uuid.uuid4()}")
    captured = capture_profile(
        UnitOfWork(), scenario_id, db, profile_id, event, trigger_id=trigger_id
    )
    return {
        "captured": captured.refused is None,
        "instance_id": captured.instance_id,
        "reason": captured.refused,
    }


def signature_key(scenario_id: str, signature: str) -> str:
    return f"signature#{scenario_id}#{signature}"


def remember_signature(scenario_id: str, signature: str) -> None:
    """Record an accepted signature until its window has passed (a replay after that has
    a stale timestamp and is refused by `verify`); raise HookReplayed if it was seen."""
    now = clock_now()
    accepted = Once(signature_key(scenario_id, signature), now, now + 2 * SIGNATURE_WINDOW)
    try:
        services().storage.commit(Changes(once=[accepted]))
    except Conflict:
        raise HookReplayed(
            "X-Signature: this signed call was accepted before; sign each call anew"
        ) from None


def forget_signature(scenario_id: str, signature: str) -> None:
    services().storage.forget_once(signature_key(scenario_id, signature))
