"""Segment membership (SPEC §7): the defined segments each profile belongs to, kept on
its profile item, and `segment.entered` / `segment.exited` when that changes.

Where it is evaluated, always with what was read anyway (`engine.membership` decides):

- a journey step that changed the profile (`update_profile`): in the step's own commit,
  from the profile as the step left it (`UnitOfWork.commit`);
- an event that changes the profile or that a segment counts (`after_event`): the
  upsert, import and consent change of a profile all announce `profile.imported`, the
  stack keeps `profile.balance` from `balance.changed`, a merge announces `profile.merged`
  on the profile it keeps; the events consumer evaluates
  the profile's view, which its unit of work reads once for everything the event does;
- a segment defined again or deleted, and once a day the segments whose conditions are
  relative to now (`daily`): a membership run, fanned out over the profile table like a
  segment campaign, one `ScanMembership` per parallel-Scan segment (`process_scan`).

A membership is written with its events' outbox rows in one commit, expecting the
membership read; the events go to the events queue like any other, so triggers,
`wait_for`, `exit_on` and the history see them. Their ids derive from the segment and
the cause (event id, step, run), and a second evaluation of the same cause finds the
membership already written: nothing is announced twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.adapters.codec import profile_key
from chalicelib.engine.membership import (
    MembershipChange,
    counted_events,
    evaluate_membership,
    membership_events,
    needs_history,
    time_relative,
)
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.facts import Event, Predicate
from chalicelib.scenarios.model import Segment

from .commit import REDISPATCH_AFTER
from .messages import EventBody, EventMessage, Queues, ScanMembership
from .storage import Changes, Conflict, Dispatch, MembershipWrite, OutboxRow, Storage

if TYPE_CHECKING:
    from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

ATTEMPTS = 5
# events after which the profile's fields may have changed (every upsert, import and
# consent change announces `profile.imported`; the stack keeps `profile.balance`; a merge
# folds the merged profiles' fields into the one it keeps)
PROFILE_CHANGES = frozenset({"profile.imported", "balance.changed", "profile.merged"})


@dataclass(frozen=True)
class Definitions:
    """The defined segments, compiled once (per unit of work or membership run)."""

    segments: dict[str, Segment]
    predicates: dict[str, Predicate] = field(default_factory=dict)

    @classmethod
    def of(cls, segments: dict[str, Segment]) -> Definitions:
        return cls(segments, {sid: compile_condition(s.where) for sid, s in segments.items()})

    def on(self, profile_db: str) -> dict[str, Predicate]:
        """The predicates of the segments defined on that profile database."""
        return {
            sid: self.predicates[sid]
            for sid, segment in self.segments.items()
            if segment.profile_db == profile_db
        }

    def counted(self, profile_db: str) -> set[str]:
        """The event types some segment of that database counts."""
        return {
            kind
            for segment in self.segments.values()
            if segment.profile_db == profile_db
            for kind in counted_events(segment.where)
        }

    def need_history(self, segment_ids: Iterable[str]) -> bool:
        return any(
            needs_history(self.segments[sid].where) for sid in segment_ids if sid in self.segments
        )

    def time_relative(self) -> list[str]:
        """The segments whose members can change with time alone."""
        return sorted(sid for sid, s in self.segments.items() if time_relative(s.where))


def written(
    profile_db: str,
    profile_id: str,
    was: tuple[str, ...],
    change: MembershipChange,
    cause: str,
    now: datetime,
) -> tuple[MembershipWrite, list[OutboxRow], list[EventMessage]]:
    """The membership's write, its events' outbox rows and their queue messages."""
    key = profile_key(profile_db, profile_id)
    rows, sent = [], []
    for event in membership_events(change, cause, now):
        row_id = (
            "segment-" + hashlib.blake2b(f"{key}|{event.id}".encode(), digest_size=16).hexdigest()
        )
        message = EventMessage(
            profile_db=profile_db, profile_id=profile_id, event=EventBody.of(event), row_id=row_id
        )
        dispatch = Dispatch("events", message, now, now + REDISPATCH_AFTER)
        rows.append(OutboxRow(row_id, "event", now, profile_db, profile_id, dispatch=dispatch))
        sent.append(message)
    return MembershipWrite(profile_db, profile_id, was, change.members), rows, sent


def after_event(
    uow: UnitOfWork, profile_db: str, profile_id: str, event: Event, now: datetime
) -> None:
    """Evaluate the profile's segments after an event that changed it or that one of
    them counts (nothing to do for any other event)."""
    definitions = uow.segment_definitions()
    segments = definitions.on(profile_db)
    if not segments or (
        event.type not in PROFILE_CHANGES and event.type not in definitions.counted(profile_db)
    ):
        return
    history = definitions.need_history(segments)
    for _ in range(ATTEMPTS):
        record = uow.profile(profile_db, profile_id, history)
        if not record.exists:
            return
        change = evaluate_membership(record.view, record.segments, segments, now)
        if not change:
            return
        try:
            uow.write_membership(profile_db, profile_id, change, event.id or "", now)
        except Conflict:
            continue
        return
    raise Conflict(f"the segments of profile {profile_id!r} kept changing")


# --- membership runs ----------------------------------------------------------------------


def fan_out(
    queues: Queues, run_id: str, segment: str | None = None, parts: int | None = None
) -> str:
    """Start a membership run: one message per parallel-Scan segment of the profiles."""
    if parts is None:
        from .schedules import scan_segments  # the profile table's size decides

        parts = scan_segments()
    jobs = [
        ScanMembership(run_id=run_id, segment=segment, scan_segment=index, total_segments=parts)
        for index in range(parts)
    ]
    queues.send("segments", [(job, 0) for job in jobs])
    logger.info("membership run started", extra={"run_id": run_id, "segments": parts})
    return run_id


def redefined(queues: Queues, segment_id: str, parts: int | None = None) -> str:
    """Re-evaluate every profile's membership of a segment defined anew or deleted."""
    return fan_out(queues, f"segment:{segment_id}:{uuid.uuid4().hex}", segment_id, parts)


