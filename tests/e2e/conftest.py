"""The `stack` fixture: a fresh in-process stack per test (see `harness.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client
from harness import START, Stack

from app import app
from chalicelib.adapters.clock import VirtualClock, use_clock
from chalicelib.local import routes
from chalicelib.local.stack import Runtime


def _with_local_routes() -> None:
    """Add the local stack's `/local/*` routes to the app, once per process."""
    if "/local/sent" not in app.routes:
        app.register_blueprint(routes.blueprint)


@pytest.fixture
def stack(aws_stack: None) -> Iterator[Stack]:
    """Tables and queues on moto, a virtual clock at START, pumps into the real handlers."""
    _with_local_routes()
    clock = VirtualClock(START)
    previous = use_clock(clock)
    runtime = Runtime(app)
    routes.runtime = runtime
    try:
        yield Stack(Client(app).http, runtime, clock)
    finally:
        routes.runtime = None
        use_clock(previous)
