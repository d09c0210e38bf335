"""Profiles, segments and promo pools (SPEC §3.4)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.bootstrap import services
from chalicelib.runtime import merges, profiles, promo, segments

from .errors import BadRequest, Conflict, NotFoundError
from .http import MAX_CONDITION_BYTES, body, check_size, page_params, routes
from .models import (
    ProfileImport,
    ProfileMerge,
    ProfileUpsert,
    PromoCodes,
    Redemption,
    SegmentIn,
)

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
    item = profiles.read(profile_db, profile_id)
    if item is None or "fields" not in item:
        raise NotFoundError(f"no profile {profile_id!r} in {profile_db!r}")
    return present(item)


@route("/profiles/{profile_db}/{profile_id}", methods=["DELETE"])
def erase_profile(profile_db: str, profile_id: str) -> Response:
    """GDPR erasure: the profile, its journeys and its history are gone."""
    if not profiles.erase(profile_db, profile_id):
        raise NotFoundError(f"no profile {profile_id!r} in {profile_db!r}")
    return Response(body="", status_code=204)


@route("/profiles/{profile_db}/import", methods=["POST"])
def import_profiles(profile_db: str) -> Response:
    request = body(blueprint.current_request, ProfileImport)
    result = profiles.import_profiles(
        profile_db, [(p.profile_id, p.fields) for p in request.profiles]
    )
    return Response(result, status_code=200)


@route("/profiles/{profile_db}/merge", methods=["POST"])
def merge_profiles(profile_db: str) -> dict[str, Any]:
    """Merge `from` profiles into `into` (`profile.merged` announces it); a retry of the
    same merge finishes it and answers the same."""
    request = body(blueprint.current_request, ProfileMerge)
    try:
        return merges.merge(profile_db, request.into, request.from_)
    except merges.MergeRefused as refused:
        raise _refusals[refused.status](str(refused)) from None


_refusals: dict[int, type[Exception]] = {400: BadRequest, 404: NotFoundError, 409: Conflict}


@route("/profiles/{profile_db}/{profile_id}/journeys", methods=["GET"])
def profile_journeys(profile_db: str, profile_id: str) -> dict[str, Any]:
    limit, token = page_params(blueprint.current_request)
    found = profiles.journeys(profile_db, profile_id)
    start = int(token) if token and token.isdigit() else 0
    if token and not token.isdigit():
        raise BadRequest("next_token: not a token this API issued")
    end = start + limit
    return {"journeys": found[start:end], "next_token": str(end) if end < len(found) else None}


@route("/segments/{segment_id}", methods=["PUT"])
def define_segment(segment_id: str) -> dict[str, Any]:
    request = body(blueprint.current_request, SegmentIn)
    definition = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    check_size(definition["where"], "$.where", MAX_CONDITION_BYTES)
    segments.define(segment_id, definition)
    return {"id": segment_id, **definition}


@route("/segments/{segment_id}", methods=["DELETE"])
def delete_segment(segment_id: str) -> Response:
    """Its members exit it (`segment.exited`)."""
    if not segments.delete(segment_id):
        raise NotFoundError(f"no segment {segment_id!r}")
    return Response(body="", status_code=204)


@route("/segments/{segment_id}", methods=["GET"])
def read_segment(segment_id: str) -> dict[str, Any]:
    definition = services().storage.segment_definition(segment_id)
    if definition is None:
        raise NotFoundError(f"no segment {segment_id!r}")
    return {"id": segment_id, **definition}


@route("/segments/{segment_id}/count", methods=["GET"])
def count_segment(segment_id: str) -> dict[str, Any]:
    members = segments.count_members(segment_id)
    if members is None:
        raise NotFoundError(f"no segment {segment_id!r}")
    return {"id": segment_id, "members": members}


@route("/promo-pools/{pool}", methods=["PUT"])
def add_promo_codes(pool: str) -> dict[str, Any]:
    request = body(blueprint.current_request, PromoCodes)
    added = promo.add_codes(pool, request.codes)
    return {"pool": pool, "added": added, "left": promo.codes_left(pool)}


@route("/promo-pools/{pool}/redeem", methods=["POST"])
def redeem_promo_code(pool: str) -> dict[str, Any]:
    """Mark a code used, once (`promo_code.redeemed` announces it); 404 for a code the
    pool never had, 409 for one redeemed before (the same profile's second call announces
    it again first, so a first call that died before announcing it loses nothing)."""
    request = body(blueprint.current_request, Redemption)
    try:
        event = promo.redeem(pool, request.code, request.profile_db, request.profile_id)
    except promo.UnknownCode as error:
        raise NotFoundError(f"$.code: {error}") from None
    except promo.AlreadyRedeemed as error:
        raise Conflict(f"$.code: {error}") from None
    return {"pool": pool, "code": request.code, "event_id": event.id}


@route("/promo-pools/{pool}", methods=["GET"])
def read_promo_pool(pool: str) -> dict[str, Any]:
    if not promo.pool_exists(pool):
        raise NotFoundError(f"no promo pool {pool!r}")
    return {"pool": pool, "left": promo.codes_left(pool)}
