"""The use cases' stack on the in-memory storage (`test_use_cases.Stack`), on a virtual
clock from START; the default wiring is put back after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.runtime.test_use_cases import Stack, wired


@pytest.fixture
def stack() -> Iterator[Stack]:
    yield from wired(Stack)
