"""Who may see what (HIPAA minimum necessary): directors see everything; a responder sees the incidents they
were paged for and the tasks assigned to them. Other roles (intake, admin) see no clinical record here."""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any
from uuid import UUID

READER_ROLES = frozenset({"director", "responder"})


def may_read_incident(role: str, responder_id: UUID | None, involved: Container[UUID]) -> bool:
    if role == "director":
        return True
    return role == "responder" and responder_id is not None and responder_id in involved


def may_see_task(role: str, responder_id: UUID | None, assignee_id: UUID | None) -> bool:
    if role == "director":
        return True
    return role == "responder" and responder_id is not None and responder_id == assignee_id


# -- staff only: a duress signal (issue 18) -------------------------------------------------------------------

STAFF_ONLY_TYPES = frozenset({"checkin.duress"})
"""Events only directors and supervisors see: a responder under duress may be reading over nobody's shoulder but
someone else's, so nothing on a page a responder can open may tell that the alarm went out."""
STAFF_ONLY_TEMPLATES = frozenset({"duress_alert"})
"""Messages whose row (and sent/delivered reports) are staff only, for the same reason."""


def staff_only_events(events: Iterable[Any], reader_id: UUID | None, reader_is_supervisor: bool) -> set[UUID]:
    """The ids of the events a reader who is not a director must not see: every duress signal and the
    messages that carried it, unless the reader is a supervisor and not the responder who gave the signal."""
    events = list(events)
    signalled = {e.data.responder_id for e in events if e.type in STAFF_ONLY_TYPES}
    if not signalled or (reader_is_supervisor and reader_id not in signalled):
        return set()
    hidden = {e.id for e in events if e.type in STAFF_ONLY_TYPES}
    alerts = {
        e.data.notification_id
        for e in events
        if e.type == "notification.requested" and e.data.template in STAFF_ONLY_TEMPLATES
    }
    hidden |= {e.id for e in events if getattr(e.data, "notification_id", None) in alerts}
    return hidden
