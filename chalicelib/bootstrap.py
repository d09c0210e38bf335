"""One place that wires the runtime's ports to their adapters.

Lambda, the local stack, the CLI's `simulate`, the benches and the tests all call
`bootstrap()`: DynamoDB and SQS unless other adapters are given (the tests' in-memory
ones). Wiring anew also forgets everything the previous wiring remembered of the stack
and its account — settings, AWS clients, queue URLs, compiled versions, secrets,
segments — after the environment or the AWS account changed (a new stack, a test's
fresh moto account).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.runtime.messages import Queues
from chalicelib.runtime.storage import Storage


@dataclass(frozen=True)
class Services:
    storage: Storage
    queues: Queues


_current: Services | None = None
_lock = threading.Lock()


def bootstrap(storage: Storage | None = None, queues: Queues | None = None) -> Services:
    """Wire the adapters (DynamoDB and SQS unless given) and make them the current ones."""
    global _current
    from chalicelib.adapters import aws, secrets
    from chalicelib.adapters.dynamodb_storage import DynamoStorage
    from chalicelib.adapters.queues import SqsQueues
    from chalicelib.config import settings
    from chalicelib.runtime.segments import library

    settings.cache_clear()
    aws.reset()
    secrets.forget()
    library.forget()
    wired = Services(storage or DynamoStorage(), queues or SqsQueues())
    with _lock:
        _current = wired
    return wired


def services() -> Services:
    """The current wiring (the AWS one, wired on first use)."""
    with _lock:
        current = _current
    return current or bootstrap()
