"""Who may see what (HIPAA minimum necessary): directors see everything; a responder sees the incidents they
were paged for and the tasks assigned to them. Other roles (intake, admin) see no clinical record here."""

from __future__ import annotations

from collections.abc import Container
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
