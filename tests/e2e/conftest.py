"""The `stack` fixture: a fresh in-process stack per test (see `harness.py`); and
`local_stack`: `make run` in a process of its own, one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Stack, running_stack

from tests.local_process import VIRTUAL_DAYTIME, started


@pytest.fixture
def stack(aws_stack: None) -> Iterator[Stack]:
    """Tables and queues on moto, a virtual clock at START, pumps into the real handlers."""
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def local_stack() -> Iterator[str]:
    """`python -m chalicelib.local` on a virtual clock in the daytime; its URL."""
    with started(**VIRTUAL_DAYTIME) as (url, _):
        yield url
