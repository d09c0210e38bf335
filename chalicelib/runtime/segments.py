"""Segment definitions as the engine needs them: condition predicates by segment id."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.adapters import store
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.facts import Predicate
from chalicelib.scenarios.model import Segment

CACHE_SECONDS = 30.0


class SegmentLibrary:
    """Looks segments up on first use and keeps them briefly (a Lambda lives for minutes)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, Predicate | None]] = {}

    def get(self, segment_id: str, default: Any = None) -> Predicate | None:
        found = self._cache.get(segment_id)
        if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
            return found[1]
        item = store.segments.get({"segment_id": segment_id}, consistent=False)
        predicate = (
            compile_condition(Segment.model_validate(item["definition"]).where) if item else None
        )
        self._cache[segment_id] = (time.monotonic(), predicate)
        return predicate if predicate is not None else default

    def forget(self) -> None:
        self._cache.clear()


library = SegmentLibrary()
