"""The `stack` fixture: a fresh in-process stack per test (see `harness.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Stack, running_stack


@pytest.fixture
def stack(aws_stack: None) -> Iterator[Stack]:
    """Tables and queues on moto, a virtual clock at START, pumps into the real handlers."""
    with running_stack() as running:
        yield running
