"""The API in-process: the stack's tables and queues on moto's in-memory AWS, and the
Chalice app behind a small WSGI adapter that plays API Gateway (so schemathesis and
werkzeug's test client can call it like any WSGI app).

The environment (stage, key, region) is fixed by `tests/conftest.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.bootstrap import bootstrap
from tests.api.gateway import ApiGatewayWSGI

API_KEY = os.environ["SCENARIA_API_KEY"]


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    """The stack's tables and queues on moto, for one test module."""
    with mock_aws():
        bootstrap()
        from chalicelib.local.stack import create_resources

        create_resources()
        yield
    bootstrap()


@pytest.fixture(scope="module")
def chalice_app(stack: None) -> Any:
    from app import app

    return app


@pytest.fixture(scope="module")
def wsgi_app(chalice_app: Any) -> ApiGatewayWSGI:
    return ApiGatewayWSGI(chalice_app)


@pytest.fixture(scope="module")
def client(wsgi_app: ApiGatewayWSGI) -> Any:
    """werkzeug's test client on the API, sending the API key unless told otherwise."""
    from werkzeug.test import Client

    class KeyedClient(Client):
        def open(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["headers"] = {"X-Api-Key": API_KEY, **(kwargs.get("headers") or {})}
            return super().open(*args, **kwargs)

    return KeyedClient(wsgi_app)


@pytest.fixture(scope="module")
def drop_queued_work(stack: None) -> Iterator[Callable[[], None]]:
    """Empty the stack's queues: nothing consumes them here, and moto's SQS slows down
    as a queue grows (each send counts the messages in it)."""
    from chalicelib.adapters.aws import client
    from chalicelib.adapters.queues import queue_url
    from chalicelib.config import QUEUES

    def drop() -> None:
        sqs = client("sqs")
        for name in QUEUES:
            sqs.purge_queue(QueueUrl=queue_url(name))

    with pytest.MonkeyPatch.context() as patch:  # moto allows one purge a minute otherwise
        patch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
        yield drop
