"""API keys (SPEC §9 "Access groups and keys"): made, listed and revoked by admin keys
(`auth.check` refuses every other role before these views run)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.runtime import api_keys

from .errors import BadRequest, NotFoundError
from .http import body, routes
from .models import ApiKeyIn

blueprint = Blueprint(__name__)
route = routes(blueprint)


@route("/api-keys", methods=["POST"])
def create_api_key() -> Response:
    """A new key, shown in `key` this once: only its salted hash is kept."""
    request = body(blueprint.current_request, ApiKeyIn)
    if request.role == "admin" and request.groups:
        raise BadRequest(
            "$.groups: an admin key manages keys, so it sees every group; "
            "give groups to editor and viewer keys"
        )
    described, key = api_keys.create(
        request.name, request.role, list(dict.fromkeys(request.groups))
    )
    return Response({**described, "key": key}, status_code=201)


@route("/api-keys", methods=["GET"])
def list_api_keys() -> dict[str, Any]:
    return {"api_keys": api_keys.listed()}


@route("/api-keys/{key_id}", methods=["DELETE"])
def revoke_api_key(key_id: str) -> Response:
    """Revoked at once: every call reads the key again."""
    if not api_keys.revoke(key_id):
        raise NotFoundError(f"no API key {key_id!r}")
    return Response(body="", status_code=204)
