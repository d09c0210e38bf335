"""Profile signals derived from a change of a profile's fields (SPEC §7): the contact
address changes and confirmations.

- `email.changed` / `phone.changed` (`old`, `new`): the address went from one value to
  another — not when it is first filled, not when it is cleared, not at creation;
- `email.confirmed` / `phone.confirmed` (the address): `email_confirmed` /
  `phone_confirmed` became true, also on a profile created with it true. (The caller
  may also send these events itself.)

Every upsert, import and `update_profile` node runs its change through `contact_signals`,
so the rules live here once. Like every derived event they carry `data.derived: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTACTS = (("email", "email_confirmed"), ("phone", "phone_confirmed"))


def contact_signals(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(event type, data) of each signal the change of fields from `before` (None: the
    profile was just created) to `after` makes, in a stable order."""
    signals: list[tuple[str, dict[str, Any]]] = []
    for field, confirmed in CONTACTS:
        new = after.get(field)
        if before is not None:
            old = before.get(field)
            if _filled(old) and _filled(new) and old != new:
                signals.append((f"{field}.changed", {"old": old, "new": new, "derived": True}))
        was_confirmed = before is not None and before.get(confirmed) is True
        if after.get(confirmed) is True and not was_confirmed:
            signals.append((f"{field}.confirmed", {field: new, "derived": True}))
    return signals


def _filled(value: Any) -> bool:
    return value is not None and value != ""
