"""The stack's environment for every test, set before anything imports the app, and the
in-process AWS account the integration and end-to-end tests run on, and the recording of
every AWS request the functions make, which one test checks against the packaged role.

`app.py` names its queue event sources from the configuration when it is imported, so
the stage, the key and the region must be fixed here, at collection, before any test
module (or another conftest) imports it. Unit tests need nothing else; the fixture below
imports moto and the stack only when a test asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chalicelib.local.stack import new_vapid_key
from tests.permissions import Recorder, recording

os.environ.pop("SCENARIA_AWS_ENDPOINT", None)  # in-process moto, never a server
os.environ.pop("SCENARIA_API_KEY_PARAMETER", None)
os.environ.update(
    SCENARIA_STAGE="test",
    SCENARIA_API_KEY="test-key",
    SCENARIA_PRECISE_DELAYS="0",
    SCENARIA_TIMER_SHARDS="2",  # fewer index queries per sweep: the suite runs faster
    SCENARIA_WEBHOOK_ALLOW="127.0.0.0/8,::1/128",  # webhook nodes call test servers on loopback
    SCENARIA_VAPID_PRIVATE_KEY=new_vapid_key(),
    SCENARIA_SES_SANDBOX="1",  # moto's SES publishes no Send events: the stack does, as SES
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_LOG_LEVEL="WARNING",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_TRACE_DISABLED="true",
)


@pytest.fixture
def aws_stack() -> Iterator[None]:
    """A fresh moto account holding every table and queue of the stack (`infra/resources.py`).

    Every cache that remembers a client, a queue URL, a compiled version, the API key or a
    segment is cleared first, so nothing leaks from one test's account into the next.
    """
    from moto import mock_aws

    from chalicelib.bootstrap import bootstrap
    from chalicelib.local.stack import create_resources

    with mock_aws():
        bootstrap()
        create_resources()
        yield
        bootstrap()


# --- the functions' AWS requests, checked against the packaged role at the end ---------

ROLE_CHECK = "test_every_request_the_suites_made_is_allowed_by_the_role"


@pytest.fixture(autouse=True, scope="session")
def functions_requests() -> Iterator[Recorder]:
    """Every AWS request the functions' code makes in this run (`tests/permissions.py`);
    `ROLE_CHECK`, run last, checks them against the packaged template's role."""
    with recording() as recorder:
        yield recorder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`ROLE_CHECK` after every other test, whatever the order of the files."""
    items.sort(key=lambda item: getattr(item, "originalname", item.name) == ROLE_CHECK)
