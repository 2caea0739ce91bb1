"""The person record in the workspace as use cases: ``PersonCommands`` (issue 17, section 4).

Each change checks who asks against ``domain/person_access.py`` (a refusal is a 403, audited as denied), builds
ONE event of ``services/contract/person.py`` and appends it to the stream (``_append``: nothing is said to be
saved unless the stream took it); it then waits (bounded) until the person desk has applied it, so the next page
shows it, and answers ``Recorded``. A value that is not right raises ``InvalidForm`` naming its field: nothing is
recorded. Reads of a person's record are audited (read, or denied) like every clinical record read.

The person desk (``person_desk.py``) keeps the record and decides family messages; this module only asks for
them (``family.message_requested``). A person is never linked to an incident automatically: the link names the
clinician who made it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from services.contract.events import Envelope
from services.contract.person import (
    ConsentRecorded,
    ConsentRecordedData,
    ConsentRevoked,
    ConsentRevokedData,
    DisclosureRecorded,
    DisclosureRecordedData,
    DisclosureScope,
    FamilyContactAdded,
    FamilyContactAddedData,
    FamilyContactRemoved,
    FamilyContactRemovedData,
    FamilyMessageRequested,
    FamilyMessageRequestedData,
    PersonIncidentLinkData,
    PersonIncidentLinked,
    PersonIncidentUnlinked,
    PersonIncidentUnlinkedData,
    PersonProfile,
    PersonRegistered,
    PersonUpdated,
)
from services.projections.application import ClinicalRecordAccess
from services.projections.domain.person_access import PersonAction, Reader, Relation, refusal
from services.projections.errors import InvalidForm, NotPermitted, Refused, UnknownIncident
from services.projections.responder_desk import Recorded
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import FRESH, RequestIds

if TYPE_CHECKING:  # the person desk's view, read only through its desk
    from services.projections.domain.person_record import PersonView

log = logging.getLogger(__name__)
RECORD_TYPE = "person"
DESK_WAIT_SECONDS = 5.0


class PersonRecords(Protocol):
    """The person desk's reads (``person_desk.py``), and a bounded wait for it to apply a stream position."""

    def person(self, person_id: UUID) -> PersonView | None: ...

    def people_for_incident(self, incident_id: UUID) -> list[PersonView]: ...

    def search(self, alias_prefix: str, limit: int) -> list[PersonView]: ...

    def all_people(self, limit: int) -> list[PersonView]: ...


DeskWait = Callable[[int, float], None]
"""Blocks until the desk has applied the stream position, or raises TimeoutError after the seconds given."""


