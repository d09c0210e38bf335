"""Web sessions the events consumer keeps (SPEC §6.3), and `session.ended`.

Every web activity of a profile moves its open session's end on (the stack's
`signals.session_timeout` after it) and sets the session's timer there; the sweeper wakes the due ones through
the steps queue (`SessionTimeout`), and `end_session` ends a session whose time is up.
A `session.close`, or activity after the end, ends it at once. The session, its timer
and the `session.ended` event (a pending outbox row of the events queue) are one commit,
conditioned on the session's revision read; a conflict reads it again. The event's id
is the profile's and the session's start, so a session ends once however its end is
noticed (`chalicelib/engine/sessions.py`).
"""

from __future__ import annotations

from datetime import timedelta

from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import profile_key
from chalicelib.engine import sessions
from chalicelib.scenarios.durations import parse_duration
from chalicelib.scenarios.facts import Event

from .messages import EventMessage
from .orders import ATTEMPTS, pending_events
from .storage import Changes, Conflict, SessionWrite, StoredSession
from .unit_of_work import UnitOfWork


def session_timeout(uow: UnitOfWork) -> timedelta:
    """`signals.session_timeout` of the stack (`PUT /settings/signals`, PT30M unless set)."""
    return parse_duration(uow.signal_settings().session_timeout)


def keep_session(uow: UnitOfWork, message: EventMessage) -> None:
    """Move the profile's session on with one of its events (web activity, an order, a
    `session.close`); other events leave it alone."""
    event = message.event.event()
    if not (sessions.is_activity(event.type) or event.type in (sessions.CLOSE, "order.created")):
        return
    db, profile_id = message.profile_db, message.profile_id
    timeout, key = session_timeout(uow), profile_key(db, profile_id)
    for _ in range(ATTEMPTS):
        stored = uow.storage.session(db, profile_id)
        change = sessions.on_event(stored.state if stored else None, event, timeout, key)
        if change is None:
            return
        rev = stored.rev if stored else None
        if change.state is None:
            write = SessionWrite(db, profile_id, None, rev)
        else:
            kept = StoredSession(change.state, (rev or 0) + 1)
            write = SessionWrite(db, profile_id, kept, rev, change.state.ends_at(timeout))
        if _committed(uow, write, change.ended):
            return
    raise Conflict(f"the session of {profile_id!r} kept changing")


def end_session(uow: UnitOfWork, profile_db: str, profile_id: str) -> None:
    """End the profile's session if its time without activity is up (a timer's wake-up;
    one that is stale or repeated changes nothing)."""
    key = profile_key(profile_db, profile_id)
    for _ in range(ATTEMPTS):
        stored = uow.storage.session(profile_db, profile_id)
        if stored is None:
            return
        ended = sessions.on_timeout(stored.state, clock_now(), session_timeout(uow), key)
        if ended is None:
            return
        if _committed(uow, SessionWrite(profile_db, profile_id, None, stored.rev), ended):
            return
    raise Conflict(f"the session of {profile_id!r} kept changing")


def _committed(uow: UnitOfWork, write: SessionWrite, ended: Event | None) -> bool:
    rows, queued = pending_events(write.profile_db, write.profile_id, [ended] if ended else [])
    try:
        uow.storage.commit(Changes(rows=rows, sessions=[write]))
    except Conflict:
        return False
    uow.send("events", queued)
    return True
