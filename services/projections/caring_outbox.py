"""What the caring desk publishes for each of its stored events (``caring_desk.py``): the n-th text with its
``caring.contact_sent``; ``caring.completed`` after the last; ``caring.withdrawn`` for a STOP the desk saw; for a
reply, ``caring.reply_received`` (the dispatcher pages the on-call clinician) and the person's acknowledgement.
Ids derive from the stored event's, so a publish repeated after a crash is de-duplicated by the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    CaringCompleted,
    CaringCompletedData,
    CaringContactSent,
    CaringContactSentData,
    CaringReplyReceived,
    CaringReplyReceivedData,
    CaringWithdrawn,
    CaringWithdrawnData,
    Envelope,
    derived_id,
    new_event,
    notification_request,
)
from services.projections.domain.caring import CaringSeries, due_at

PRODUCER = "projections"


class CaringOutbox:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def _series(self, stored: Any) -> CaringSeries:
        return self.repository.get(stored.originator_id, version=stored.originator_version)

    @singledispatchmethod
    def translate(self, stored: Any) -> Sequence[Envelope]:
        """The contract events for one stored desk event; other stored events publish nothing."""
        return ()

    def publish_sent(self, stored: CaringSeries.Sent) -> Sequence[Envelope]:
        series = self._series(stored)
        notification_id = derived_id("caring", stored.originator_id, stored.originator_version, "text")
        data = CaringContactSentData(
            enrolment_id=series.id,
            person_id=series.person_id,
            number=stored.number,
            of=len(series.schedule_days),
            due_at=due_at(series.consented_at, series.schedule_days, stored.number),
            notification_id=notification_id,
        )
        text = _text(stored, series, notification_id, "caring_contact", {"number": stored.number})
        return (_event(CaringContactSent, data, stored), text)

    def publish_completed(self, stored: CaringSeries.Completed) -> Sequence[Envelope]:
        series = self._series(stored)
        data = CaringCompletedData(enrolment_id=series.id, person_id=series.person_id, sent=series.sent)
        return (_event(CaringCompleted, data, stored),)

    def publish_withdrawn(self, stored: CaringSeries.Withdrawn) -> Sequence[Envelope]:
        if not stored.publish:
            return ()  # a staff withdrawal: on the stream already
        series = self._series(stored)
        data = CaringWithdrawnData(
            enrolment_id=series.id,
            person_id=series.person_id,
            reason="stop",
            channel="sms",
            message_sid=stored.message_sid,
            actor="person sms",
        )
        return (_event(CaringWithdrawn, data, stored),)

    def publish_replied(self, stored: CaringSeries.Replied) -> Sequence[Envelope]:
        series = self._series(stored)
        data = CaringReplyReceivedData(
            enrolment_id=series.id,
            person_id=series.person_id,
            code=stored.code,
            message_sid=stored.message_sid,
            received_at=stored.at,
        )
        notification_id = derived_id("caring", stored.originator_id, stored.originator_version, "ack")
        return (
            _event(CaringReplyReceived, data, stored),
            _text(stored, series, notification_id, "caring_reply_ack", {}),
        )

    translate.register(CaringSeries.Sent, publish_sent)
    translate.register(CaringSeries.Completed, publish_completed)
    translate.register(CaringSeries.Withdrawn, publish_withdrawn)
    translate.register(CaringSeries.Replied, publish_replied)


def _event(event_class: Any, data: Any, stored: Any) -> Envelope:
    event_id = derived_id("caring", stored.originator_id, stored.originator_version, event_class.TYPE)
    return new_event(event_class, data, event_id=event_id, occurred_at=stored.at, producer=PRODUCER)


def _text(stored: Any, series: CaringSeries, notification_id: UUID, template: str, params: dict) -> Envelope:
    """A text to the person: P3 (never urgent), no incident (nothing ties it to one on the stream)."""
    return notification_request(
        notification_id=notification_id,
        to=series.phone,
        language=series.language,
        template=template,
        params=params,
        priority="P3",
        occurred_at=stored.at,
        producer=PRODUCER,
        incident_id=None,
    )
