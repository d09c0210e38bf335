"""Profiles, segments and promo pools (SPEC §3.4)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.adapters import store
from chalicelib.runtime import profiles, promo

from .errors import NotFoundError
from .http import body, routes
from .models import ProfileUpsert, PromoCodes, SegmentIn

blueprint = Blueprint(__name__)
route = routes(blueprint)


def present(item: dict[str, Any]) -> dict[str, Any]:
    return {
        key: item.get(key)
        for key in ("profile_db", "profile_id", "fields", "created_at", "updated_at")
    }


@route("/profiles/{profile_db}/{profile_id}", methods=["PUT"])
def upsert_profile(profile_db: str, profile_id: str) -> dict[str, Any]:
    request = body(blueprint.current_request, ProfileUpsert)
    return present(profiles.upsert(profile_db, profile_id, request.fields, request.source))


@route("/profiles/{profile_db}/{profile_id}", methods=["GET"])
def read_profile(profile_db: str, profile_id: str) -> dict[str, Any]:
    item = store.profiles.get({"pk": store.profile_partition(profile_db, profile_id), "sk": "P"})
    if item is None:
        raise NotFoundError(f"no profile {profile_id!r} in {profile_db!r}")
    return present(item)


@route("/segments/{segment_id}", methods=["PUT"])
def define_segment(segment_id: str) -> dict[str, Any]:
    request = body(blueprint.current_request, SegmentIn)
    definition = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    store.segments.put({"segment_id": segment_id, "definition": definition})
    return {"id": segment_id, **definition}


@route("/segments/{segment_id}", methods=["GET"])
def read_segment(segment_id: str) -> dict[str, Any]:
    item = store.segments.get({"segment_id": segment_id})
    if item is None:
        raise NotFoundError(f"no segment {segment_id!r}")
    return {"id": segment_id, **item["definition"]}


@route("/promo-pools/{pool}", methods=["PUT"])
def add_promo_codes(pool: str) -> dict[str, Any]:
    request = body(blueprint.current_request, PromoCodes)
    added = promo.add_codes(pool, request.codes)
    return {"pool": pool, "added": added, "left": promo.codes_left(pool)}


@route("/promo-pools/{pool}", methods=["GET"])
def read_promo_pool(pool: str) -> dict[str, Any]:
    return {"pool": pool, "left": promo.codes_left(pool)}
