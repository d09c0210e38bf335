"""The stack's secrets: SSM SecureString parameters on AWS, the environment locally.

Each is read once per process; a stack's secrets change only with a new deployment.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from chalicelib.config import settings

from .aws import client


def _read(value: str | None, parameter: str | None, what: str) -> str:
    if parameter:
        answer = client("ssm").get_parameter(Name=parameter, WithDecryption=True)
        return str(answer["Parameter"]["Value"])
    if value:
        return value
    raise RuntimeError(f"no {what} configured")


@cache
def api_key() -> str:
    """The key every API call but hooks and tracking links carries in `X-Api-Key`."""
    config = settings()
    return _read(
        config.api_key,
        config.api_key_parameter,
        "API key: set SCENARIA_API_KEY or SCENARIA_API_KEY_PARAMETER",
    )


@cache
def vapid_private_key() -> str:
    """The Web Push signing key (VAPID)."""
    config = settings()
    return _read(
        config.vapid_private_key,
        config.vapid_key_parameter,
        "VAPID key: set SCENARIA_VAPID_PRIVATE_KEY or SCENARIA_VAPID_KEY_PARAMETER",
    )


@cache
def link_key() -> bytes:
    """The key that signs tracking links, derived from the API key: a new API key
    invalidates the links of e-mails sent before it."""
    return hmac.new(api_key().encode(), b"scenaria tracking links", hashlib.sha256).digest()


def forget() -> None:
    """Read the secrets again (tests that change the configuration)."""
    api_key.cache_clear()
    vapid_private_key.cache_clear()
    link_key.cache_clear()
