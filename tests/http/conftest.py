"""The HTTP suite's fixtures: the whole stack in-process (tables and queues on moto, the
real app behind `chalice.test.Client`, the queue pumps, a virtual clock), built with the
end-to-end harness (`tests/e2e/harness.py`).

`stack` is a fresh stack per test; `shared_stack` is one stack per module, for the tests
that only read it (or must leave it as it was).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from chalicelib.bootstrap import bootstrap
from tests.e2e.harness import Stack, running_stack


@pytest.fixture(autouse=True, scope="module")
def _faster_moto() -> Iterator[None]:
    """Two of moto's hot spots, made fast without changing what it answers (for this
    suite's modules only; they are put back after each).

    Its SQS counts the messages of a queue on every send, reading the clock through a slow
    datetime subtraction for each message three times: a thousand-profile import (two
    thousand events) took minutes. The same counts read the clock once per count with
    `time.time()` (the same milliseconds). And every answer it serializes converts the
    same few hundred attribute names from CamelCase again: a pure function, cached here.
    """
    from moto.core import responses, utils
    from moto.sqs import models

    slow_names = utils.camelcase_to_underscores
    fast_names = functools.cache(slow_names)
    for module in (utils, responses, models):
        module.camelcase_to_underscores = fast_names  # type: ignore[attr-defined]

    def now() -> float:
        return time.time() * 1000.0

    def unix_time_millis(moment: datetime | None = None) -> float:
        return now() if moment is None else float(slow_clock(moment))

    def messages(queue: Any) -> list[Any]:
        at = now()
        return [m for m in queue._messages if at > m.visible_at and not at < m.delayed_until]

    def delayed(queue: Any) -> int:
        at = now()
        return sum(1 for m in queue._messages if at < m.delayed_until)

    def not_visible(queue: Any) -> int:
        at = now()
        return sum(1 for m in queue._messages if not at > m.visible_at)

    slow_clock = models.unix_time_millis
    fast = {
        "messages": property(messages),
        "approximate_number_of_messages_delayed": property(delayed),
        "approximate_number_of_messages_not_visible": property(not_visible),
    }
    slow = {name: models.Queue.__dict__[name] for name in fast}
    models.unix_time_millis = unix_time_millis  # type: ignore[assignment]
    for name, value in fast.items():
        setattr(models.Queue, name, value)
    try:
        yield
    finally:
        models.unix_time_millis = slow_clock  # type: ignore[assignment]
        for module in (utils, responses, models):
            module.camelcase_to_underscores = slow_names  # type: ignore[attr-defined]
        for name, value in slow.items():
            setattr(models.Queue, name, value)


@pytest.fixture
def stack(aws_stack: None) -> Iterator[Stack]:
    """A fresh stack for one test (the account of `aws_stack`, see `tests/conftest.py`)."""
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[Stack]:
    """One stack for a whole module, in its own moto account."""
    from moto import mock_aws

    from chalicelib.local.stack import create_resources

    with mock_aws():
        bootstrap()
        create_resources()
        with running_stack() as running:
            yield running
        bootstrap()
