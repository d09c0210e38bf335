"""The steps queue: wake-ups, call results, promo codes, captures, migrations and merges."""

from __future__ import annotations

import math
import time

from chalicelib.adapters.clock import SystemClock, clock
from chalicelib.adapters.clock import now as clock_now
from chalicelib.config import settings
from chalicelib.engine import PromoCodeResult, WakeUp, WebhookResult

from . import abandonment, merges
from .commit import MAX_DELAY_SECONDS
from .journeys import capture_profile, feed, migrate_instance
from .messages import (
    AbandonCheck,
    Capture,
    End,
    Merge,
    Migrate,
    PromoRequest,
    Resume,
    SessionTimeout,
    StepMessage,
    Wake,
    WebhookDone,
    parse_step,
)
from .scenarios import end_instance, resume_instance
from .sessions import end_session
from .storage import ReadAhead
from .unit_of_work import UnitOfWork


def process(message: StepMessage, uow: UnitOfWork | None = None) -> None:
    """Handle one steps-queue message by its type; its outbox row is consumed after it."""
    uow = uow or UnitOfWork()
    match message:
        case Wake():
            wake(uow, message)
        case WebhookDone():
            result = WebhookResult(
                message.step, message.ok, message.status, message.body, message.failure
            )
            feed(uow, message.instance_id, result)
        case PromoRequest():
            code = uow.storage.take_code(message.pool, message.request_id, clock_now())
            feed(uow, message.instance_id, PromoCodeResult(message.step, code))
        case Capture():
            capture_profile(
                uow, message.scenario_id, message.profile_db, message.profile_id,
                message.event.event(), trigger_id=message.trigger_id, node=message.node,
            )  # fmt: skip
        case Migrate():
            migrate_instance(uow, message.instance_id)
        case Resume():
            resume_instance(uow, message.instance_id)
        case End():
            end_instance(uow, message.instance_id, message.status, message.reason)
        case Merge():
            merges.finish(uow, message)
        case SessionTimeout():
            end_session(uow, message.profile_db, message.profile_id)
        case AbandonCheck():
            abandonment.check(uow, message)
    if message.row_id is not None:
        uow.consume_row(message.row_id)


def read_ahead(uow: UnitOfWork, bodies: list[str]) -> None:
    """Before a batch of steps, in one read: the instances they move, their scenarios where
    the messages say them, and for captures the profile's guard and the control percent
    (a body that does not parse fails on its own, later)."""
    instance_ids, scenario_ids, guards = [], [], []
    for body in bodies:
        try:
            message = parse_step(body)
        except ValueError:
            continue
        if isinstance(message, Wake | WebhookDone | PromoRequest | Migrate | Resume | End):
            instance_ids.append(message.instance_id)
        if isinstance(message, Wake | WebhookDone | PromoRequest | Capture) and message.scenario_id:
            scenario_ids.append(message.scenario_id)
        if isinstance(message, Capture):
            guards.append((message.profile_db, message.profile_id, message.scenario_id))
    uow.read_ahead(
        ReadAhead(
            instances=instance_ids, scenarios=scenario_ids, guards=guards, control=bool(guards)
        )
    )


def wake(uow: UnitOfWork, message: Wake) -> None:
    """A wake-up for one step of an instance; a stale or repeated one changes nothing.

    A delayed wake-up carries its `wake_at`. SQS delays are whole seconds, so the commit
    rounds a delay down when that leaves under 0.75 s to wait: such a wake-up, arriving
    less than a second early, waits out the rest here. One arriving earlier still (it
    should not) goes back to the queue with the delay it still needs, rather than being
    dropped and left to the minute sweeper.
    """
    early = seconds_early(message)
    if early >= 1:
        if early <= MAX_DELAY_SECONDS:
            uow.queues.send("steps", [(message, math.ceil(early))])
        return
    while early > 0:
        time.sleep(early)
        early = seconds_early(message)
    moved = feed(uow, message.instance_id, WakeUp(message.step))
    if not moved:  # stale or early, or the instance ended: drop a timer left for this step
        stored = uow.instance(message.instance_id)
        instance = stored.instance if stored else None
        if instance and instance.active and instance.step == message.step and instance.wake_at:
            return  # early, or its scenario sleeps: the timer is still needed
        uow.storage.forget_timer(message.instance_id, message.step)


def seconds_early(message: Wake) -> float:
    """How long before `wake_at` it is now; 0 unless delayed wake-ups run in real time
    (without them, or in virtual time, every wake-up comes from a due timer)."""
    due = message.due
    current = clock()
    if due is None or not settings().precise_delays or not isinstance(current, SystemClock):
        return 0.0
    return max(0.0, (due - current.now()).total_seconds())
