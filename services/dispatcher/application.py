"""The dispatcher's use cases: an incident is reported -> page someone; a reply comes in -> record it.

Each policy reads the aggregates it needs, calls them, and collects them on the processing event, which
is saved atomically with the stream position (get -> call -> save).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    DispatchAcknowledged,
    DispatchAcknowledgedData,
    DispatchOffered,
    DispatchOfferedData,
    DispatchUnfilled,
    DispatchUnfilledData,
    Envelope,
    IncidentReported,
    NotificationRequested,
    NotificationRequestedData,
    PageReason,
    SmsReceived,
    derived_id,
    new_event,
)
from services.dispatcher.domain import messages
from services.dispatcher.domain.incident import IncidentDispatch, ResponderPages
from services.dispatcher.domain.replies import free_code, parse_reply
from services.dispatcher.domain.roster import Roster
from services.dispatcher.domain.routing import Candidate, DistanceKm, haversine_km, select_nearest
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

PRODUCER = "dispatcher"


class Dispatcher(StreamProcessor):
    producer = PRODUCER
    # a responder's page index grows with every page: snapshots keep loading it cheap
    snapshotting_intervals = {ResponderPages: 20, IncidentDispatch: 20}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        roster: Roster,
        ack_timeouts: dict[str, int],
        distance_km: DistanceKm = haversine_km,
    ) -> None:
        super().__init__(env, clock=clock)
        self.roster = roster
        self.ack_timeouts = ack_timeouts
        self.distance_km = distance_km

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events only advance the tracking position."""

    @policy.register
    def _(self, reported: IncidentReported, processing_event: ProcessingEvent) -> None:
        data = reported.data
        if self._exists(data.incident_id):
            return  # the same report re-published past the de-duplication window
        now = self.clock.now()
        location = data.location
        incident = IncidentDispatch(
            id=data.incident_id,
            short_code=data.short_code,
            priority=data.priority.value,
            lat=location.lat,
            lon=location.lon,
            place=location.address or f"{location.lat:.4f},{location.lon:.4f}",
            needs=list(data.needs),
            advise_911="ems_now" in data.needs and not (data.overdose and data.overdose.ems_called),
            caused_by=reported.id,
            at=now,
        )
        choice = select_nearest(self.roster.responders, (location.lat, location.lon), data.needs, self.distance_km)
        if isinstance(choice, Candidate):
            pages = self._pages(choice.responder.responder_id)
            self._offer(incident, pages, choice, reported.id)
            processing_event.collect_events(incident, pages)
        else:
            incident.record_unfilled(reason=choice.reason, caused_by=reported.id, at=now)
            processing_event.collect_events(incident)

    @policy.register
    def _(self, received: SmsReceived, processing_event: ProcessingEvent) -> None:
        data = received.data
        responder = self.roster.by_phone(data.from_number)
        if responder is None:
            return  # unknown number: the sms.received event on the stream is the record
        pages = self._pages(responder.responder_id)
        reply = parse_reply(data.body)
        now = self.clock.now()
        code = reply.code if reply else None
        if reply is not None and code is None and len(pages.open_pages) == 1:
            code = next(iter(pages.open_pages))
        if reply is None or code is None or code not in pages.open_pages:
            text = messages.not_understood_text() if reply is None else messages.no_open_page_text(code)
            pages.answer(phone=responder.phone, text=text, caused_by=received.id, at=now)
            processing_event.collect_events(pages)
            return
        incident = self.repository.get(pages.open_pages[code])
        page_id = incident.open_page_for(responder.responder_id)
        pages.close_page(code=code)
        if page_id is None:
            pages.answer(phone=responder.phone, text=messages.already_closed_text(code), caused_by=received.id, at=now)
        else:
            answer_page = incident.accept if reply.accept else incident.decline
            answer_page(
                page_id=page_id,
                responder_id=responder.responder_id,
                phone=responder.phone,
                code=code,
                message_sid=data.message_sid,
                caused_by=received.id,
                at=now,
            )
        processing_event.collect_events(incident, pages)

    def _offer(self, incident: IncidentDispatch, pages: ResponderPages, choice: Candidate, cause: UUID) -> None:
        now = self.clock.now()
        responder = choice.responder
        page_id = derived_id("page", incident.id, responder.responder_id, 1)
        code = free_code(incident.short_code, pages.open_pages)
        incident.offer(
            page_id=page_id,
            responder_id=responder.responder_id,
            responder_role=responder.role,
            phone=responder.phone,
            code=code,
            ack_deadline=now + timedelta(seconds=self.ack_timeouts[incident.priority]),
            step=1,
            reason={
                "on_call": responder.on_call,
                "skills_matched": list(choice.skills_matched),
                "distance_km": choice.distance_km,
                "load": 0,
                "rule": choice.rule,
            },
            sms_body=messages.page_text(
                incident.priority, code, incident.place, choice.distance_km, incident.advise_911
            ),
            caused_by=cause,
            at=now,
        )
        pages.open_page(code=code, incident_id=incident.id)

    def _exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    def _pages(self, responder_id: UUID) -> ResponderPages:
        try:
            return self.repository.get(ResponderPages.create_id(responder_id))
        except AggregateNotFoundError:
            return ResponderPages(responder_id=responder_id)

    # ---- outbox: stored domain events -> contract events ------------------------------------------

    @singledispatchmethod
    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return ()

    @outbox.register
    def _(self, offered: IncidentDispatch.PageOffered) -> Sequence[Envelope]:
        incident = offered.originator_id
        priority = self._priority(incident)
        return (
            self._event(
                DispatchOffered,
                DispatchOfferedData(
                    incident_id=incident,
                    page_id=offered.page_id,
                    responder_id=offered.responder_id,
                    responder_role=offered.responder_role,
                    code=offered.code,
                    priority=priority,
                    ack_deadline=offered.ack_deadline,
                    step=offered.step,
                    reason=PageReason(**offered.reason),
                ),
                offered,
                incident,
            ),
            self._sms(offered, offered.phone, offered.sms_body, "page", priority, incident, offered.page_id, 1),
        )

    @outbox.register
    def _(self, unfilled: IncidentDispatch.Unfilled) -> Sequence[Envelope]:
        incident = unfilled.originator_id
        data = DispatchUnfilledData(incident_id=incident, reason=unfilled.reason)
        return (self._event(DispatchUnfilled, data, unfilled, incident),)

    @outbox.register
    def _(self, accepted: IncidentDispatch.PageAccepted) -> Sequence[Envelope]:
        incident = accepted.originator_id
        data = DispatchAcknowledgedData(
            incident_id=incident,
            page_id=accepted.page_id,
            responder_id=accepted.responder_id,
            code=accepted.code,
            message_sid=accepted.message_sid,
        )
        confirmation = messages.accepted_text(accepted.code)
        priority = self._priority(incident)
        return (
            self._event(DispatchAcknowledged, data, accepted, incident),
            self._sms(accepted, accepted.phone, confirmation, "accepted", priority, incident, accepted.page_id, 1),
        )

    @outbox.register
    def _(self, declined: IncidentDispatch.PageDeclined) -> Sequence[Envelope]:
        incident = declined.originator_id
        text = messages.declined_text(declined.code)
        priority = self._priority(incident)
        return (self._sms(declined, declined.phone, text, "declined", priority, incident, declined.page_id, 0),)

    @outbox.register
    def _(self, answered: ResponderPages.ReplyAnswered) -> Sequence[Envelope]:
        return (self._sms(answered, answered.phone, answered.text, "reply_help", "P3", None, None, 0),)

    def _priority(self, incident_id: UUID) -> str:
        return self.repository.get(incident_id, version=1).priority

    def _event(
        self,
        event_class: type[Envelope],
        data: Any,
        stored: Any,
        incident_id: UUID | None,
        event_id: UUID | None = None,
    ) -> Envelope:
        return new_event(
            event_class,
            data,
            event_id=event_id or derived_id(stored.originator_id, stored.originator_version, event_class.TYPE),
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=incident_id,
            causation_id=stored.caused_by,
        )

    def _sms(
        self,
        stored: Any,
        phone: str,
        body: str,
        template: str,
        priority: str,
        incident_id: UUID | None,
        page_id: UUID | None,
        index: int,
    ) -> Envelope:
        notification_id = derived_id(stored.originator_id, stored.originator_version, "sms", index)
        data = NotificationRequestedData(
            notification_id=notification_id,
            incident_id=incident_id,
            page_id=page_id,
            to=phone,
            body=body,
            template=template,
            priority=priority,
        )
        return self._event(NotificationRequested, data, stored, incident_id, event_id=notification_id)
