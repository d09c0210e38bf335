"""The stored API keys (table `api_keys`): one item per key, by its id.

An item holds the key's name, role and groups and a salted hash of its secret, never
the secret itself; a revoked key's item is deleted.
"""

from __future__ import annotations

from typing import Any

from .dynamo import ConditionFailed, Table

keys = Table("api_keys")


def save(item: dict[str, Any]) -> None:
    """Store a new key (its id is fresh: an existing one is never overwritten)."""
    keys.put(item, "attribute_not_exists(key_id)")


def load(key_id: str) -> dict[str, Any] | None:
    """A key's item, read consistently: a revocation is seen by the very next call."""
    return keys.get({"key_id": key_id})


def every() -> list[dict[str, Any]]:
    """Every stored key (a Scan: a stack has a handful)."""
    return list(keys.scan())


def delete(key_id: str) -> bool:
    """Delete a key's item; False when there was none."""
    try:
        keys.delete({"key_id": key_id}, "attribute_exists(key_id)")
    except ConditionFailed:
        return False
    return True
