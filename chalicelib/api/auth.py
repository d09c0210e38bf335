"""`X-Api-Key` on every call but hooks, the OpenAPI document and tracking links."""

from __future__ import annotations

import hmac

from chalicelib.adapters.secrets import api_key

from .errors import Unauthorized

PUBLIC_PREFIXES = ("/hooks/", "/openapi.json", "/t/")


def check(path: str, headers: dict[str, str]) -> None:
    """Raise Unauthorized unless the path is public or the key matches (in constant time)."""
    if path.startswith(PUBLIC_PREFIXES):
        return
    given = headers.get("x-api-key")
    if not given:
        raise Unauthorized("the X-Api-Key header is missing")
    if not hmac.compare_digest(given.encode(), api_key().encode()):
        raise Unauthorized("the X-Api-Key header does not match this stack's key")
