"""Profile items: every write is an UpdateItem of the attributes it touches.

A profile's item (`P` in its partition) is changed by upserts, imports, the engine's
`update_profile` nodes, hard bounces and gone push subscriptions, often at the same
moment. None of them writes the whole item back from a read: each sets or removes the
fields it changes, so a concurrent change of other fields always survives (SPEC §5).
Only the creation of a profile is a PutItem, conditioned on there being none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.runtime.storage import Merged, ProfileContention, merged_fields

from . import store
from .dynamo import ConditionFailed

ATTEMPTS = 3  # create → update → create again: only an erasure in between needs the third


def item_key(profile_db: str, profile_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": "P"}


def read(profile_db: str, profile_id: str) -> dict[str, Any] | None:
    """The profile's item, or None."""
    return store.profiles.get(item_key(profile_db, profile_id))


def read_many(profile_db: str, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The items of those profiles that exist, by profile id (BatchGetItem, 100 a call)."""
    keys = [item_key(profile_db, profile_id) for profile_id in profile_ids]
    return {item["profile_id"]: item for item in store.profiles.batch_get(keys)}


def merge_fields(
    profile_db: str, profile_id: str, fields: Mapping[str, Any], stamp: str, exists: bool = True
) -> Merged:
    """Merge `fields` into the profile (None removes a field), creating it if need be.

    One UpdateItem sets and removes exactly those fields and answers the item as it was
    just before, so what changed is known exactly however many writers race. `exists`
    says which write to try first (the caller's read); the other follows if it was wrong.
    """
    for _ in range(ATTEMPTS):
        if exists:
            try:
                before = _update_fields(profile_db, profile_id, fields, stamp)
            except ConditionFailed:
                exists = False
                continue
            after = {
                **before,
                "fields": merged_fields(before.get("fields"), fields),
                "created_at": before.get("created_at", stamp),
                "updated_at": stamp,
            }
            return Merged(before, after)
        item = {
            **item_key(profile_db, profile_id),
            "profile_db": profile_db,
            "profile_id": profile_id,
            "fields": merged_fields({}, fields),
            "created_at": stamp,
            "updated_at": stamp,
        }
        try:
            store.profiles.put(item, "attribute_not_exists(pk)")
        except ConditionFailed:
            exists = True
            continue
        return Merged(None, item)
    raise ProfileContention(f"profile {profile_id!r} of {profile_db!r} kept changing")


def _update_fields(
    profile_db: str, profile_id: str, fields: Mapping[str, Any], stamp: str
) -> dict[str, Any]:
    names = {"#f": "fields"}
    values: dict[str, Any] = {":now": stamp}
    sets = ["updated_at = :now", "created_at = if_not_exists(created_at, :now)"]
    removes = []
    for index, (name, value) in enumerate(fields.items()):
        names[f"#n{index}"] = name
        if value is None:
            removes.append(f"#f.#n{index}")
        else:
            values[f":v{index}"] = value
            sets.append(f"#f.#n{index} = :v{index}")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return store.profiles.update(
        item_key(profile_db, profile_id),
        expression,
        "attribute_exists(#f)",
        returned="ALL_OLD",
        names=names,
        values=values,
    )


def create_item(
    profile_db: str,
    profile_id: str,
    fields: dict[str, Any],
    stamp: str,
    segments: tuple[str, ...] = (),
) -> dict:
    """A transaction item creating the profile with `fields` (and the segments it belongs
    to), unless it exists (then the transaction fails and its step is tried again on the
    profile as it now is)."""
    item: dict[str, Any] = {
        **item_key(profile_db, profile_id),
        "profile_db": profile_db,
        "profile_id": profile_id,
        "fields": fields,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if segments:
        item["segments"] = list(segments)
    return store.profiles.tx_put(item, "attribute_not_exists(pk)")


def update_item(
    profile_db: str,
    profile_id: str,
    stamp: str,
    *,
    set_fields: Mapping[str, Any],
    remove: list[str],
    add: Mapping[str, float],
    consents: Mapping[str, bool],
    has_consents: bool,
    membership: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """A transaction item changing only the fields named: set, removed, added to (from 0
    when missing) and single consents, each in place; with `membership` (was, members)
    also the segments the profile belongs to, expecting them to be `was` still.

    Consents are set one channel at a time inside `fields.consents`; a profile that had
    no consents map when it was read (none, or a value of another type) gets one,
    conditioned on still having none (else the transaction fails and its step is tried
    again on the profile as it now is).
    """
    names = {"#f": "fields"}
    values: dict[str, Any] = {":now": stamp}
    sets = ["updated_at = :now"]
    conditions = ["attribute_exists(#f)"]
    for index, (name, value) in enumerate(set_fields.items()):
        names[f"#s{index}"] = name
        values[f":s{index}"] = value
        sets.append(f"#f.#s{index} = :s{index}")
    if add:
        values[":zero"] = 0
    for index, (name, amount) in enumerate(add.items()):
        names[f"#a{index}"] = name
        values[f":a{index}"] = amount
        sets.append(f"#f.#a{index} = if_not_exists(#f.#a{index}, :zero) + :a{index}")
    if consents:
        names["#consents"] = "consents"
        values[":map"] = "M"
        if has_consents:
            conditions.append("attribute_type(#f.#consents, :map)")
            for index, (channel, granted) in enumerate(consents.items()):
                names[f"#c{index}"] = channel
                values[f":c{index}"] = granted
                sets.append(f"#f.#consents.#c{index} = :c{index}")
        else:
            conditions.append("NOT attribute_type(#f.#consents, :map)")
            values[":consents"] = dict(consents)
            sets.append("#f.#consents = :consents")
    removes = [f"#f.#r{index}" for index in range(len(remove))]
    for index, name in enumerate(remove):
        names[f"#r{index}"] = name
    if membership is not None:
        change = segments_change(*membership)
        sets.extend(change.sets)
        removes.extend(change.removes)
        conditions.append(change.condition)
        values.update(change.values)
        names.update(change.names)
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return store.profiles.tx_update(
        item_key(profile_db, profile_id),
        expression,
        " AND ".join(conditions),
        names=names,
        values=values,
    )


@dataclass(frozen=True)
class SegmentsChange:
    """The parts of an UpdateItem that set the profile's top-level `segments` (a list of
    segment ids, absent when none) on condition that it still is what was read."""

    sets: list[str]
    removes: list[str]
    condition: str
    values: dict[str, Any]
    names: dict[str, str]


def segments_change(was: tuple[str, ...], members: tuple[str, ...]) -> SegmentsChange:
    values: dict[str, Any] = {}
    if was:
        condition = "#seg = :was_segments"
        values[":was_segments"] = list(was)
    else:
        condition = "attribute_not_exists(#seg)"
    names = {"#seg": "segments"}  # a reserved word
    if members:
        values[":segments"] = list(members)
        return SegmentsChange(["#seg = :segments"], [], condition, values, names)
    return SegmentsChange([], ["#seg"], condition, values, names)


def membership_item(
    profile_db: str, profile_id: str, was: tuple[str, ...], members: tuple[str, ...]
) -> dict[str, Any]:
    """A transaction item changing only the profile's segments, expecting `was` (and the
    profile: an erased one stays erased)."""
    change = segments_change(was, members)
    parts = []
    if change.sets:
        parts.append("SET " + ", ".join(change.sets))
    if change.removes:
        parts.append("REMOVE " + ", ".join(change.removes))
    return store.profiles.tx_update(
        item_key(profile_db, profile_id),
        " ".join(parts),
        f"attribute_exists(pk) AND {change.condition}",
        names=change.names,
        values=change.values or None,
    )


def set_consent(
    profile_db: str, profile_id: str, channel: str, granted: bool, stamp: str
) -> Merged | None:
    """Set `fields.consents.<channel>` alone, so a concurrent change of another consent
    or field stays; None when there is no such profile (erased: nothing is created).

    A profile whose `consents` is missing or not a map (fields are free-form) gets the
    map `{channel: granted}`, conditioned on it still not being one.
    """
    key = item_key(profile_db, profile_id)
    names = {"#f": "fields", "#c": "consents"}
    in_map = ("SET #f.#c.#ch = :g", "attribute_type(#f.#c, :map)", {"#ch": channel}, granted)
    new_map = (
        "SET #f.#c = :g",
        "attribute_exists(#f) AND NOT attribute_type(#f.#c, :map)",
        {},
        {channel: granted},
    )
    for update, condition, more_names, value in (in_map, new_map, in_map):
        try:
            before = store.profiles.update(
                key,
                f"{update}, updated_at = :now",
                condition,
                returned="ALL_OLD",
                names={**names, **more_names},
                values={":g": value, ":now": stamp, ":map": "M"},
            )
        except ConditionFailed:
            if store.profiles.get(key) is None:
                return None
            continue
        old = before.get("fields") or {}
        consents = old.get("consents")
        consents = (
            {**consents, channel: granted} if isinstance(consents, dict) else {channel: granted}
        )
        return Merged(
            before, {**before, "fields": {**old, "consents": consents}, "updated_at": stamp}
        )
    raise ProfileContention(f"profile {profile_id!r} of {profile_db!r} kept changing")


def mark_invalid(profile_db: str, profile_id: str, channel: str, address: str) -> None:
    """Set `invalid.<channel>` to the address that hard-bounced (the top-level `invalid`
    map beside the fields), creating the map if need be. An erased profile stays erased."""
    key = item_key(profile_db, profile_id)
    for update, condition, values in (
        ("SET invalid.#c = :a", "attribute_exists(invalid)", {":a": address}),
        ("SET invalid = :m", "attribute_not_exists(invalid)", {":m": {channel: address}}),
        ("SET invalid.#c = :a", "attribute_exists(invalid)", {":a": address}),
    ):
        try:
            store.profiles.update(
                key,
                update,
                f"attribute_exists(pk) AND {condition}",
                names={"#c": channel} if "#c" in update else None,
                values=values,
            )
        except ConditionFailed:
            if store.profiles.get(key) is None:
                return  # erased
            continue
        return


def remove_push_subscriptions(profile: dict[str, Any], endpoints: list[str]) -> bool:
    """Take the subscriptions with these endpoints out of `fields.push` as `profile` was
    read, unless the list changed since (then the next push finds them gone again).
    False when it had changed (or the profile was erased)."""
    current = (profile.get("fields") or {}).get("push") or []
    kept = [s for s in current if not (isinstance(s, dict) and s.get("endpoint") in endpoints)]
    try:
        store.profiles.update(
            item_key(profile["profile_db"], profile["profile_id"]),
            "SET #f.push = :kept",
            "#f.push = :current",
            names={"#f": "fields"},
            values={":kept": kept, ":current": current},
        )
    except ConditionFailed:
        return False
    return True
