"""`X-Api-Key` on every call but hooks, the OpenAPI document and tracking links."""

from __future__ import annotations

import hmac
from functools import cache

from chalicelib.adapters.aws import client
from chalicelib.config import settings

from .errors import Unauthorized

PUBLIC_PREFIXES = ("/hooks/", "/openapi.json", "/t/")


@cache
def api_key() -> str:
    """The stack's key: an SSM SecureString parameter on AWS, the environment locally."""
    config = settings()
    if config.api_key_parameter:
        answer = client("ssm").get_parameter(Name=config.api_key_parameter, WithDecryption=True)
        return str(answer["Parameter"]["Value"])
    if config.api_key:
        return config.api_key
    raise RuntimeError("no API key configured: set SCENARIA_API_KEY or SCENARIA_API_KEY_PARAMETER")


def check(path: str, headers: dict[str, str]) -> None:
    """Raise Unauthorized unless the path is public or the key matches (in constant time)."""
    if path.startswith(PUBLIC_PREFIXES):
        return
    given = headers.get("x-api-key")
    if not given:
        raise Unauthorized("the X-Api-Key header is missing")
    if not hmac.compare_digest(given.encode(), api_key().encode()):
        raise Unauthorized("the X-Api-Key header does not match this stack's key")
