"""Calls made once per `Idempotency-Key`: Powertools' idempotency on the stack's table.

Powertools writes a key's record `INPROGRESS` (conditionally) before the call runs and
`COMPLETED` with its answer after; a call that raises deletes it, so a retry runs again.
The request's body is hashed into the record: the same key with another body is
refused. A second call while the first runs waits for its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from chalicelib.config import settings

from .aws import client

WINDOW = timedelta(days=1)  # how long a key is remembered
WAIT_SECONDS = 20.0  # how long a second call waits for the first (under API Gateway's 29 s)
POLL_SECONDS = 0.1


class KeyReused(ValueError):
    """The key was used before with a different request; nothing was done."""


class StillRunning(RuntimeError):
    """The first call with the key had not finished when the second stopped waiting."""


def once(
    scope: str,
    key: str,
    request: Any,
    call: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> tuple[dict[str, Any], bool]:
    """Run `call` once for `key` within `scope`; its answer and whether it was replayed.

    `request` (JSON-able) is what the key stands for: a later call with the key and an
    equal request gets the first answer, one with another request raises KeyReused.
    `lambda_context` bounds an `INPROGRESS` record by the function's remaining time, so
    a call that was killed does not hold its key for the whole window.
    """
    ran = False

    def run(request: dict[str, Any]) -> dict[str, Any]:
        nonlocal ran
        ran = True
        return call()

    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=int(WINDOW.total_seconds()),
        lambda_context=lambda_context,
    )
    guarded = idempotent_function(
        run,
        data_keyword_argument="request",
        persistence_store=_persistence(),
        config=config,
        key_prefix=f"once#{scope}",
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            answer = guarded(request={"key": key, "request": request})
        except IdempotencyValidationError:
            raise KeyReused("Idempotency-Key: already used for a different request") from None
        except IdempotencyAlreadyInProgressError:
            if time.monotonic() >= deadline:
                raise StillRunning(
                    "Idempotency-Key: a call with this key is still running; retry shortly"
                ) from None
            time.sleep(POLL_SECONDS)
            continue
        return answer, not ran


def _persistence() -> DynamoDBPersistenceLayer:
    """The stack's `idempotency` table, keyed by `key` and expiring by `expires_at`."""
    return DynamoDBPersistenceLayer(
        table_name=settings().table("idempotency"),
        key_attr="key",
        expiry_attr="expires_at",
        boto3_client=client("dynamodb"),
    )
