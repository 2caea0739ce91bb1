"""The person desk (issue 17, section 4): keeps each person's record, decides every family message under the
person's 42 CFR Part 2 consents, tells the caller their report is answered, and records each disclosure.

A stream processor of its own (store and durable "persons"), like the follow-up desk. It reads ``person.*``,
``family.*``, ``consent.*`` and ``disclosure.recorded`` (the record, ``domain/person_record.py``),
``family.message_requested`` (a staff member's request: decided at once), ``incident.reported`` (the caller's
callback), ``dispatch.acknowledged`` and ``dispatch.arrived`` (the first of each per incident: "help is on the way"
and "a team member is with them" to the caller and, under consent, to the family of each person linked to the
incident), and ``referral.admitted`` ("arrived where they were going", under a treatment-status consent).

A family message is sent only when ``decide_family_message`` allows it at that moment, so a revocation blocks the
next one; a blocked one is published as ``family.message_blocked`` with the reason. Each one sent is also a
``disclosure.recorded`` (to whom, what, under which consent), which the person's disclosure list shows. A caller
update is not a disclosure about a person: it tells the caller only that their own report is being answered
(``CRISIS_CALLER_UPDATES``, default on).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import (
    ConsentRecorded,
    ConsentRevoked,
    DisclosureRecorded,
    DispatchAcknowledged,
    Envelope,
    FamilyContactAdded,
    FamilyContactRemoved,
    FamilyMessageBlocked,
    FamilyMessageRequested,
    IncidentReported,
    PersonIncidentLinked,
    PersonIncidentUnlinked,
    PersonRegistered,
    PersonUpdated,
    ReferralAdmitted,
    ResponderArrived,
    derived_id,
)
from services.contract.person import FamilyMessage
from services.projections.domain.person_file import IncidentPersons, PersonDirectory, PersonFile, PersonIndex
from services.projections.domain.person_record import Allowed, PersonView, decide_family_message
from services.projections.person_outbox import PRODUCER, PersonOutbox
from services.runtime.processor import StreamProcessor

AUTOMATIC = {
    "dispatch.acknowledged": FamilyMessage.HELP_ON_THE_WAY,
    "dispatch.arrived": FamilyMessage.RESPONDER_WITH_THEM,
    "referral.admitted": FamilyMessage.ADMITTED_TO_CARE,
}
CALLER = {"dispatch.acknowledged": "help_on_the_way", "dispatch.arrived": "responder_with_them"}


class PersonDeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    caller_updates: bool = Field(
        default=True, description="text the caller (their callback) that help is on the way and has arrived"
    )


class PersonDesk(StreamProcessor):
    """The person records, kept from the stream; ``policy`` at the end of the class lists what it handles."""

    producer = PRODUCER
    snapshotting_intervals = {PersonDirectory: 50}  # noqa: RUF012 - eventsourcing's class attribute

    def __init__(self, env: dict[str, str] | None = None, *, clock: Any, settings: PersonDeskSettings) -> None:
        super().__init__(env, clock=clock)
        self.settings = settings
        self.migrate_index()

    def migrate_index(self) -> int:
        """Copy an earlier version's one ``PersonIndex`` into per-incident aggregates and the directory, once: when
        the store holds it and no directory. Returns the incidents copied. Nothing is published (the outbox has
        nothing to say about either new aggregate's opening)."""
        if PersonDirectory.create_id() in self.repository:
            return 0
        try:
            index: PersonIndex = self.repository.get(PersonIndex.create_id())
        except AggregateNotFoundError:
            return 0
        incidents = set(index.linked) | set(index.callers) | set(index.given)
        copies = [
            IncidentPersons(
                incident_id=incident,
                linked=index.linked.get(incident),
                caller=index.callers.get(incident),
                given=index.given.get(incident),
            )
            for incident in sorted(incidents)
        ]
        try:
            self.save(PersonDirectory(aliases=index.aliases), *copies)
        except IntegrityError:  # another instance copied it first
            return 0
        return len(copies)

    # ---- reads for the pages (thread-safe: the repository answers each from the store) ------------------------

    def _file(self, person_id: UUID) -> PersonFile | None:
        try:
            return self.repository.get(person_id)
        except AggregateNotFoundError:
            return None

    def _directory(self) -> PersonDirectory:
        try:
            return self.repository.get(PersonDirectory.create_id())
        except AggregateNotFoundError:
            return PersonDirectory()

    def _incident(self, incident_id: str) -> IncidentPersons | None:
        try:
            return self.repository.get(IncidentPersons.create_id(incident_id))
        except AggregateNotFoundError:
            return None

    def person(self, person_id: UUID) -> PersonView | None:
        file = self._file(person_id)
        return file.view if file else None

    def people_for_incident(self, incident_id: UUID) -> list[PersonView]:
        incident = self._incident(str(incident_id))
        ids = incident.linked if incident else []
        return [view for view in (self.person(UUID(p)) for p in ids) if view is not None]

    def search(self, alias_prefix: str, limit: int = 20) -> list[PersonView]:
        prefix = alias_prefix.strip().casefold()
        found = [UUID(p) for p, alias in self._directory().aliases.items() if alias.casefold().startswith(prefix)]
        return [view for view in (self.person(p) for p in found[:limit]) if view is not None]

    def all_people(self, limit: int = 200) -> list[PersonView]:
        ids = list(self._directory().aliases)[:limit]
        return [view for view in (self.person(UUID(p)) for p in ids) if view is not None]

    # ---- the record --------------------------------------------------------------------------------------------

    def on_registered(self, event: PersonRegistered, processing_event: ProcessingEvent) -> None:
        if self._file(event.data.person_id) is not None:
            return
        file = PersonFile(person_id=event.data.person_id, event_json=event.to_json().decode())
        directory = self._directory()
        directory.name(str(event.data.person_id), event.data.alias)
        processing_event.collect_events(file, directory)

    def on_record_event(self, event: Envelope, processing_event: ProcessingEvent) -> None:
        file = self._file(event.data.person_id)
        if file is None:
            return
        file.apply(event_json=event.to_json().decode())
        changed: list[Any] = [file]
        person, incident_id = str(event.data.person_id), str(getattr(event.data, "incident_id", "") or "")
        if event.type == "person.updated":
            directory = self._directory()
            directory.name(person, event.data.alias)
            changed.append(directory)
        elif event.type in ("person.incident_linked", "person.incident_unlinked"):
            incident = self._incident(incident_id) or IncidentPersons(incident_id=incident_id)
            if event.type == "person.incident_linked":
                incident.link(person)
            else:
                incident.unlink(person)
            changed.append(incident)
        processing_event.collect_events(*changed)

    def on_message_requested(self, event: FamilyMessageRequested, processing_event: ProcessingEvent) -> None:
        data = event.data
        file = self._file(data.person_id)
        if file is None or str(data.request_id) in file.decided:
            return
        self._decide(file, data.request_id, data.contact_id, data.message, data.incident_id, event.occurred_at)
        processing_event.collect_events(file)

    def _decide(
        self,
        file: PersonFile,
        request_id: UUID,
        contact_id: UUID,
        message: FamilyMessage,
        incident_id: Any,
        at: datetime,
    ) -> None:
        decision = decide_family_message(file.view, contact_id, message, at)
        allowed = isinstance(decision, Allowed)
        file.decide_message(
            request_id=request_id,
            contact_id=contact_id,
            message=message.value,
            incident_id=incident_id,
            consent_id=decision.consent_id if allowed else None,
            scope=decision.scope if allowed else None,
            reason=None if allowed else decision.reason,
            at=at,
        )

    # ---- the incident's progress ----------------------------------------------------------------------------------

    def on_reported(self, event: IncidentReported, processing_event: ProcessingEvent) -> None:
        callback = event.data.reporter.callback
        if not (callback and self.settings.caller_updates):
            return
        incident_id = str(event.data.incident_id)
        incident = self._incident(incident_id) or IncidentPersons(incident_id=incident_id)
        if incident.caller is None:
            incident.note_caller(callback, event.data.reporter.language or "en")
            processing_event.collect_events(incident)

    def on_progress(self, event: Envelope, processing_event: ProcessingEvent) -> None:
        """The first accept / arrival / admission of an incident: the caller's update, and the family's."""
        incident_id = str(event.incident_id or event.data.incident_id)
        incident = self._incident(incident_id) or IncidentPersons(incident_id=incident_id)
        message = AUTOMATIC[event.type]
        if message.value in incident.given:
            return
        incident.give_update(message.value)
        changed: list[Any] = [incident]
        caller = incident.caller
        update = CALLER.get(event.type)
        if caller and update and update not in caller["told"]:
            incident.tell_caller(incident_id, update, caller["phone"], event.occurred_at, caller.get("language", "en"))
        for person_id in incident.linked:
            file = self._file(UUID(person_id))
            if file is None or file.view is None:
                continue
            for contact in file.view.contacts:
                if not contact.removed:
                    request = derived_id(incident_id, person_id, contact.contact_id, message.value)
                    self._decide(file, request, contact.contact_id, message, UUID(incident_id), event.occurred_at)
            changed.append(file)
        processing_event.collect_events(*changed)

    # ---- outbox -------------------------------------------------------------------------------------------------

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return PersonOutbox(self.repository).translate(domain_event)

    # ---- what the desk handles: one list ---------------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events change no person record (they only advance the tracking position)."""

    policy.register(PersonRegistered, on_registered)
    for _record_event in (
        PersonUpdated,
        PersonIncidentLinked,
        PersonIncidentUnlinked,
        FamilyContactAdded,
        FamilyContactRemoved,
        ConsentRecorded,
        ConsentRevoked,
        DisclosureRecorded,
        FamilyMessageBlocked,
    ):
        policy.register(_record_event, on_record_event)
    del _record_event  # not an attribute: eventsourcing's Application has a _record of its own
    policy.register(FamilyMessageRequested, on_message_requested)
    policy.register(IncidentReported, on_reported)
    policy.register(DispatchAcknowledged, on_progress)
    policy.register(ResponderArrived, on_progress)
    policy.register(ReferralAdmitted, on_progress)
