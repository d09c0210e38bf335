"""The one place that builds boto3 clients.

Clients are created lazily and cached per thread (boto3 clients are thread-safe, but
creating one is not), so tests can swap the endpoint or enter moto's `mock_aws` first
and call `reset()`. They all come from one session, created under a lock: a session
reads the service models from disk, and a session per client would pay that again for
every client of every cold start and thread. Every call passes its service, operation
and parameters to the listeners in `_listeners`: `count_requests` counts them for the
benchmarks, and the tests check each against the packaged stack's execution role.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import settings

_local = threading.local()
_lock = threading.Lock()
_session: boto3.session.Session | None = None
Listener = Callable[[str, str, Mapping[str, Any]], None]  # (service, operation, parameters)
_listeners: list[Listener] = []
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# Sending an e-mail or an SMS is not idempotent: botocore would send it again after a read
# timeout. The channel worker decides instead (chalicelib/runtime/channels.py).
_SENDS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})
_SENDING_SERVICES = frozenset({"sesv2", "sns"})


def client(service: str) -> Any:
    """A boto3 client for `service` on the stack's region and endpoint."""
    cache: dict[str, Any] = _local.__dict__.setdefault("clients", {})
    found = cache.get(service)
    if found is None:
        config = settings()
        with _lock:
            found = _shared_session().client(
                service,
                region_name=config.region,
                endpoint_url=config.aws_endpoint,
                config=_SENDS_CONFIG if service in _SENDING_SERVICES else _BOTO_CONFIG,
            )
        # once per call (retries do not emit it again), with the caller's parameters
        found.meta.events.register("before-parameter-build", _announce)
        cache[service] = found
    return found


def _shared_session() -> boto3.session.Session:
    """The process's session (call with `_lock` held): its loader keeps the service models."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def reset() -> None:
    """Forget this thread's clients (after the endpoint changed, or to enter `mock_aws`).

    The session stays: it holds nothing of the stack's configuration, and the credentials
    it resolved come from the process's environment, which does not change.
    """
    _local.__dict__.pop("clients", None)


def _announce(model: Any, params: Mapping[str, Any], **_: Any) -> None:
    for listener in _listeners:
        listener(model.service_model.service_name, model.name, params)


class count_requests:
    """Count AWS requests by (service, operation) while the block runs."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def _record(self, service: str, operation: str, _: Mapping[str, Any]) -> None:
        self.counts[(service, operation)] += 1

    def __enter__(self) -> count_requests:
        _listeners.append(self._record)
        return self

    def __exit__(self, *_: object) -> None:
        _listeners.remove(self._record)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
