"""Who may see and change a person's record (issue 17, section 4): minimum necessary, by relation.

- A director: everything.
- A responder, by their role on the roster:
  - sees a person linked to an incident they were paged for; a clinician, nurse, prescriber or supervisor also
    sees the people they registered (a peer coach sees people only through their incidents);
  - searches people by alias, registers, changes a profile, its family contacts and its consents when they are
    a clinician, nurse, prescriber or supervisor (and, but for searching and registering, sees the person);
  - links (or unlinks) a person to an incident when they are a clinician, nurse or prescriber paged for that
    incident: a link is a clinical judgement, never made automatically;
  - records a revocation, or asks for a family message, whenever they see the person (a revocation must
    never wait for someone more senior).
- Anyone else (intake, admin credentials): nothing.

Pure: the caller passes what it knows of the relation; nothing here reads a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

LINKING_ROLES = frozenset({"clinician", "nurse", "prescriber"})
"""Roster roles that may link a person to an incident they were paged for."""
RECORD_ROLES = LINKING_ROLES | {"supervisor"}
"""Roster roles that may search by alias, register, and change a profile, contacts and consents."""


class PersonAction(StrEnum):
    READ = "read"
    SEARCH = "search"
    REGISTER = "register"
    UPDATE = "update"
    LINK = "link"
    UNLINK = "unlink"
    CONTACTS = "contacts"
    CONSENT = "consent"
    REVOKE = "revoke"
    FAMILY_MESSAGE = "family_message"


@dataclass(frozen=True)
class Reader:
    """Who asks: their access role (director, responder, ...), their credential's subject, and (a responder)
    their roster role."""

    role: str
    subject: str
    responder_id: UUID | None = None
    roster_role: str | None = None

    @property
    def director(self) -> bool:
        return self.role == "director"

    @property
    def responder(self) -> bool:
        return self.role == "responder" and self.responder_id is not None


@dataclass(frozen=True)
class Relation:
    """How the reader stands to the person (and, to link or unlink, to the incident in question).

    ``registered_by``: the subject that registered the person (None: unknown or no person yet);
    ``person_incidents``: the incidents the person is linked to; ``paged_for``: the incidents among those (and
    the one to link) that the reader was paged for; ``incident_id``: the incident a link or unlink names."""

    registered_by: str | None = None
    person_incidents: frozenset[UUID] = frozenset()
    paged_for: frozenset[UUID] = frozenset()
    incident_id: UUID | None = None


NO_RELATION = Relation()


def may_see(reader: Reader, relation: Relation) -> bool:
    """Whether the person's record (profile, contacts, consents, disclosures) is shown to ``reader``."""
    if reader.director:
        return True
    if not reader.responder:
        return False
    if relation.person_incidents & relation.paged_for:
        return True
    registered = relation.registered_by is not None and relation.registered_by == reader.subject
    return registered and reader.roster_role in RECORD_ROLES


def refusal(reader: Reader, action: PersonAction, relation: Relation = NO_RELATION) -> str | None:
    """Why ``reader`` may not do ``action`` to the person ``relation`` describes; None when they may."""
    if reader.director:
        return None
    if not reader.responder:
        return "people's records are for directors and responders"
    role = reader.roster_role
    if action is PersonAction.SEARCH or action is PersonAction.REGISTER:
        if role in RECORD_ROLES:
            return None
        return "a clinician, nurse, prescriber, supervisor or director searches and registers people"
    if action in (PersonAction.LINK, PersonAction.UNLINK):
        if role not in LINKING_ROLES:
            return "a clinician, nurse or prescriber paged for the incident (or a director) links a person to it"
        if relation.incident_id is None or relation.incident_id not in relation.paged_for:
            return "you were not paged for this incident"
        return None
    if not may_see(reader, relation):
        return "you were not paged for an incident of this person's"
    if action in (PersonAction.READ, PersonAction.REVOKE, PersonAction.FAMILY_MESSAGE):
        return None
    if role in RECORD_ROLES:
        return None
    return "a clinician, nurse, prescriber, supervisor or director changes a person's record"


def may(reader: Reader, action: PersonAction, relation: Relation = NO_RELATION) -> bool:
    return refusal(reader, action, relation) is None
