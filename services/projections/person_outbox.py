"""The person desk's outbox: each stored desk event -> what is published. ``PersonOutbox.translate`` ends with the
list. Ids are derived from the stored event, so a publish repeated after a crash is de-duplicated by the stream.

A family message sent: ``notification.requested`` (``family_update``: one fixed message, in the contact's language)
and ``disclosure.recorded`` (to whom: the relation, never the name; what: the consent's scope; under which
consent). A blocked one: ``family.message_blocked`` with the reason. A caller's update: ``caller_update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Repository
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    DisclosureRecorded,
    DisclosureRecordedData,
    Envelope,
    FamilyMessageBlocked,
    FamilyMessageBlockedData,
    derived_id,
    new_event,
    notification_request,
)
from services.projections.domain.person_file import IncidentPersons, PersonFile, PersonIndex

PRODUCER = "projections"


class PersonOutbox:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @singledispatchmethod
    def translate(self, stored: Any) -> Sequence[Envelope]:
        """The contract events for one stored desk event; other stored events publish nothing."""
        return ()

    def publish_message(self, stored: PersonFile.MessageDecided) -> Sequence[Envelope]:
        file: PersonFile = self.repository.get(stored.originator_id, version=stored.originator_version)
        view = file.view
        contact = view.contact(stored.contact_id) if view else None
        if stored.consent_id is None or contact is None:
            data = FamilyMessageBlockedData(
                request_id=stored.request_id,
                person_id=stored.originator_id,
                contact_id=stored.contact_id,
                message=stored.message,
                incident_id=stored.incident_id,
                reason=stored.reason or "contact_removed",
            )
            blocked_id = derived_id("persons", stored.request_id, "blocked")
            return (_event(FamilyMessageBlocked, data, blocked_id, stored.at, stored.incident_id),)
        notification_id = derived_id("persons", stored.request_id, "sent")
        text = notification_request(
            notification_id=notification_id,
            to=contact.phone,
            language=contact.language,
            template="family_update",
            params={"message": stored.message},
            priority="P3",
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=stored.incident_id,
        )
        disclosed = DisclosureRecordedData(
            disclosure_id=derived_id("persons", stored.request_id, "disclosure"),
            person_id=stored.originator_id,
            incident_id=stored.incident_id,
            recipient_kind="family_contact",
            recipient_id=stored.contact_id,
            recipient_label=contact.relation,
            information=[stored.scope],
            consent_id=stored.consent_id,
            channel="sms",
            notification_id=notification_id,
            disclosed_at=stored.at,
            actor="person desk",
        )
        record = _event(DisclosureRecorded, disclosed, disclosed.disclosure_id, stored.at, stored.incident_id)
        return (text, record)

    def publish_caller_update(self, stored: IncidentPersons.CallerTold | PersonIndex.CallerTold) -> Sequence[Envelope]:
        return (
            notification_request(
                notification_id=derived_id("persons", stored.incident_id, "caller", stored.update),
                to=stored.phone,
                language=getattr(stored, "language", "en"),  # absent from the events stored before it was kept
                template="caller_update",
                params={"update": stored.update},
                priority="P2",
                occurred_at=stored.at,
                producer=PRODUCER,
                incident_id=stored.incident_id,
            ),
        )

    translate.register(PersonFile.MessageDecided, publish_message)
    translate.register(IncidentPersons.CallerTold, publish_caller_update)
    translate.register(PersonIndex.CallerTold, publish_caller_update)  # stored by earlier versions


def _event(event_class: Any, data: Any, event_id: Any, at: Any, incident_id: Any) -> Envelope:
    return new_event(event_class, data, event_id=event_id, occurred_at=at, producer=PRODUCER, incident_id=incident_id)
