"""The steps queue: wake-ups, call results, promo codes, captures and migrations."""

from __future__ import annotations

import math
import time
from contextlib import suppress
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import SystemClock, clock
from chalicelib.adapters.codec import event_from_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import MAX_DELAY_SECONDS, send
from chalicelib.config import settings
from chalicelib.engine import PromoCodeResult, WakeUp, WebhookResult
from chalicelib.scenarios.durations import parse_datetime

from .journeys import capture_profile, feed, migrate_instance
from .promo import take_code
from .scenarios import end_instance, resume_instance


def process(body: dict[str, Any]) -> None:
    """Handle one steps-queue message by its `kind`."""
    kind = body["kind"]
    if kind == "wake":
        wake(body)
    elif kind == "webhook_result":
        feed(
            body["instance_id"],
            WebhookResult(
                body["step"], body["ok"], body.get("status"), body.get("body"), body.get("failure")
            ),
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


def wake(body: dict[str, Any]) -> None:
    """A wake-up for one step of an instance; a stale or repeated one changes nothing.

    A delayed wake-up carries its `wake_at`. SQS delays are whole seconds, so the commit
    rounds a delay down when that leaves under 0.75 s to wait: such a wake-up, arriving
    less than a second early, waits out the rest here. One arriving earlier still (it
    should not) goes back to the queue with the delay it still needs, rather than being
    dropped and left to the minute sweeper.
    """
    early = seconds_early(body.get("wake_at"))
    if early >= 1:
        if early <= MAX_DELAY_SECONDS:
            send("steps", body, math.ceil(early))
        return
    while early > 0:
        time.sleep(early)
        early = seconds_early(body.get("wake_at"))
    moved = feed(body["instance_id"], WakeUp(body["step"]))
    if not moved:  # stale or early, or the instance ended: drop a timer left for this step
        forget_timer(body["instance_id"], body["step"])


def seconds_early(wake_at: str | None) -> float:
    """How long before `wake_at` it is now; 0 unless delayed wake-ups run in real time
    (without them, or in virtual time, every wake-up comes from a due timer)."""
    due = parse_datetime(wake_at)
    current = clock()
    if due is None or not settings().precise_delays or not isinstance(current, SystemClock):
        return 0.0
    return max(0.0, (due - current.now()).total_seconds())


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
    """Delete a handled outbox row (an event, a promo code request, a jump): what it
    caused is recorded where it landed, and a redelivery is dropped there."""
    store.messages.delete({"message_id": row_id})
