"""`X-Api-Key` on every call but hooks, the OpenAPI document and tracking links (and, on
the local stack only, the route its Web Push sink takes pushes on), and what each key may do.

A key is the stack's own (`SCENARIA_API_KEY`: admin, every group) or one made with
`POST /api-keys` (SPEC §9). Its role decides which calls it may make, here, before the
view runs: `viewer` reads (and simulates), `editor` also changes, `admin` also manages
keys. Its groups decide which scenarios it sees: the scenario routes ask `caller()`.
"""

from __future__ import annotations

import hmac
from contextvars import ContextVar

from chalicelib.adapters.secrets import api_key
from chalicelib.runtime import api_keys
from chalicelib.runtime.api_keys import STACK_KEY, ApiKey

from .errors import Forbidden, Unauthorized

PUBLIC_PREFIXES = ("/hooks/", "/openapi.json", "/t/", "/console")
_public_routes: set[str] = set()  # exact route paths (templates) opened by `make_public`

KEY_ROUTES = "/api-keys"  # admin only
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READING_POSTS = frozenset({"/scenarios/simulate"})  # a POST that changes nothing

_caller: ContextVar[ApiKey | None] = ContextVar("caller", default=None)


def make_public(route: str) -> None:
    """Let one exact route (its path template, e.g. `/local/push/{subscription_id}`)
    through without the key. Only the local stack's routes call this, when they are
    registered: a push service's endpoint is called by whoever holds its URL, never with
    our key. A view of that route that must stay private calls `require_key` itself."""
    _public_routes.add(route)


def check(method: str, path: str, headers: dict[str, str]) -> None:
    """Raise Unauthorized unless the path is public or the key is one of the stack's,
    Forbidden when its role may not make this call; remember the key for `caller()`.

    `path` is the route's path template (Chalice's `Request.path`), not the URL."""
    _caller.set(None)
    if path.startswith(PUBLIC_PREFIXES) or path in _public_routes:
        return
    key = require_key(headers)
    if path.startswith(KEY_ROUTES) and key.role != "admin":
        raise Forbidden(f"only an admin key manages API keys; this key is {key.role}")
    if key.role == "viewer" and _changes(method, path):
        raise Forbidden(f"a viewer key changes nothing: {method} {path} needs an editor key")
    _caller.set(key)


def may_be_forbidden(method: str, path: str) -> bool:
    """Whether some role is refused this call (a 403), as `check` decides."""
    return path.startswith(KEY_ROUTES) or _changes(method, path)


def _changes(method: str, path: str) -> bool:
    return method not in READING_METHODS and path not in READING_POSTS


def require_key(headers: dict[str, str]) -> ApiKey:
    """The key the X-Api-Key header holds; Unauthorized when it is none of the stack's.

    The stack's own key is compared in constant time; any other is looked up by its id
    and its secret compared with the stored hash (`chalicelib/runtime/api_keys.py`)."""
    given = headers.get("x-api-key")
    if not given:
        raise Unauthorized("the X-Api-Key header is missing")
    if hmac.compare_digest(given.encode(), api_key().encode()):
        return STACK_KEY
    key = api_keys.authenticate(given)
    if key is None:
        raise Unauthorized("the X-Api-Key header does not match a key of this stack")
    return key


def caller() -> ApiKey:
    """The key of the call being served (set by `check`); Unauthorized on a public route,
    which has no key to scope by."""
    key = _caller.get()
    if key is None:
        raise Unauthorized("this call carries no API key")
    return key
