"""The one place that builds boto3 clients.

Clients are created lazily and cached per thread (boto3 clients are thread-safe, but
creating one is not), so tests can swap the endpoint or enter moto's `mock_aws` first
and call `reset()`. Every request passes through `count_requests` hooks, which the
benchmarks use to count AWS calls by service and operation.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import settings

_local = threading.local()
_lock = threading.Lock()
_listeners: list[Callable[[str, str], None]] = []
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def client(service: str) -> Any:
    """A boto3 client for `service` on the stack's region and endpoint."""
    cache: dict[str, Any] = _local.__dict__.setdefault("clients", {})
    found = cache.get(service)
    if found is None:
        config = settings()
        with _lock:
            found = boto3.session.Session().client(
                service,
                region_name=config.region,
                endpoint_url=config.aws_endpoint,
                config=_BOTO_CONFIG,
            )
        found.meta.events.register("before-call", _announce)
        cache[service] = found
    return found


def reset() -> None:
    """Forget this thread's clients (after the endpoint or credentials changed)."""
    _local.__dict__.pop("clients", None)


def _announce(model: Any, **_: Any) -> None:
    for listener in _listeners:
        listener(model.service_model.service_name, model.name)


class count_requests:
    """Count AWS requests by (service, operation) while the block runs."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def _record(self, service: str, operation: str) -> None:
        self.counts[(service, operation)] += 1

    def __enter__(self) -> count_requests:
        _listeners.append(self._record)
        return self

    def __exit__(self, *_: object) -> None:
        _listeners.remove(self._record)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
