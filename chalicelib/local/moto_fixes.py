"""Changes to moto for the local stack (and the tests, which run on moto too): the same
answers, in a time and a memory that do not grow with everything the tables hold.

- TransactWriteItems backed up every table a transaction touches with a deep copy of the
  whole table, to restore it if the transaction is cancelled. Every step, capture and
  send is a transaction, so each one copied the profiles table with its event history.
  Here only the items the transaction names are backed up and, when it is cancelled,
  put back as they were: the same all-or-nothing outcome.
- Query sorted every item of the table (of the index: of the table) to pick the one
  partition it reads. Here it reads only that partition: a table's by its hash key, a
  global index's from a map of its items by hash key value that every write keeps up to
  date. The partition's items are then sorted, paged and filtered by moto as before.
- Scan deep-copied every item before applying its filter. Here only the items the
  filter keeps are copied.
- Each page of a Scan of a table sorted all of the table's items, then walked them
  from the first to the page's start key: a daily segment campaign took ever longer as
  the event history grew. Here a page sorts the partitions' keys only, skips those
  before its start key and outside its parallel Scan segment, and reads items until
  the page is full: the same pages, in the same order.
- Every item held its own copy of each attribute name (and of each key of its maps):
  the same few names, once per item. Here they are interned, shared by all items.
- Every DynamoDB answer went through moto's generic serializer, which walks the
  operation's output shape value by value (a third of the local stack's time in a long
  run). The data-plane answers are already in DynamoDB's JSON form: here they are
  written out as they are.
- GetQueueAttributes worked out all of a queue's attributes (its message counts go
  through every message) three times for each attribute asked for. Here once a call.

`uninstall()` puts moto back as it was (tests compare the answers of both).
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_originals: list[tuple[Any, str, Any]] = []  # (owner, attribute, moto's own value)
_scope = threading.local()  # what a query or scan running on this thread hands its helpers
PARTITIONS = "_local_partitions"  # a table's attribute: its global indexes' partition maps

Key = tuple[Any, Any]  # an item's (hash key, range key or None) DynamoTypes
Value = tuple[str, Any]  # a key attribute's (type, value)


def install() -> None:
    """Apply every change (idempotent)."""
    if _originals:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.models import Queue, SQSBackend

    def whole_table_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        # the transaction's whole-table backup: the table itself, its items are backed up below
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def scan_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        keeps = getattr(_scope, "scan_filter", None)
        if keeps is not None and isinstance(value, Item) and not keeps.expr(value):
            return value  # dropped by the filter right after: not worth a copy
        return copy.deepcopy(value, memo)

    _patch(models, "copy", types.SimpleNamespace(deepcopy=whole_table_deepcopy))
    _patch(tables, "copy", types.SimpleNamespace(deepcopy=scan_deepcopy, copy=copy.copy))
    backend = models.DynamoDBBackend
    _patch(DynamoHandler, "call_action", _one_at_a_time(DynamoHandler.call_action))
    _patch(DynamoHandler, "serialized", _plain_json(DynamoHandler.serialized))
    _patch(backend, "transact_write_items", _backed_up(backend.transact_write_items))
    _patch(backend, "update_item", _refiling_update(backend.update_item))
    _patch(Table, "put_item", _refiling_put(Table.put_item))
    _patch(Item, "__init__", _interned_item(Item.__init__))
    _patch(DynamoType, "__init__", _interned_map(DynamoType.__init__))
    _patch(Table, "delete_item", _refiling_delete(Table.delete_item))
    _patch(Table, "query", _partitioned_query(Table.query))
    _patch(Table, "all_items", _candidates_first(Table.all_items))
    _patch(Table, "scan", _filtered_scan(Table.scan))
    _patch(Queue, "attributes", property(_attributes_once(Queue.attributes.fget)))
    _patch(SQSBackend, "get_queue_attributes", _one_reading(SQSBackend.get_queue_attributes))


def uninstall() -> None:
    """Put moto back as it was; partition maps are dropped as their tables are next written."""
    from moto.dynamodb.models import dynamodb_backends

    while _originals:
        owner, name, value = _originals.pop()
        setattr(owner, name, value)
    for account in dynamodb_backends.values():
        for backend in account.values():
            for table in backend.tables.values():
                table.__dict__.pop(PARTITIONS, None)


def _patch(owner: Any, name: str, value: Any) -> None:
    _originals.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


# --- transactions back up only their items ------------------------------------------------


def _backed_up(original: Callable[..., None]) -> Callable[..., None]:
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = [_saved(self, op) for item in transact_items for op in item.values()]
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in filter(None, saved):
                if attributes is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    return transact_write_items


def _saved(
    backend: Any, op: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any] | None] | None:
    """(table, key, the item's attributes now or None) of one operation of a transaction."""
    try:
        table = backend.get_table(op["TableName"])
        if "Item" in op:
            attributes = op["Item"]
            key = {table.hash_key_attr: attributes[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attributes[table.range_key_attr]
        else:
            key = op["Key"]
        current = backend.get_item(op["TableName"], key)
    except Exception:  # a malformed operation: moto itself refuses it, nothing changes
        return None
    return op["TableName"], key, None if current is None else current.to_json()["Attributes"]


# --- one request at a time -----------------------------------------------------------------

_REQUESTS = threading.RLock()


def _one_at_a_time(original: Callable[..., Any]) -> Callable[..., Any]:
    """DynamoDB applies each request atomically; moto updates items in place without a
    lock, so two threads' UpdateItems of one item can see it half changed (a dictionary
    changing size under a copy). The local stack's threads get one request at a time."""

    def call_action(self: Any) -> Any:
        with _REQUESTS:
            return original(self)

    return call_action


# --- attribute names shared -----------------------------------------------------------------


def _interned_item(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        original(self, hash_key, range_key, {sys.intern(name): v for name, v in attrs.items()})

    return __init__


def _interned_map(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, type_as_dict: Any) -> None:
        original(self, type_as_dict)
        if self.type == "M":
            self.value = {sys.intern(name): value for name, value in self.value.items()}

    return __init__


# --- data-plane answers as they are --------------------------------------------------------

DATA_PLANE = frozenset(
    {
        "GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem",
        "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
    }
)  # fmt: skip


def _plain_json(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    def serialized(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if (
            type(action_result) not in (ActionResult, DynamoResult)
            or not isinstance(result, dict)
            or self._get_action() not in DATA_PLANE
        ):
            return original(self, action_result)
        body = json.dumps({name: value for name, value in result.items() if value is not None})
        return 200, {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}, body

    return serialized


# --- queries read one partition -----------------------------------------------------------


class Partitions:
    """A global index's items by the value of its hash key attribute."""

    def __init__(self, table: Any, attribute: str) -> None:
        self.attribute = attribute
        self.items: dict[Value, dict[Key, Any]] = {}
        self.filed: dict[Key, Value] = {}  # where each item is
        for item in _every_item(table):
            self.file((item.hash_key, item.range_key), item)

    def file(self, key: Key, item: Any) -> None:
        """File the item at `key` as it is now (None: gone) in its partition."""
        old = self.filed.pop(key, None)
        if old is not None:
            partition = self.items[old]
            del partition[key]
            if not partition:
                del self.items[old]
        attribute = None if item is None else item.attrs.get(self.attribute)
        if attribute is not None:
            value = (attribute.type, attribute.cast_value)
            self.items.setdefault(value, {})[key] = item
            self.filed[key] = value

    def partition(self, attribute: Any) -> list[Any]:
        return list(self.items.get((attribute.type, attribute.cast_value), {}).values())


def _every_item(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())


def _refile(table: Any, hash_key: Any, range_key: Any) -> None:
    """After a write: file the item at this key anew in the table's partition maps."""
    partitions = table.__dict__.get(PARTITIONS)
    if not partitions:
        return
    found = table.items.get(hash_key)
    item = found.get(range_key) if found is not None and table.range_key_attr else found
    for index in partitions.values():
        index.file((hash_key, range_key), item)


def _refiling_put(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original(self, *args, **kwargs)
        _refile(self, item.hash_key, item.range_key)
        return item

    return put_item


def _refiling_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return original(self, hash_key, range_key)
        finally:
            _refile(self, hash_key, range_key)

    return delete_item


def _refiling_update(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kw: Any) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        try:
            return original(self, table_name, key, *args, **kw)
        finally:  # moto updates the item in place: its index keys may have changed
            table = self.tables.get(table_name)
            if table is not None and table.hash_key_attr in key:
                range_key = key.get(table.range_key_attr) if table.range_key_attr else None
                _refile(
                    table,
                    DynamoType(key[table.hash_key_attr]),
                    None if range_key is None else DynamoType(range_key),
                )

    return update_item


def _partition(table: Any, hash_key: Any, index_name: str | None, conditions: Any) -> Any:
    """The items a query can find (in any order), or None when moto has to look at all."""
    if not index_name:
        if hash_key is None:
            return None
        found = table.items.get(hash_key)
        if found is None:
            return []
        return list(found.values()) if table.range_key_attr else [found]
    index = {index.name: index for index in table.all_indexes()}.get(index_name)
    if index is None:
        return None  # moto says which indexes there are
    hashes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
    wanted = dict(conditions or [])
    if len(hashes) != 1 or list(wanted) != hashes:
        return None
    partitions = table.__dict__.setdefault(PARTITIONS, {})
    if index_name not in partitions:
        partitions[index_name] = Partitions(table, hashes[0])
    return partitions[index_name].partition(wanted[hashes[0]])


def _partitioned_query(original: Callable[..., Any]) -> Callable[..., Any]:
    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        conditions = kwargs.get("hash_key_conditions")
        _scope.candidates = (self, _partition(self, hash_key, index_name, conditions))
        try:
            return original(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                *args,
                **kwargs,
            )
        finally:
            _scope.candidates = None

    return query


def _candidates_first(original: Callable[..., list[Any]]) -> Callable[..., Iterable[Any]]:
    def all_items(self: Any) -> Iterable[Any]:
        table, candidates = getattr(_scope, "candidates", None) or (None, None)
        if table is self and candidates is not None:
            _scope.candidates = None
            return candidates if isinstance(candidates, Iterator) else list(candidates)
        return original(self)

    return all_items


# --- scans copy only what they return, and read from their start key -------------------


def _filtered_scan(original: Callable[..., Any]) -> Callable[..., Any]:
    def scan(
        self: Any,
        filters: Any,
        limit: Any,
        exclusive_start_key: Any,
        filter_expression: Any = None,
        index_name: str | None = None,
        *args: Any,
        segments: tuple[Any, Any] = (None, None),
        **kwargs: Any,
    ) -> Any:
        # an index's items are filtered as projected: those are copied, as before
        _scope.scan_filter = None if index_name else filter_expression
        if not index_name:
            _scope.candidates = (self, _scan_order(self, exclusive_start_key, segments))
        try:
            return original(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                *args,
                segments=segments,
                **kwargs,
            )
        finally:
            _scope.scan_filter = _scope.candidates = None

    return scan


def _scan_order(
    table: Any, start: dict[str, Any] | None, segments: tuple[Any, Any]
) -> Iterator[Any]:
    """The table's items in the order moto's Scan reads them (by hash key, then range key),
    from the partition of the page's `start` key on, in the Scan's segment only. Lazily:
    moto stops reading once the page is full."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    first = DynamoType(start[table.hash_key_attr]).cast_value if start else None
    hashes = sorted(table.items, key=lambda value: value.cast_value)
    for value in hashes:
        if first is not None and value.cast_value < first:
            continue
        partition = table.items[value]
        if table.range_key_attr:
            items = sorted(partition.values(), key=lambda item: item.range_key.cast_value)
        else:
            items = [partition]
        if items and items[0].is_within_segment(segments):
            yield from items


# --- a queue's attributes, once a call ------------------------------------------------------


def _one_reading(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_queue_attributes(self: Any, *args: Any, **kwargs: Any) -> Any:
        _scope.queue_attributes = {}
        try:
            return original(self, *args, **kwargs)
        finally:
            _scope.queue_attributes = None

    return get_queue_attributes


def _attributes_once(original: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
    def attributes(self: Any) -> dict[str, Any]:
        read = getattr(_scope, "queue_attributes", None)
        if read is None:
            return original(self)
        if id(self) not in read:
            read[id(self)] = original(self)
        return dict(read[id(self)])

    return attributes
