"""The referral desk's outbox: each stored desk event -> the contract events and the texts to publish.
``ReferralOutbox.translate`` ends with the list of what is published for which stored event.

Event ids are derived from the stored event, so a publish repeated after a crash is de-duplicated by the stream.
A program's text says a code and a signed link; nothing about the person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    Envelope,
    ProgramAvailabilityReported,
    ProgramAvailabilityReportedData,
    ReferralAcceptanceOverdue,
    ReferralAcceptanceOverdueData,
    ReferralNoShow,
    ReferralNoShowData,
    ReferralWithdrawn,
    ReferralWithdrawnData,
    decode_event,
    derived_id,
    new_event,
    notification_request,
)
from services.projections.domain.referral_case import ProgramBook, ReferralCase
from services.projections.referral_links import ReferralLinks

PRODUCER = "projections"
NOTED = {
    "accept": "accepted",
    "decline": "declined",
    "info": "info_needed",
    "arrived": "admitted",
    "no_show": "no_show",
}


class ReferralOutbox:
    def __init__(self, repository: Repository, links: ReferralLinks) -> None:
        self.repository = repository
        self.links = links

    def _case(self, stored: Any) -> ReferralCase:
        return self.repository.get(stored.originator_id, version=stored.originator_version)

    @singledispatchmethod
    def translate(self, stored: Any) -> Sequence[Envelope]:
        """The contract events for one stored desk event; other stored events publish nothing."""
        return ()

    def publish_offers(self, stored: ReferralCase.OffersTexted) -> Sequence[Envelope]:
        view = self._case(stored).view
        texts = []
        for program in stored.programs:
            link, _ = self.links.url(UUID(view.referral_id), UUID(program["program_id"]), stored.at)
            params = {"code": view.code} | ({"link": link} if link.startswith("http") else {})  # no public URL set
            texts.append(
                notification_request(
                    notification_id=derived_id(view.referral_id, program["program_id"], "offer"),
                    to=program["phone"],
                    language=program["language"],
                    template="referral_offer",
                    params=params,
                    priority="P2",
                    occurred_at=stored.at,
                    producer=PRODUCER,
                    incident_id=UUID(view.incident_id),
                )
            )
        return texts

    def publish_sms_answer(self, stored: ReferralCase.AnsweredBySms) -> Sequence[Envelope]:
        event = decode_event(stored.event_json.encode())
        view = self._case(stored).view
        noted = notification_request(
            notification_id=derived_id(event.id, "noted"),
            to=stored.phone,
            language=stored.language,
            template="referral_noted",
            params={"code": view.code, "answer": NOTED[stored.answer]},
            priority="P3",
            occurred_at=event.occurred_at,
            producer=PRODUCER,
            incident_id=UUID(view.incident_id),
        )
        return (event, noted)

    def publish_withdrawn(self, stored: ReferralCase.OthersWithdrawn) -> Sequence[Envelope]:
        view = self._case(stored).view
        out: list[Envelope] = []
        for program in stored.programs:
            data = ReferralWithdrawnData(
                referral_id=UUID(view.referral_id),
                incident_id=UUID(view.incident_id),
                program_id=UUID(program["program_id"]),
                reason=stored.reason,
            )
            event_id = derived_id(view.referral_id, program["program_id"], "withdrawn")
            out.append(_event(ReferralWithdrawn, data, event_id, stored.at, view.incident_id))
            if program.get("phone"):
                out.append(
                    notification_request(
                        notification_id=derived_id(event_id, "text"),
                        to=program["phone"],
                        language=program["language"],
                        template="referral_withdrawn",
                        params={"code": view.code},
                        priority="P3",
                        occurred_at=stored.at,
                        producer=PRODUCER,
                        incident_id=UUID(view.incident_id),
                    )
                )
        return out

    def publish_overdue(self, stored: ReferralCase.AcceptanceOverdue) -> Sequence[Envelope]:
        view = self._case(stored).view
        data = ReferralAcceptanceOverdueData(
            referral_id=UUID(view.referral_id),
            incident_id=UUID(view.incident_id),
            code=view.code,
            accept_by=view.accept_by,
            declined=stored.declined,
            unanswered=stored.unanswered,
        )
        event_id = derived_id(view.referral_id, "acceptance-overdue")
        return (_event(ReferralAcceptanceOverdue, data, event_id, stored.at, view.incident_id),)

    def publish_admission_missed(self, stored: ReferralCase.AdmissionMissed) -> Sequence[Envelope]:
        view = self._case(stored).view
        data = ReferralNoShowData(
            referral_id=UUID(view.referral_id),
            incident_id=UUID(view.incident_id),
            program_id=UUID(stored.program_id),
            code=view.code,
            window_closed_at=stored.window_closed_at,
            actor="deadline",
            channel="deadline",
        )
        event_id = derived_id(view.referral_id, "admission-missed")
        return (_event(ReferralNoShow, data, event_id, stored.at, view.incident_id),)

    def publish_availability(self, stored: ProgramBook.AvailabilityTexted) -> Sequence[Envelope]:
        book: ProgramBook = self.repository.get(stored.originator_id, version=stored.originator_version)
        program = book.programs[stored.program_id]
        slot = getattr(stored, "next_intake_at", None)  # absent from the events stored before SLOT was read
        data = ProgramAvailabilityReportedData(
            program_id=UUID(stored.program_id),
            beds_open=stored.beds_open,
            next_intake_at=slot,
            as_of=stored.at,
            reported_by="program sms",
            channel="sms",
        )
        event_id = derived_id(stored.message_sid, "availability")
        noted = notification_request(
            notification_id=derived_id(event_id, "noted"),
            to=program["phone"],
            language=program["language"],
            template="availability_noted",
            params={"beds_open": stored.beds_open, "slot": slot is not None},
            priority="P3",
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=None,
        )
        return (_event(ProgramAvailabilityReported, data, event_id, stored.at, None), noted)

    def publish_help(self, stored: ProgramBook.HelpTexted) -> Sequence[Envelope]:
        book: ProgramBook = self.repository.get(stored.originator_id, version=stored.originator_version)
        program = book.programs[stored.program_id]
        return (
            notification_request(
                notification_id=derived_id(stored.message_sid, "program-help"),
                to=program["phone"],
                language=program["language"],
                template="program_reply_help",
                params={},
                priority="P3",
                occurred_at=stored.at,
                producer=PRODUCER,
                incident_id=None,
            ),
        )

    translate.register(ReferralCase.OffersTexted, publish_offers)
    translate.register(ReferralCase.AnsweredBySms, publish_sms_answer)
    translate.register(ReferralCase.OthersWithdrawn, publish_withdrawn)
    translate.register(ReferralCase.AcceptanceOverdue, publish_overdue)
    translate.register(ReferralCase.AdmissionMissed, publish_admission_missed)
    translate.register(ProgramBook.AvailabilityTexted, publish_availability)
    translate.register(ProgramBook.HelpTexted, publish_help)


def _event(event_class: Any, data: Any, event_id: UUID, at: Any, incident_id: Any) -> Envelope:
    return new_event(
        event_class,
        data,
        event_id=event_id,
        occurred_at=at,
        producer=PRODUCER,
        incident_id=UUID(str(incident_id)) if incident_id else None,
    )
