"""One change to moto for the local stack (and the tests, which run on moto too).

moto's TransactWriteItems backs up every table a transaction touches with a deep copy
of the whole table, to restore it if the transaction is cancelled. Every step, capture
and send is a transaction, so each one copied the profiles table with its event history:
a time and a transient memory that grow with the tables, gigabytes after an hour of
`make run`. Here only the items the transaction names are backed up and, when it is
cancelled, put back as they were: the same all-or-nothing outcome.
"""

from __future__ import annotations

import copy
import types
from typing import Any

_installed = False


def install() -> None:
    """Back up only the items a transaction names (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        # the whole-table backup: the table itself, its items are backed up below
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy)  # type: ignore[attr-defined]
    original = models.DynamoDBBackend.transact_write_items

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

    models.DynamoDBBackend.transact_write_items = transact_write_items
    _installed = True


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
