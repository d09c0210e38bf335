"""DynamoDB items from and to plain Python values, and a thin table handle.

Items use the low-level wire format so the same dicts serve single calls and
TransactWriteItems. Floats travel as Decimal and come back as int or float.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.config import settings

from .aws import client

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_wire(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_decimals(value))


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values → a DynamoDB item (None values are left out)."""
    return {key: to_wire(value) for key, value in values.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: from_wire(value) for key, value in item.items()}


def from_wire(value: Mapping[str, Any]) -> Any:
    """A DynamoDB value → plain Python, as boto3's deserializer and `_plain` make it (numbers
    as int or float), two and a half times faster: a profile's read is hundreds of items."""
    ((kind, data),) = value.items()
    if kind == "S" or kind == "BOOL":
        return data
    if kind == "M":
        return {key: from_wire(inner) for key, inner in data.items()}
    if kind == "L":
        return [from_wire(inner) for inner in data]
    if kind == "N":
        return _number(data)
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(data)
    if kind == "NS":
        return {_number(number) for number in data}
    return _plain(_deserializer.deserialize(value))  # binary: boto3's Binary


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _decimals(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(inner) for inner in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, set):
        return {_plain(inner) for inner in value}
    return value


class ConditionFailed(Exception):
    """A write's condition did not hold (or a transaction conflicted): nothing was written.
    `item`: the item as it was, when the write asked for it (None: none, or not asked)."""

    def __init__(self, message: str, item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.item = item


@contextmanager
def _conditions() -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if is_conditional_failure(error):
            old = error.response.get("Item")
            raise ConditionFailed(str(error), from_item(old) if old else None) from error
        raise


def is_conditional_failure(error: Exception) -> bool:
    """True for a failed condition, alone or inside a cancelled transaction."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])  # type: ignore[attr-defined]
        return any(
            r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons
        )
    return False


class Table:
    """One table of the stack, by its short name (`instances`, `timers`, ...)."""

    def __init__(self, name: str) -> None:
        self.short_name = name

    @property
    def name(self) -> str:
        return settings().table(self.short_name)

    def get(
        self, key: Mapping[str, Any], consistent: bool = True, projection: str | None = None
    ) -> dict[str, Any] | None:
        """GetItem; `projection`: only these attributes (a ProjectionExpression)."""
        arguments: dict[str, Any] = {}
        if projection:
            arguments["ProjectionExpression"] = projection
        answer = client("dynamodb").get_item(
            TableName=self.name, Key=to_item(key), ConsistentRead=consistent, **arguments
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    def put(self, item: Mapping[str, Any], condition: str | None = None, **expression: Any) -> None:
        arguments: dict[str, Any] = {"TableName": self.name, "Item": to_item(item)}
        if condition:
            arguments["ConditionExpression"] = condition
        with _conditions():
            client("dynamodb").put_item(**arguments, **_expression(expression))

    def update(
        self,
        key: Mapping[str, Any],
        update: str,
        condition: str | None = None,
        returned: str = "ALL_NEW",
        old_if_refused: bool = False,
        **expression: Any,
    ) -> dict[str, Any]:
        """UpdateItem; answers the item after it (`returned="ALL_OLD"`: as it was before).
        `old_if_refused`: a ConditionFailed carries the item as it was, in the same call."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": update,
        }
        if condition:
            arguments["ConditionExpression"] = condition
        if old_if_refused:
            arguments["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        with _conditions():
            answer = client("dynamodb").update_item(
                **arguments, ReturnValues=returned, **_expression(expression)
            )
        return from_item(answer.get("Attributes", {}))

    def delete(
        self, key: Mapping[str, Any], condition: str | None = None, **expression: Any
    ) -> None:
        arguments: dict[str, Any] = {"TableName": self.name, "Key": to_item(key)}
        if condition:
            arguments["ConditionExpression"] = condition
        with _conditions():
            client("dynamodb").delete_item(**arguments, **_expression(expression))

    def query(
        self, key_condition: str, index: str | None = None, **options: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item matching, page after page (`limit` caps the total)."""
        limit = options.pop("limit", None)
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
        }
        if index:
            arguments["IndexName"] = index
        if "forward" in options:
            arguments["ScanIndexForward"] = options.pop("forward")
        if "filter" in options:
            arguments["FilterExpression"] = options.pop("filter")
        arguments.update(_expression(options))
        yield from self._pages("query", arguments, limit)

    def scan(
        self, segment: int | None = None, total_segments: int | None = None, **options: Any
    ) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {"TableName": self.name}
        if total_segments:
            arguments.update(Segment=segment, TotalSegments=total_segments)
        limit = options.pop("limit", None)
        if "filter" in options:
            arguments["FilterExpression"] = options.pop("filter")
        arguments.update(_expression(options))
        yield from self._pages("scan", arguments, limit)

    def page(
        self, operation: str, limit: int, token: str | None, **options: Any
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a `query` or `scan` and the token of the next (None at the end).

        As in DynamoDB, a filter may leave a page with fewer than `limit` items.
        """
        arguments: dict[str, Any] = {"TableName": self.name, "Limit": limit}
        renames = {
            "key_condition": "KeyConditionExpression",
            "index": "IndexName",
            "filter": "FilterExpression",
            "forward": "ScanIndexForward",
        }
        for name, argument in renames.items():
            if options.get(name) is not None:
                arguments[argument] = options[name]
        arguments.update(_expression(options))
        if token:
            arguments["ExclusiveStartKey"] = decode_token(token)
        answer = getattr(client("dynamodb"), operation)(**arguments)
        last = answer.get("LastEvaluatedKey")
        return [from_item(item) for item in answer.get("Items", [])], encode_token(
            last
        ) if last else None

    def _pages(
        self, operation: str, arguments: dict[str, Any], limit: int | None
    ) -> Iterator[dict[str, Any]]:
        call = getattr(client("dynamodb"), operation)
        count = 0
        while True:
            if limit is not None:
                arguments["Limit"] = max(1, min(1000, limit - count))
            answer = call(**arguments)
            for item in answer.get("Items", []):
                yield from_item(item)
                count += 1
                if limit is not None and count >= limit:
                    return
            start = answer.get("LastEvaluatedKey")
            if not start:
                return
            arguments["ExclusiveStartKey"] = start

    def batch_put(self, items: Sequence[Mapping[str, Any]]) -> int:
        """BatchWriteItem in groups of 25, retrying what DynamoDB leaves unprocessed."""
        requests = [{"PutRequest": {"Item": to_item(values)}} for values in items]
        calls = 0
        for start in range(0, len(requests), 25):
            pending = {self.name: requests[start : start + 25]}
            while pending:
                calls += 1
                pending = (
                    client("dynamodb")
                    .batch_write_item(RequestItems=pending)
                    .get("UnprocessedItems")
                    or {}
                )
        return calls

    def batch_get(
        self,
        keys: Sequence[Mapping[str, Any]],
        consistent: bool = False,
        projection: str | None = None,
    ) -> list[dict[str, Any]]:
        """BatchGetItem in groups of 100, retrying unprocessed keys; `projection`: only
        these attributes (a ProjectionExpression, the key's among them to tell the items)."""
        (found,) = batch_get([BatchGet(self, keys, consistent, projection)])
        return found

    def batch_delete(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """BatchWriteItem deletes in groups of 25."""
        requests = [{"DeleteRequest": {"Key": to_item(key)}} for key in keys]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.name: requests[start : start + 25]}
            while pending:
                pending = (
                    client("dynamodb")
                    .batch_write_item(RequestItems=pending)
                    .get("UnprocessedItems")
                    or {}
                )

    # --- transaction items -------------------------------------------------------

    def tx_put(
        self, item: Mapping[str, Any], condition: str | None = None, **expression: Any
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.name, "Item": to_item(item)}
        if condition:
            put["ConditionExpression"] = condition
        put.update(_expression(expression))
        return {"Put": put}

    def tx_update(
        self, key: Mapping[str, Any], update: str, condition: str | None = None, **expression: Any
    ) -> dict[str, Any]:
        change: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": update,
        }
        if condition:
            change["ConditionExpression"] = condition
        change.update(_expression(expression))
        return {"Update": change}

    def tx_delete(
        self, key: Mapping[str, Any], condition: str | None = None, **expression: Any
    ) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self.name, "Key": to_item(key)}
        if condition:
            delete["ConditionExpression"] = condition
        delete.update(_expression(expression))
        return {"Delete": delete}


