"""`storage`: each storage contract test runs on both adapters, DynamoDB on moto and
memory, which must answer alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.adapters.memory_storage import MemoryStorage
from chalicelib.runtime.storage import Storage


@pytest.fixture(params=["dynamodb", "memory"])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    request.getfixturevalue("aws_stack")
    from chalicelib.adapters.dynamodb_storage import DynamoStorage

    yield DynamoStorage()
