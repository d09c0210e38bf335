"""Schedule triggers and segment campaigns.

The minute tick reads the schedule index (one Query), claims each due run with a
conditional write (so two ticks never fire one run twice), and fans the segment out:
one message per parallel-Scan segment on the segments queue. A segment worker scans
its part of the profile table, evaluates the segment and the sample on each profile,
and enqueues captures in SendMessageBatch calls of ten. `send-segment` uses the same
path with the default capture.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.durations import format_datetime, parse_datetime
from chalicelib.scenarios.facts import Event, Facts
from chalicelib.scenarios.model import Condition, ScheduleTrigger, Segment
from chalicelib.scenarios.schedules import due_runs, in_sample, next_runs

from .messages import Capture, EventBody, QueueMessage, ScanSegment
from .segments import library
from .storage import ScheduleEntry
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

ITEMS_PER_SEGMENT = 5_000  # a Scan segment a worker reads in well under a minute
MAX_SEGMENTS = 1_000


def schedule_entries(scenario: CompiledScenario, now: datetime) -> list[ScheduleEntry]:
    """The schedule index entries of the scenario's schedule triggers, with their next run."""
    entries = []
    for trigger in scenario.triggers.values():
        if isinstance(trigger, ScheduleTrigger):
            upcoming = next_runs(trigger, now, 1, scenario.model.timezone)
            entries.append(
                ScheduleEntry(
                    scenario.scenario_id, trigger.id, now, upcoming[0] if upcoming else None
                )
            )
    return entries


def tick(now: datetime) -> int:
    """Fire every schedule trigger run due by `now`; returns the runs started.

    Runs missed while the stack was down are not replayed one by one: the latest due run
    fires once. A run is fanned out before it is claimed, so a tick that crashes in
    between leaves it due for the next tick; fanning one run out twice (two ticks at
    once, or a retry) captures nobody twice, as captures are idempotent per run id.
    """
    storage = services().storage
    started = 0
    for entry in storage.schedules():
        if entry.next_run is None or entry.next_run > now:
            continue
        scenario = UnitOfWork().active_version(entry.scenario_id)
        if scenario is None:
            continue
        trigger = scenario.triggers.get(entry.trigger_id)
        if not isinstance(trigger, ScheduleTrigger):
            continue
        runs = due_runs(trigger, entry.last_run, now, scenario.model.timezone)
        upcoming = next_runs(trigger, now, 1, scenario.model.timezone)
        if runs:
            fan_out(scenario, runs[-1], trigger_id=trigger.id)
        # then claim it: move next_run on, unless another tick did
        if storage.claim_schedule_run(entry, now, upcoming[0] if upcoming else None):
            started += bool(runs)
    return started


def fan_out(
    scenario: CompiledScenario,
    run_at: datetime,
    trigger_id: str | None = None,
    segment: str | dict[str, Any] | None = None,
    segments: int | None = None,
    run_id: str | None = None,
) -> str:
    """Start a segment run: one message per Scan segment. Returns the run id.

    With `trigger_id` the trigger's segment and sample decide; without, `segment` (a
    condition document) does and profiles enter by the default capture. A schedule's run
    id is its trigger and run time, so two ticks firing one run capture nobody twice.
    """
    segments = segments or scan_segments()
    run_id = run_id or f"{scenario.scenario_id}:{trigger_id or 'send'}:{format_datetime(run_at)}"
    jobs = [
        ScanSegment(
            run_id=run_id, scenario_id=scenario.scenario_id, version=scenario.version,
            trigger_id=trigger_id, segment=segment, run_at=format_datetime(run_at),
            scan_segment=index, total_segments=segments,
        )
        for index in range(segments)
    ]  # fmt: skip
    services().queues.send("segments", [(job, 0) for job in jobs])
    logger.info("segment run started", extra={"run_id": run_id, "segments": segments})
    return run_id


def quick_send(
    scenario: CompiledScenario, segment: str | dict[str, Any] | None, key: str | None = None
) -> str:
    """A send-segment run starting now; returns its run id.

    Every call is a run of its own (two in the same second capture twice into a
    `parallel` scenario). With an Idempotency-Key the run id derives from the key, so a
    fan-out retried under that key captures nobody a second time.
    """
    tag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest() if key else uuid.uuid4().hex
    run_id = f"{scenario.scenario_id}:send:{tag}"
    return fan_out(scenario, clock_now(), segment=segment, run_id=run_id)


def scan_segments() -> int:
    """Parallel Scan segments for the profile table's size (an estimate of its items)."""
    items = services().storage.profile_items_estimate()
    return max(4, min(MAX_SEGMENTS, math.ceil(items / ITEMS_PER_SEGMENT)))


@dataclass
class SegmentResult:
    scanned: int = 0
    matched: int = 0
    calls: list[int] = field(default_factory=list)


def process_segment(job: ScanSegment, now: datetime) -> SegmentResult:
    """Scan one segment of the profile table and enqueue a capture for every member."""
    scenario = services().storage.version(job.scenario_id, job.version)
    trigger = scenario.triggers.get(job.trigger_id) if job.trigger_id else None
    if isinstance(trigger, ScheduleTrigger):
        where = scenario.trigger_where[trigger.id]
        sample = trigger.sample
    else:
        where = compile_condition(_condition(job.segment))
        sample = None
    run_at = parse_datetime(job.run_at) or now
    db = scenario.model.profile_db
    result = SegmentResult()
    captures: list[tuple[QueueMessage, int]] = []
    for profile in services().storage.segment_profiles(db, job.scan_segment, job.total_segments):
        result.scanned += 1
        facts = Facts(
            profile=profile,
            now=now,
            tz=scenario.tz,
            scenario_id=scenario.scenario_id,
            segments=library,
        )
        if not in_sample(profile.profile_id, sample) or not where(facts):
            continue
        result.matched += 1
        event = Event(
            "schedule" if trigger else "segment",
            run_at,
            {"run_id": job.run_id},
            id=job.run_id,
        )
        capture = Capture(
            scenario_id=scenario.scenario_id, trigger_id=job.trigger_id, profile_db=db,
            profile_id=profile.profile_id, event=EventBody.of(event),
        )  # fmt: skip
        captures.append((capture, 0))
        if len(captures) >= 100:
            result.calls.append(services().queues.send("steps", captures))
            captures = []
    result.calls.append(services().queues.send("steps", captures))
    return result


def _condition(segment: str | dict[str, Any] | None) -> Condition | None:
    """A send-segment target: a segment id or a condition document."""
    if segment is None:
        return None
    if isinstance(segment, str):
        segment = {"segment": segment, "member": True}
    return Segment.model_validate({"where": segment}).where
