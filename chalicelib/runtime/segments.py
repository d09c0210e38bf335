"""Segment definitions as the engine needs them: condition predicates by segment id."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.engine.timing import profile_zone
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.durations import zone
from chalicelib.scenarios.facts import Facts, Predicate
from chalicelib.scenarios.model import Segment

from . import membership

CACHE_SECONDS = 30.0


class SegmentLibrary:
    """Looks segments up on first use and keeps them briefly (a Lambda lives for minutes)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, Predicate | None]] = {}

    def get(self, segment_id: str, default: Any = None) -> Predicate | None:
        found = self._cache.get(segment_id)
        if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
            return found[1]
        definition = services().storage.segment_definition(segment_id, consistent=False)
        predicate = (
            compile_condition(Segment.model_validate(definition).where)
            if definition is not None
            else None
        )
        self._cache[segment_id] = (time.monotonic(), predicate)
        return predicate if predicate is not None else default

    def forget(self) -> None:
        self._cache.clear()


library = SegmentLibrary()


def define(segment_id: str, definition: dict[str, Any]) -> None:
    """Define a segment (anew) and re-evaluate every profile's membership of it."""
    wired = services()
    wired.storage.define_segment(segment_id, definition)
    library.forget()
    membership.redefined(wired.queues, segment_id)


def delete(segment_id: str) -> bool:
    """Delete a segment: its members exit it. False when there was no such segment."""
    wired = services()
    if not wired.storage.delete_segment(segment_id):
        return False
    library.forget()
    membership.redefined(wired.queues, segment_id)
    return True


def count_members(segment_id: str) -> int | None:
    """Profiles of the segment's database that are members now (a Scan of the profiles);
    None when there is no such segment."""
    storage = services().storage
    definition = storage.segment_definition(segment_id)
    if definition is None:
        return None
    segment = Segment.model_validate(definition)
    predicate = compile_condition(segment.where)
    now = clock_now()
    members = 0
    for profile in storage.segment_profiles(segment.profile_db):
        facts = Facts(
            profile=profile, now=now, tz=profile_zone(profile, zone(None)), segments=library
        )
        members += predicate(facts)
    return members
