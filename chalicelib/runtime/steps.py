"""The steps queue: wake-ups, call results, promo codes, captures and migrations."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.codec import event_from_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.engine import PromoCodeResult, WakeUp, WebhookResult

from .journeys import capture_profile, feed, migrate_instance
from .promo import take_code
from .scenarios import end_instance, resume_instance


def process(body: dict[str, Any]) -> None:
    """Handle one steps-queue message by its `kind`."""
    kind = body["kind"]
    if kind == "wake":
        moved = feed(body["instance_id"], WakeUp(body["step"]))
        if not moved:  # stale or early, or the instance ended: drop a timer left for this step
            forget_timer(body["instance_id"], body["step"])
    elif kind == "webhook_result":
        feed(
            body["instance_id"],
            WebhookResult(body["step"], body["ok"], body.get("status"), body.get("body")),
        )
    elif kind == "promo":
        code = take_code(body["pool"], body["request_id"])
        feed(body["instance_id"], PromoCodeResult(body["step"], code))
    elif kind == "capture":
        capture_profile(
            body["scenario_id"],
            body["profile_db"],
            body["profile_id"],
            event_from_values(body["event"]),
            trigger_id=body.get("trigger_id"),
            node=body.get("node"),
        )
    elif kind == "migrate":
        migrate_instance(body["instance_id"])
    elif kind == "resume":
        resume_instance(body["instance_id"])
    elif kind == "end":
        end_instance(body["instance_id"], body["status"], body["reason"])
    else:
        raise ValueError(f"unknown step message kind {kind!r}")
    if "row_id" in body:
        consumed(body["row_id"])


def forget_timer(instance_id: str, step: int) -> None:
    """Delete a timer that can no longer move its instance (the instance moved on)."""
    loaded = store.load_instance(instance_id)
    if loaded is not None:
        instance, _, _ = loaded
        if instance.active and instance.step == step and instance.wake_at is not None:
            return  # early, or its scenario sleeps: the timer is still needed
    with suppress(ConditionFailed):
        store.timers.delete({"instance_id": instance_id}, "step = :s", values={":s": step})


def consumed(row_id: str) -> None:
    """Take an outbox row out of the pending index: it has been handled."""
    with suppress(ConditionFailed):
        store.messages.update(
            {"message_id": row_id},
            "REMOVE pending_shard, dispatch_at",
            "attribute_exists(message_id)",
        )
