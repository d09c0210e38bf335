"""`X-Api-Key` on every call but hooks, the OpenAPI document and tracking links (and, on
the local stack only, the route its Web Push sink takes pushes on)."""

from __future__ import annotations

import hmac

from chalicelib.adapters.secrets import api_key

from .errors import Unauthorized

PUBLIC_PREFIXES = ("/hooks/", "/openapi.json", "/t/", "/console")
_public_routes: set[str] = set()  # exact route paths (templates) opened by `make_public`


def make_public(route: str) -> None:
    """Let one exact route (its path template, e.g. `/local/push/{subscription_id}`)
    through without the key. Only the local stack's routes call this, when they are
    registered: a push service's endpoint is called by whoever holds its URL, never with
    our key. A view of that route that must stay private calls `require_key` itself."""
    _public_routes.add(route)


def check(path: str, headers: dict[str, str]) -> None:
    """Raise Unauthorized unless the path is public or the key matches (in constant time).

    `path` is the route's path template (Chalice's `Request.path`), not the URL."""
    if path.startswith(PUBLIC_PREFIXES) or path in _public_routes:
        return
    require_key(headers)


def require_key(headers: dict[str, str]) -> None:
    """Raise Unauthorized unless the X-Api-Key header holds the stack's key."""
    given = headers.get("x-api-key")
    if not given:
        raise Unauthorized("the X-Api-Key header is missing")
    if not hmac.compare_digest(given.encode(), api_key().encode()):
        raise Unauthorized("the X-Api-Key header does not match this stack's key")
