"""The use cases' stack on the in-memory storage (`test_use_cases.Stack`), on a virtual
clock from START; the default wiring is put back after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.adapters.clock import VirtualClock, use_clock
from chalicelib.bootstrap import bootstrap
from tests.unit.runtime.test_use_cases import START, Stack


@pytest.fixture
def stack() -> Iterator[Stack]:
    clock = VirtualClock(START)
    previous = use_clock(clock)
    try:
        yield Stack(clock)
    finally:
        use_clock(previous)
        bootstrap()
