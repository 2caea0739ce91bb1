"""The person record as the person desk keeps it (issue 17, section 4), and the one rule for texting family.

Pure. ``fold_person`` applies one person, family, consent or disclosure event to a ``PersonView``;
``decide_family_message`` is the rule: a family contact is texted only under a consent that is active at that
moment (not revoked, not expired), whose recipient is that contact, and whose information covers what the message
says (``FAMILY_MESSAGE_SCOPE``). 42 CFR 2.51's emergency disclosure covers medical personnel, not family
(DOMAIN.md), so nothing else allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from services.contract.events import FAMILY_MESSAGE_SCOPE, FamilyMessage


@dataclass(frozen=True)
class LinkedIncident:
    incident_id: UUID
    linked_by: str
    linked_at: datetime


@dataclass(frozen=True)
class Contact:
    contact_id: UUID
    name: str
    relation: str
    phone: str
    language: str
    removed: bool = False


@dataclass(frozen=True)
class Consent:
    consent_id: UUID
    recipient_kind: str
    recipient_id: UUID | None
    recipient_label: str
    information: tuple[str, ...]
    purpose: str
    expires_at: datetime | None
    expiry_event: str | None
    signed_by: str
    signer_relation: str
    signed_at: datetime
    recorded_by: str = ""
    revoked_at: datetime | None = None
    revoked_how: str | None = None

    def active(self, at: datetime) -> bool:
        """Not revoked and not past its expiry date (an expiry *event* ends it when staff revoke it)."""
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True)
class Disclosure:
    disclosure_id: UUID
    disclosed_at: datetime
    recipient_kind: str
    recipient_label: str
    information: tuple[str, ...]
    consent_id: UUID | None
    channel: str
    incident_id: UUID | None


@dataclass(frozen=True)
class Blocked:
    at: datetime
    contact_id: UUID
    message: str
    reason: str


@dataclass(frozen=True)
class PersonView:
    person_id: UUID
    alias: str
    preferred_language: str
    contact_preference: str
    phone: str | None
    chosen_place: tuple[float, float] | None
    registered_by: str
    registered_at: datetime
    incidents: tuple[LinkedIncident, ...] = ()
    contacts: tuple[Contact, ...] = ()
    consents: tuple[Consent, ...] = ()
    disclosures: tuple[Disclosure, ...] = ()
    blocked: tuple[Blocked, ...] = ()

    def contact(self, contact_id: UUID) -> Contact | None:
        return next((c for c in self.contacts if c.contact_id == contact_id), None)


@dataclass(frozen=True)
class Allowed:
    consent_id: UUID
    scope: str


@dataclass(frozen=True)
class NotAllowed:
    reason: str  # FamilyMessageBlockedData.reason


def decide_family_message(
    view: PersonView, contact_id: UUID, message: FamilyMessage, at: datetime
) -> Allowed | NotAllowed:
    """Whether ``message`` may be texted to ``contact_id`` at ``at``, and under which consent."""
    contact = view.contact(contact_id)
    if contact is None or contact.removed:
        return NotAllowed("contact_removed")
    scope = FAMILY_MESSAGE_SCOPE[message].value
    theirs = [c for c in view.consents if c.recipient_kind == "family_contact" and c.recipient_id == contact_id]
    if not theirs:
        return NotAllowed("no_consent")
    active = [c for c in theirs if c.active(at)]
    if not active:
        revoked = any(c.revoked_at is not None for c in theirs)
        return NotAllowed("consent_revoked" if revoked else "consent_expired")
    covering = next((c for c in active if scope in c.information), None)
    if covering is None:
        return NotAllowed("outside_consent_scope")
    return Allowed(covering.consent_id, scope)


def _place(data: Any) -> tuple[float, float] | None:
    return (data.chosen_place.lat, data.chosen_place.lon) if data.chosen_place else None


def _consent(view: PersonView, data: Any) -> Consent:
    recipient = data.recipient
    names = {c.contact_id: f"{c.name} ({c.relation})" for c in view.contacts}
    recipient_id = recipient.contact_id or recipient.program_id
    label = names.get(recipient.contact_id) or recipient.designation or f"program {str(recipient.program_id)[:8]}"
    return Consent(
        consent_id=data.consent_id,
        recipient_kind=recipient.kind,
        recipient_id=recipient_id,
        recipient_label=label,
        information=tuple(s.value for s in data.information),
        purpose=data.purpose,
        expires_at=data.expires_at,
        expiry_event=data.expiry_event,
        signed_by=data.signed_by,
        signer_relation=data.signer_relation,
        signed_at=data.signed_at,
        recorded_by=data.actor,
    )


def fold_person(view: PersonView | None, event: Any) -> PersonView | None:
    """``view`` after ``event`` (None until ``person.registered``; a repeat of the registration changes nothing)."""
    data, kind = event.data, event.type
    if kind == "person.registered":
        if view is not None:
            return view
        return PersonView(
            data.person_id,
            data.alias,
            data.preferred_language,
            data.contact_preference,
            data.phone,
            _place(data),
            data.actor,
            event.occurred_at,
        )
    if view is None:
        return None
    if kind == "person.updated":
        return replace(
            view,
            alias=data.alias,
            preferred_language=data.preferred_language,
            contact_preference=data.contact_preference,
            phone=data.phone,
            chosen_place=_place(data),
        )
    if kind == "person.incident_linked":
        if any(i.incident_id == data.incident_id for i in view.incidents):
            return view
        return replace(
            view, incidents=(*view.incidents, LinkedIncident(data.incident_id, data.actor, event.occurred_at))
        )
    if kind == "person.incident_unlinked":
        return replace(view, incidents=tuple(i for i in view.incidents if i.incident_id != data.incident_id))
    if kind == "family.contact_added":
        contact = Contact(data.contact_id, data.name, data.relation, data.phone, data.language)
        return replace(view, contacts=(*(c for c in view.contacts if c.contact_id != data.contact_id), contact))
    if kind == "family.contact_removed":
        return replace(
            view,
            contacts=tuple(replace(c, removed=c.removed or c.contact_id == data.contact_id) for c in view.contacts),
        )
    if kind == "consent.recorded":
        if any(c.consent_id == data.consent_id for c in view.consents):
            return view
        return replace(view, consents=(*view.consents, _consent(view, data)))
    if kind == "consent.revoked":
        taken_back = {"revoked_at": data.revoked_at, "revoked_how": data.how}
        return replace(
            view,
            consents=tuple(
                replace(c, **taken_back) if c.consent_id == data.consent_id and c.revoked_at is None else c
                for c in view.consents
            ),
        )
    if kind == "disclosure.recorded":
        if any(d.disclosure_id == data.disclosure_id for d in view.disclosures):
            return view
        disclosure = Disclosure(
            data.disclosure_id,
            data.disclosed_at,
            data.recipient_kind,
            data.recipient_label,
            tuple(s.value for s in data.information),
            data.consent_id,
            data.channel,
            data.incident_id,
        )
        return replace(view, disclosures=(*view.disclosures, disclosure))
    if kind == "family.message_blocked":
        blocked = Blocked(event.occurred_at, data.contact_id, data.message.value, data.reason)
        return replace(view, blocked=(*view.blocked, blocked))
    return view
