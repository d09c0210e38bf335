"""The sweeper: every minute, fire due timers and re-dispatch the outbox.

Timers are found through the storage's due-time index (however long the sweeper was
away); outbox rows still pending past their dispatch time are sent again and their
deadline pushed on. Consumers drop what they already handled. An instance's timer wakes
it through the steps queue (the consumer deletes the timer); a derived event's timer
sends its event to the events queue and is deleted once it is sent (a crash in between
sends it again, with the same event id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from . import abandonment
from .commit import REDISPATCH_AFTER
from .messages import QueueMessage, SessionTimeout, Wake
from .storage import EventTimer
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)


@dataclass
class Swept:
    timers: int = 0
    redispatched: int = 0


def sweep(now: datetime, uow: UnitOfWork | None = None) -> Swept:
    """Fire every timer due by `now` and re-send every outbox row pending past its time."""
    uow = uow or UnitOfWork()
    result = Swept()
    wakes: list[tuple[QueueMessage, int]] = []
    derived: list[EventTimer] = []
    for timer in uow.storage.due_timers(now):
        if isinstance(timer, EventTimer):
            derived.append(timer)
            continue
        meta = uow.scenario(timer.scenario_id)
        if meta is not None and meta.active:  # a sleeping scenario's timers wait for it
            wake = Wake(
                instance_id=timer.instance_id, scenario_id=timer.scenario_id, step=timer.step
            )
            wakes.append((wake, 0))
    for due in uow.storage.due_sessions(now):  # sessions without activity for their timeout
        wakes.append((SessionTimeout(profile_db=due.profile_db, profile_id=due.profile_id), 0))
    wakes.extend((check, 0) for check in abandonment.due(uow.storage, now))
    by_queue: dict[str, list[tuple[QueueMessage, int]]] = {}
    for row in uow.storage.overdue_rows(now):
        if uow.storage.postpone_row(row, now + REDISPATCH_AFTER):
            by_queue.setdefault(row.queue, []).append((row.message, 0))
    uow.queues.send("steps", wakes)
    uow.queues.send("events", [(timer.event, 0) for timer in derived])
    for timer in derived:
        uow.storage.forget_event_timer(timer.timer_id)
    for queue, batch in by_queue.items():
        uow.queues.send(queue, batch)
        result.redispatched += len(batch)
    result.timers = len(wakes) + len(derived)
    if result.timers or result.redispatched:
        logger.info("swept", extra={"timers": result.timers, "redispatched": result.redispatched})
    return result