def daily(storage: Storage, queues: Queues, now: datetime, parts: int | None = None) -> bool:
    """Once a day (the first tick of each UTC day), re-evaluate the segments whose
    conditions are relative to now or today. True when this tick started the day's run."""
    run = f"daily:{now.date().isoformat()}"
    if storage.membership_run_done(run):
        return False
    if Definitions.of(storage.defined_segments()).time_relative():
        fan_out(queues, run, parts=parts)
    storage.mark_membership_run(run, now)
    return True


@dataclass
class ScanResult:
    scanned: int = 0
    changed: int = 0


def process_scan(
    storage: Storage, queues: Queues, job: ScanMembership, now: datetime
) -> ScanResult:
    """Re-evaluate the run's segments on one part of the profiles, announcing changes."""
    definitions = Definitions.of(storage.defined_segments())
    targets = [job.segment] if job.segment else definitions.time_relative()
    result = ScanResult()
    if not targets:
        return result
    announced: list[tuple[EventMessage, int]] = []
    for record in storage.scan_profiles(job.scan_segment, job.total_segments):
        result.scanned += 1
        db, profile_id = record.view.profile_db, record.view.profile_id
        segments = definitions.on(db)
        relevant = [t for t in targets if t in segments or t in record.segments]
        if not relevant:
            continue
        history = definitions.need_history(relevant)
        for attempt in range(ATTEMPTS):
            if attempt or history:  # the Scan read no history
                record = storage.profile(db, profile_id, history)
                if not record.exists:
                    break
            change = evaluate_membership(record.view, record.segments, segments, now, relevant)
            if not change:
                break
            write, rows, sent = written(db, profile_id, record.segments, change, job.run_id, now)
            try:
                storage.commit(Changes(rows=rows, memberships=[write]))
            except Conflict:
                continue
            result.changed += 1
            announced.extend((message, 0) for message in sent)
            break
        if len(announced) >= 100:
            queues.send("events", announced)
            announced = []
    queues.send("events", announced)
    return result
