"""Who may change (and see the existence of) an incident: by their relation to it, not by their role alone.

- A clinical director: every incident of the organisation.
- A responder: the incidents they were paged for (any page, at any step, answered or not).
- An intake caller (a crisis line, a clinic): the incidents its own credential reported.
- Anyone else (a roster admin): none. Admins may report, but change no clinical fact.

The same relation decides which possible duplicates a report's answer names: a caller learns the id and code
of another incident only if it could already read or change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True)
class Caller:
    """The authenticated caller, as the decision needs it (role as its plain name)."""

    subject: str
    role: str
    responder_id: UUID | None = None


@dataclass(frozen=True)
class IncidentRelations:
    """What the gateway knows of who is related to an incident."""

    reported_by: str | None = None
    paged: frozenset[UUID] = field(default_factory=frozenset)


def may_change_incident(caller: Caller, relations: IncidentRelations) -> bool:
    if caller.role == "director":
        return True
    if caller.role == "responder":
        return caller.responder_id is not None and caller.responder_id in relations.paged
    if caller.role == "intake":
        return relations.reported_by is not None and relations.reported_by == caller.subject
    return False
