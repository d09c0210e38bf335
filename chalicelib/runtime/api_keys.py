"""Scoped API keys (SPEC §9): who may call the API, with which role, on which groups.

A key reads `sk_<key id>_<secret>`. Only a salted hash of the secret is stored (HMAC-SHA256
keyed with a random per-key salt: the secret is 256 random bits, so a slow hash would add
nothing but latency), and a presented key is compared with it in constant time. Every call
reads the key's item again (one GetItem), so a revoked key is refused at once by every
warm function: there is no cache to outlive a revocation.

The stack's own key (`SCENARIA_API_KEY`) is an admin key of every group; it is checked
in `chalicelib/api/auth.py` and never stored here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.adapters import api_keys as stored
from chalicelib.adapters.clock import now
from chalicelib.scenarios.durations import format_datetime

Role = Literal["admin", "editor", "viewer"]
PREFIX = "sk"


@dataclass(frozen=True)
class ApiKey:
    """A caller's key: `key_id` None is the stack's own key. No `groups` means every group."""

    key_id: str | None
    name: str
    role: Role
    groups: tuple[str, ...] = ()

    def sees(self, group: str | None) -> bool:
        """Whether scenarios of this `group` (None: a scenario without one) are in scope."""
        return not self.groups or group in self.groups


STACK_KEY = ApiKey(None, "SCENARIA_API_KEY", "admin")


def create(name: str, role: Role, groups: list[str]) -> tuple[dict[str, Any], str]:
    """Store a new key; its description and the key itself, which is never shown again."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    item = {
        "key_id": key_id,
        "name": name,
        "role": role,
        "groups": groups,
        "salt": salt,
        "secret_hash": _digest(salt, secret),
        "created_at": format_datetime(now()),
    }
    stored.save(item)
    return _described(item), f"{PREFIX}_{key_id}_{secret}"


def listed() -> list[dict[str, Any]]:
    """Every key, oldest first, without salt or hash."""
    return sorted((_described(item) for item in stored.every()), key=lambda key: key["created_at"])


def revoke(key_id: str) -> bool:
    """Revoke a key at once; False when there is no such key."""
    return stored.delete(key_id)


def authenticate(given: str) -> ApiKey | None:
    """The stored key `given` presents, or None (unknown, revoked, or a wrong secret)."""
    prefix, _, rest = given.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not secret or not _is_key_id(key_id):
        return None
    item = stored.load(key_id)
    if item is None or not hmac.compare_digest(
        _digest(item["salt"], secret), str(item["secret_hash"])
    ):
        return None
    return ApiKey(key_id, item["name"], item["role"], tuple(item.get("groups") or ()))


def _is_key_id(text: str) -> bool:
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def _described(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["key_id"],
        "name": item["name"],
        "role": item["role"],
        "groups": list(item.get("groups") or []),
        "created_at": item["created_at"],
    }