@dataclass(frozen=True)
class BatchGet:
    """The items of one table that a `batch_get` reads (as `Table.batch_get` reads them)."""

    table: Table
    keys: Sequence[Mapping[str, Any]]
    consistent: bool = False
    projection: str | None = None


def batch_get(gets: Sequence[BatchGet]) -> list[list[dict[str, Any]]]:
    """The items of several tables (each once) in as few BatchGetItem calls as they fit
    (100 keys a call), retrying unprocessed keys: for each get, the items it found."""
    if len({get.table.name for get in gets}) != len(gets):
        raise ValueError("one get per table")
    wanted = [(get, to_item(key)) for get in gets for key in get.keys]
    found: dict[str, list[dict[str, Any]]] = {get.table.name: [] for get in gets}
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {}
        for get, key in wanted[start : start + 100]:
            options: dict[str, Any] = {"ConsistentRead": get.consistent}
            if get.projection:
                options["ProjectionExpression"] = get.projection
            request.setdefault(get.table.name, {"Keys": [], **options})["Keys"].append(key)
        while request:
            answer = client("dynamodb").batch_get_item(RequestItems=request)
            for name, items in answer.get("Responses", {}).items():
                found[name].extend(from_item(item) for item in items)
            request = answer.get("UnprocessedKeys") or {}
    return [found[get.table.name] for get in gets]


class BadToken(ValueError):
    """A pagination token this stack did not issue."""


def encode_token(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise BadToken("next_token is not a token this API issued") from None
    if not isinstance(key, dict) or not all(
        isinstance(v, dict) and len(v) == 1 for v in key.values()
    ):
        raise BadToken("next_token is not a token this API issued")
    return key


def _expression(options: Mapping[str, Any]) -> dict[str, Any]:
    """`names={...}`, `values={...}` → the expression attribute arguments."""
    arguments: dict[str, Any] = {}
    if options.get("names"):
        arguments["ExpressionAttributeNames"] = dict(options["names"])
    if options.get("values"):
        arguments["ExpressionAttributeValues"] = {
            key: to_wire(value) for key, value in options["values"].items()
        }
    return arguments


def transact(items: list[dict[str, Any]]) -> None:
    """Write items atomically: one plain call for a single item, TransactWriteItems for more.

    Raises ConditionFailed, writing nothing, when any condition does not hold.
    """
    if not items:
        return
    if len(items) == 1:
        ((kind, request),) = items[0].items()
        operation = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[kind]
        with _conditions():
            getattr(client("dynamodb"), operation)(**request)
        return
    if len(items) > 100:
        raise ValueError(
            f"one commit of {len(items)} writes exceeds DynamoDB's 100 per transaction"
        )
    with _conditions():
        client("dynamodb").transact_write_items(TransactItems=items)
