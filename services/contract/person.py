"""Events of the person record (issue 17, section 4): an optional, pseudonymous record of a person the
organisation helps, the incidents a clinician linked to it, their family and caregiver contacts, their 42 CFR
Part 2 consents (2.31) and revocations, the messages asked for and sent to their family, and every disclosure.

A person is never linked to an incident automatically (not by name, not by phone): ``person.incident_linked``
names the clinician who did it. A family member is texted only under an active consent whose recipient is that
contact and whose ``information`` covers what the message says (``FAMILY_MESSAGE_SCOPE``); 2.51's emergency
disclosure covers medical personnel, not family (DOMAIN.md). Every message and export that disclosed something
about the person is a ``disclosure.recorded``, which the person's disclosure list shows.

Producers: the workspace (projections) appends the person, link, contact, consent and revocation events and a
staff member's ``family.message_requested``; the projections' person desk decides each family message (sent under
consent, or ``family.message_blocked`` with the reason) and records the disclosures.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictBool, model_validator

from services.contract.envelope import E164, Strict, UtcDatetime, event_type
from services.contract.templates import Language
from services.contract.treatment import GeoLocation, LanguageCode

Actor = str


class DisclosureScope(StrEnum):
    """What information a consent lets the organisation disclose (42 CFR 2.31(a)(3): how much and what kind)."""

    SAFETY_STATUS = "safety_status"
    """that help is on the way, a responder is with the person, or the person is safe: nothing clinical"""
    CONTACT_POINT = "contact_point"
    """where to call (the organisation's number, 988) and general family-support guidance"""
    TREATMENT_STATUS = "treatment_status"
    """that the person was referred to or admitted to treatment (not where, not what for)"""
    REFERRAL_NEEDS = "referral_needs"
    """the level of care and needs a referral carries, to the programs it is sent to"""
    CLINICAL_RECORD = "clinical_record"
    """the crisis documentation and its FHIR export, to a treating provider"""


class FamilyMessage(StrEnum):
    HELP_ON_THE_WAY = "help_on_the_way"
    RESPONDER_WITH_THEM = "responder_with_them"
    PERSON_SAFE = "person_safe"
    SUPPORT_GUIDANCE = "support_guidance"
    ADMITTED_TO_CARE = "admitted_to_care"


FAMILY_MESSAGE_SCOPE: dict[FamilyMessage, DisclosureScope] = {
    FamilyMessage.HELP_ON_THE_WAY: DisclosureScope.SAFETY_STATUS,
    FamilyMessage.RESPONDER_WITH_THEM: DisclosureScope.SAFETY_STATUS,
    FamilyMessage.PERSON_SAFE: DisclosureScope.SAFETY_STATUS,
    FamilyMessage.SUPPORT_GUIDANCE: DisclosureScope.CONTACT_POINT,
    FamilyMessage.ADMITTED_TO_CARE: DisclosureScope.TREATMENT_STATUS,
}
"""The scope a consent must cover for each family message."""

ContactPreference = Literal["sms", "call", "none"]
Relation = Literal["parent", "partner", "spouse", "sibling", "child", "friend", "caregiver", "guardian", "other"]
ConsentPurpose = Literal["family_support", "care_coordination", "treatment_payment_operations"]


class PersonProfile(Strict):
    """An alias (never required to be a legal name), how to reach the person, and a place they chose (matching
    ranks programs by distance from it)."""

    person_id: UUID
    alias: str = Field(min_length=1, max_length=60)
    preferred_language: LanguageCode = "en"
    contact_preference: ContactPreference = "none"
    phone: E164 | None = None
    chosen_place: GeoLocation | None = None
    actor: Actor = Field(min_length=1, max_length=100)


class PersonIncidentLinkData(Strict):
    person_id: UUID
    incident_id: UUID
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class PersonIncidentUnlinkedData(PersonIncidentLinkData):
    reason: Literal["entered_in_error", "not_this_person"]


class FamilyContactAddedData(Strict):
    contact_id: UUID
    person_id: UUID
    name: str = Field(min_length=1, max_length=100)
    relation: Relation
    phone: E164
    language: Language = "en"
    actor: Actor = Field(min_length=1, max_length=100)


class FamilyContactRemovedData(Strict):
    contact_id: UUID
    person_id: UUID
    actor: Actor = Field(min_length=1, max_length=100)


class ConsentRecipient(Strict):
    """To whom (2.31(a)(4)): a family contact, a program, or a general designation of treating providers."""

    kind: Literal["family_contact", "program", "general_designation"]
    contact_id: UUID | None = None
    program_id: UUID | None = None
    designation: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> ConsentRecipient:
        wanted = {
            "family_contact": self.contact_id,
            "program": self.program_id,
            "general_designation": self.designation,
        }
        if wanted[self.kind] is None:
            raise ValueError(f"a {self.kind.replace('_', ' ')} recipient names its {self.kind.split('_')[-1]}")
        return self


class ConsentRecordedData(Strict):
    """A written consent to disclose under 42 CFR 2.31, with every element the rule requires."""

    consent_id: UUID
    person_id: UUID
    patient_name: str = Field(min_length=1, max_length=100, description="the name on the signed consent")
    discloser: str = Field(min_length=1, max_length=200, description="who may disclose (2.31(a)(2))")
    recipient: ConsentRecipient
    information: list[DisclosureScope] = Field(min_length=1, max_length=5)
    purpose: ConsentPurpose
    expires_at: UtcDatetime | None = None
    expiry_event: str | None = Field(default=None, max_length=200, description="an event or condition that ends it")
    revocation_explained: StrictBool = Field(description="the right to revoke and how was explained (2.31(a)(6))")
    revoke_how: str = Field(min_length=1, max_length=200)
    signed_by: str = Field(min_length=1, max_length=100)
    signer_relation: Literal["self", "guardian", "personal_representative"]
    signed_at: UtcDatetime
    actor: Actor = Field(min_length=1, max_length=100, description="who recorded it")
    responder_id: UUID | None = None

    @model_validator(mode="after")
    def _complete(self) -> ConsentRecordedData:
        if self.expires_at is None and not self.expiry_event:
            raise ValueError("a consent names an expiry date or an expiry event")
        if not self.revocation_explained:
            raise ValueError("the right to revoke must be explained before the consent is recorded")
        if self.expires_at is not None and self.expires_at <= self.signed_at:
            raise ValueError("expires_at must be after signed_at")
        return self


class ConsentRevokedData(Strict):
    consent_id: UUID
    person_id: UUID
    revoked_at: UtcDatetime
    how: Literal["verbal", "written", "sms_stop", "app"]
    actor: Actor = Field(min_length=1, max_length=100)


class FamilyMessageRequestedData(Strict):
    """A staff member asked for a message to a family contact (the desk sends it only under consent)."""

    request_id: UUID
    person_id: UUID
    contact_id: UUID
    message: FamilyMessage
    incident_id: UUID | None = None
    actor: Actor = Field(min_length=1, max_length=100)


class FamilyMessageBlockedData(Strict):
    """A family message that was not sent, and why."""

    request_id: UUID
    person_id: UUID
    contact_id: UUID
    message: FamilyMessage
    incident_id: UUID | None = None
    reason: Literal["no_consent", "consent_revoked", "consent_expired", "outside_consent_scope", "contact_removed"]


class DisclosureRecordedData(Strict):
    """Something about the person left the organisation: to whom, what, under which consent, by which channel."""

    disclosure_id: UUID
    person_id: UUID
    incident_id: UUID | None = None
    recipient_kind: Literal["family_contact", "program", "export"]
    recipient_id: UUID | None = None
    recipient_label: str = Field(
        min_length=1, max_length=200, description="a contact's relation, a program's name, who made an export"
    )
    information: list[DisclosureScope] = Field(min_length=1, max_length=5)
    consent_id: UUID | None = Field(description="None only for an export a director made under 2.51")
    channel: Literal["sms", "referral_link", "fhir_export", "pdf_export"]
    notification_id: UUID | None = None
    disclosed_at: UtcDatetime
    actor: Actor = Field(min_length=1, max_length=100)


class PersonRegistered(event_type("person.registered", PersonProfile)):
    pass


class PersonUpdated(event_type("person.updated", PersonProfile)):
    pass


class PersonIncidentLinked(event_type("person.incident_linked", PersonIncidentLinkData)):
    pass


class PersonIncidentUnlinked(event_type("person.incident_unlinked", PersonIncidentUnlinkedData)):
    pass


class FamilyContactAdded(event_type("family.contact_added", FamilyContactAddedData)):
    pass


class FamilyContactRemoved(event_type("family.contact_removed", FamilyContactRemovedData)):
    pass


class ConsentRecorded(event_type("consent.recorded", ConsentRecordedData)):
    pass


class ConsentRevoked(event_type("consent.revoked", ConsentRevokedData)):
    pass


class FamilyMessageRequested(event_type("family.message_requested", FamilyMessageRequestedData)):
    pass


class FamilyMessageBlocked(event_type("family.message_blocked", FamilyMessageBlockedData)):
    pass


class DisclosureRecorded(event_type("disclosure.recorded", DisclosureRecordedData)):
    pass


EVENTS = (
    PersonRegistered,
    PersonUpdated,
    PersonIncidentLinked,
    PersonIncidentUnlinked,
    FamilyContactAdded,
    FamilyContactRemoved,
    ConsentRecorded,
    ConsentRevoked,
    FamilyMessageRequested,
    FamilyMessageBlocked,
    DisclosureRecorded,
)
UPCASTERS: dict = {}