def contract_data(model: type[BaseModel], values: Mapping[str, Any]) -> Any:
    """``model`` built from ``values``; InvalidForm naming the first field (dotted: ``recipient.contact_id``) it
    refuses, with pydantic's reason."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "form"
        raise InvalidForm(field, first["msg"].removeprefix("Value error, ")) from None


def linked_incidents(view: PersonView) -> frozenset[UUID]:
    return frozenset(link.incident_id for link in view.incidents)


class PersonCommands(ClinicalRecordAccess):
    """Reads and changes of people's records on behalf of a signed-in person, on the same stores, audit log and
    publisher as ``access``; ``records``: the person desk; ``known_program``: whether a program id is in the
    directory; ``organisation``: the organisation's name, the default discloser of a consent."""

    caring: Any = None  # CaringCommands (caring_commands.py), set by the pages' factory

    def __init__(
        self,
        access: ClinicalRecordAccess,
        records: PersonRecords,
        desk_wait: DeskWait,
        known_program: Callable[[UUID], bool],
        organisation: str = "",
    ) -> None:
        ports = (access.store, access.audit, access.publish, access.clock, access.targets, access.export_fhir)
        super().__init__(*ports, access.zone)
        self.records, self.desk_wait, self.known_program = records, desk_wait, known_program
        self.organisation = organisation

    # ---- who asks, and how they stand to the person --------------------------------------------------------

    async def reader(self, who: Principal) -> Reader:
        staff = await asyncio.to_thread(self.staff) if who.responder_id else {}
        person = staff.get(who.responder_id) if who.responder_id else None
        return Reader(who.role.value, who.subject, who.responder_id, person.role if person else None)

    async def _relation(self, who: Principal, view: PersonView | None, incident_id: UUID | None = None) -> Relation:
        incidents = linked_incidents(view) if view else frozenset()
        candidates = incidents | ({incident_id} if incident_id else set())
        paged: set[UUID] = set()
        if who.responder_id is not None:
            for candidate in candidates:
                involved = await asyncio.to_thread(self.store.involved, candidate)
                if who.responder_id in involved:
                    paged.add(candidate)
        registered_by = view.registered_by if view else None
        return Relation(registered_by, incidents, frozenset(paged), incident_id)

    async def check(
        self, who: Principal, action: PersonAction, view: PersonView | None, record_id: str, incident_id: UUID | None
    ) -> None:
        """NotPermitted (audited as denied) unless ``who`` may do ``action``."""
        reason = refusal(await self.reader(who), action, await self._relation(who, view, incident_id))
        if reason is not None:
            await self._audit(who, f"{RECORD_TYPE}:{action.value}", RECORD_TYPE, record_id, "denied")
            raise NotPermitted(reason)

    async def _person(self, who: Principal, person_id: UUID, action: PersonAction) -> PersonView:
        """The person, if ``who`` may do ``action`` to them; an unknown id is answered like a refusal (audited
        denied) to all but a director (404), so nobody can probe which ids exist."""
        view = await asyncio.to_thread(self.records.person, person_id)
        if view is None:
            await self._refuse_unknown(
                who, f"{RECORD_TYPE}:{action.value}", RECORD_TYPE, str(person_id), UnknownPerson(person_id)
            )
        await self.check(who, action, view, str(person_id), None)
        return view  # type: ignore[return-value]

    # ---- reads ---------------------------------------------------------------------------------------------

    async def person(self, who: Principal, person_id: UUID, action: str = "read") -> PersonView:
        """The person's record as the desk knows it; audited as read, or denied."""
        view = await self._person(who, person_id, PersonAction.READ)
        await self._audit(who, f"{RECORD_TYPE}:{action}", RECORD_TYPE, str(person_id), "read")
        return view

    async def find(self, who: Principal, alias_prefix: str, limit: int = 50) -> list[PersonView]:
        """People whose alias starts with ``alias_prefix``; with none typed, a director's list of everyone."""
        await self.check(who, PersonAction.SEARCH, None, "search", None)
        prefix = alias_prefix.strip()
        if prefix:
            found = await asyncio.to_thread(self.records.search, prefix, limit)
        elif who.role is AccessRole.DIRECTOR:
            found = await asyncio.to_thread(self.records.all_people, limit)
        else:
            found = []
        await self._audit(who, f"{RECORD_TYPE}:search", RECORD_TYPE, "alias search", "read")
        return found

    async def people_on_incident(self, who: Principal, incident_id: UUID) -> list[PersonView]:
        """The people linked to an incident ``who`` may read (the incident page's box); audited as a read of the
        incident's people when there are any."""
        view = await asyncio.to_thread(self.records.people_for_incident, incident_id)
        if view:
            await self._audit(who, f"{RECORD_TYPE}:for_incident", "incident", str(incident_id), "read")
        return view

    async def may(
        self, who: Principal, action: PersonAction, view: PersonView | None = None, incident_id: UUID | None = None
    ) -> bool:
        """Whether a page offers ``who`` the form for ``action`` (the command checks again)."""
        return refusal(await self.reader(who), action, await self._relation(who, view, incident_id)) is None

    async def incident_codes(self, view: PersonView) -> dict[UUID, str]:
        """The short code of each incident the person is linked to (as the board shows it)."""
        codes = {}
        for incident_id in linked_incidents(view):
            row = await asyncio.to_thread(self.store.incident, incident_id)
            codes[incident_id] = (row or {}).get("short_code") or str(incident_id)[:8]
        return codes

    # ---- changes -------------------------------------------------------------------------------------------

    async def _record(self, who: Principal, event: Envelope, person_id: UUID, what: str) -> Recorded:
        sequence = await self._append(event)
        await self._audit(who, f"write:{event.type}", RECORD_TYPE, str(person_id), "recorded")
        try:
            await asyncio.to_thread(self.desk_wait, sequence, DESK_WAIT_SECONDS)
        except Exception:  # recorded on the stream: the page shows it once the desk has it
            log.warning("the person desk did not reach %s within %s s", sequence, DESK_WAIT_SECONDS)
        return Recorded(what, event.occurred_at)

    async def register(
        self, who: Principal, profile: Mapping[str, Any], incident_id: UUID | None = None, ids: RequestIds = FRESH
    ) -> tuple[UUID, Recorded]:
        """A new person from ``profile`` (PersonProfile's fields but person_id and actor); with ``incident_id``,
        ``who`` must also be one who may link it (checked first: nothing is recorded otherwise)."""
        await self.check(who, PersonAction.REGISTER, None, "new", None)
        if incident_id is not None:
            await self._linkable(who, None, incident_id)
        person_id = ids.id_for("person")
        data = contract_data(PersonProfile, {**profile, "person_id": person_id, "actor": who.subject})
        event = self._event(PersonRegistered, data, None, ids)  # type: ignore[arg-type]
        return person_id, await self._record(who, event, person_id, f"{data.alias} registered")

    async def update(
        self, who: Principal, person_id: UUID, profile: Mapping[str, Any], ids: RequestIds = FRESH
    ) -> Recorded:
        await self._person(who, person_id, PersonAction.UPDATE)
        data = contract_data(PersonProfile, {**profile, "person_id": person_id, "actor": who.subject})
        return await self._record(who, self._event(PersonUpdated, data, None, ids), person_id, "profile updated")  # type: ignore[arg-type]

    async def _linkable(self, who: Principal, view: PersonView | None, incident_id: UUID) -> None:
        reason = refusal(await self.reader(who), PersonAction.LINK, await self._relation(who, view, incident_id))
        if reason is not None:
            await self._audit(who, f"{RECORD_TYPE}:link", "incident", str(incident_id), "denied")
            raise NotPermitted(reason)
        if who.role is AccessRole.DIRECTOR and not await asyncio.to_thread(self.store.incident, incident_id):
            raise UnknownIncident(incident_id)

    async def link(self, who: Principal, person_id: UUID, incident_id: UUID, ids: RequestIds = FRESH) -> Recorded:
        """``who`` (a clinician, nurse or prescriber paged for the incident, or a director) says the incident
        was about this person."""
        view = await self._person(who, person_id, PersonAction.SEARCH)
        await self._linkable(who, view, incident_id)
        if incident_id in linked_incidents(view):
            raise Refused(f"{view.alias} is linked to this incident already")
        data = PersonIncidentLinkData(
            person_id=person_id, incident_id=incident_id, actor=who.subject, responder_id=who.responder_id
        )
        return await self._record(who, self._event(PersonIncidentLinked, data, incident_id, ids), person_id, "linked")

    async def unlink(
        self, who: Principal, person_id: UUID, incident_id: UUID, reason: str, ids: RequestIds = FRESH
    ) -> Recorded:
        view = await self._person(who, person_id, PersonAction.READ)
        await self._linkable(who, view, incident_id)
        if incident_id not in linked_incidents(view):
            raise Refused(f"{view.alias} is not linked to this incident")
        values = {"person_id": person_id, "incident_id": incident_id, "actor": who.subject, "reason": reason}
        data = contract_data(PersonIncidentUnlinkedData, {**values, "responder_id": who.responder_id})
        event = self._event(PersonIncidentUnlinked, data, incident_id, ids)
        return await self._record(who, event, person_id, "unlinked")

    async def add_contact(
        self, who: Principal, person_id: UUID, contact: Mapping[str, Any], ids: RequestIds = FRESH
    ) -> Recorded:
        """A family member or caregiver (name, relation, phone, language) the person named."""
        await self._person(who, person_id, PersonAction.CONTACTS)
        values = {**contact, "contact_id": ids.id_for("family_contact"), "person_id": person_id, "actor": who.subject}
        data = contract_data(FamilyContactAddedData, values)
        event = self._event(FamilyContactAdded, data, None, ids)
        return await self._record(who, event, person_id, f"contact ({data.relation}) added")

    async def remove_contact(
        self, who: Principal, person_id: UUID, contact_id: UUID, ids: RequestIds = FRESH
    ) -> Recorded:
        view = await self._person(who, person_id, PersonAction.CONTACTS)
        if contact_id not in current_contacts(view):
            raise Refused("this contact is not one of the person's current contacts")
        data = FamilyContactRemovedData(contact_id=contact_id, person_id=person_id, actor=who.subject)
        return await self._record(who, self._event(FamilyContactRemoved, data, None, ids), person_id, "contact removed")

    async def record_consent(
        self, who: Principal, person_id: UUID, consent: Mapping[str, Any], ids: RequestIds = FRESH
    ) -> tuple[UUID, Recorded]:
        """A signed 42 CFR 2.31 consent with every element (``ConsentRecordedData``'s fields); its recipient must
        be one of the person's current contacts or a program in the directory."""
        view = await self._person(who, person_id, PersonAction.CONSENT)
        consent_id = ids.id_for("consent")
        values = {**consent, "consent_id": consent_id, "person_id": person_id, "actor": who.subject}
        data: ConsentRecordedData = contract_data(ConsentRecordedData, {**values, "responder_id": who.responder_id})
        recipient = data.recipient
        if recipient.kind == "family_contact" and recipient.contact_id not in current_contacts(view):
            raise InvalidForm("recipient", "choose one of the person's current family contacts")
        if recipient.kind == "program" and not await asyncio.to_thread(self.known_program, recipient.program_id):  # type: ignore[arg-type]
            raise InvalidForm("recipient", "choose a program in the directory")
        if data.signed_at > self.clock.now():
            raise InvalidForm("signed_at", "a consent is recorded once it is signed, not before")
        event = self._event(ConsentRecorded, data, None, ids)
        return consent_id, await self._record(who, event, person_id, "consent recorded")

    async def revoke_consent(
        self, who: Principal, person_id: UUID, consent_id: UUID, how: str, ids: RequestIds = FRESH
    ) -> Recorded:
        """The person took their consent back (``how``: verbal, written, sms_stop, app): from now on nothing is
        disclosed under it."""
        view = await self._person(who, person_id, PersonAction.REVOKE)
        consent = next((c for c in view.consents if c.consent_id == consent_id), None)
        if consent is None:
            raise Refused("no such consent of this person")
        if consent.revoked_at is not None:
            raise Refused("this consent was revoked already")
        values = {"consent_id": consent_id, "person_id": person_id, "how": how, "actor": who.subject}
        data = contract_data(ConsentRevokedData, {**values, "revoked_at": self.clock.now()})
        return await self._record(who, self._event(ConsentRevoked, data, None, ids), person_id, "consent revoked")

    async def request_family_message(
        self,
        who: Principal,
        person_id: UUID,
        contact_id: UUID,
        message: str,
        incident_id: UUID | None = None,
        ids: RequestIds = FRESH,
    ) -> Recorded:
        """Asks the desk to text a family contact one of the fixed messages; the desk sends it only under an
        active consent covering it (else it is blocked, and the page shows why)."""
        view = await self._person(who, person_id, PersonAction.FAMILY_MESSAGE)
        if contact_id not in current_contacts(view):
            raise InvalidForm("contact_id", "choose one of the person's current family contacts")
        if incident_id is not None and incident_id not in linked_incidents(view):
            raise InvalidForm("incident_id", "choose one of the person's linked incidents, or none")
        request_id = ids.id_for("family_message")
        values = {"request_id": request_id, "person_id": person_id, "contact_id": contact_id, "message": message}
        data = contract_data(FamilyMessageRequestedData, {**values, "incident_id": incident_id, "actor": who.subject})
        event = self._event(FamilyMessageRequested, data, incident_id, ids)  # type: ignore[arg-type]
        return await self._record(who, event, person_id, "family message asked for")

    async def record_export(self, who: Principal, incident_id: UUID, channel: str = "fhir_export") -> int:
        """Before an export of an incident's record is handed over (``who`` may export it: checked by the caller):
        one ``disclosure.recorded`` per person linked to the incident (what: the clinical record; under the active
        consent covering it, if any, else none: an export by a director under 2.51 or for the organisation's own
        operations). Raises ``StreamUnavailable`` when the stream does not take it: nothing is exported unrecorded.
        Returns how many were recorded; the desk folds them into each person's disclosure list."""
        people = await asyncio.to_thread(self.records.people_for_incident, incident_id)
        now, recorded = self.clock.now(), 0
        for view in people:
            consent = next(
                (c for c in view.consents if c.active(now) and DisclosureScope.CLINICAL_RECORD in c.information), None
            )
            data = DisclosureRecordedData(
                disclosure_id=uuid4(),
                person_id=view.person_id,
                incident_id=incident_id,
                recipient_kind="export",
                recipient_label=f"{'FHIR' if channel == 'fhir_export' else 'PDF'} export by {who.subject}"[:200],
                information=[DisclosureScope.CLINICAL_RECORD],
                consent_id=consent.consent_id if consent else None,
                channel=channel,  # type: ignore[arg-type]
                disclosed_at=now,
                actor=who.subject,
            )
            sequence = await self._append(self._event(DisclosureRecorded, data, incident_id, FRESH))
            recorded += 1
        if recorded:
            try:  # so the person's page lists it at once
                await asyncio.to_thread(self.desk_wait, sequence, DESK_WAIT_SECONDS)
            except Exception:  # recorded on the stream: the list shows it once the desk has it
                log.warning("the person desk did not reach %s within %s s", sequence, DESK_WAIT_SECONDS)
        return recorded


class UnknownPerson(LookupError):
    """No person with this id is known here (yet) (404, to directors only)."""


def current_contacts(view: PersonView) -> set[UUID]:
    return {c.contact_id for c in view.contacts if not c.removed}
