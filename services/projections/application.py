"""The projections' use cases: keep each incident's timeline, answer questions about it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import Envelope
from services.projections.domain.entries import timeline_entry
from services.projections.domain.timeline import IncidentTimeline
from services.runtime.processor import StreamProcessor


class UnknownIncident(LookupError):
    pass


class Projections(StreamProcessor):
    producer = "projections"

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        if not isinstance(domain_event, Envelope) or domain_event.incident_id is None:
            return
        entry = timeline_entry(domain_event)
        if entry is None:
            return
        timeline = self._timeline(domain_event.incident_id)
        if timeline.has_event(domain_event.id):
            return  # the same event re-published past the de-duplication window
        timeline.add_entry(
            event_id=domain_event.id,
            event_type=domain_event.type,
            occurred_at=domain_event.occurred_at,
            stream_sequence=processing_event.tracking.notification_id,
            actor=entry.actor,
            channel=entry.channel,
            summary=entry.summary,
            details=entry.details,
        )
        processing_event.collect_events(timeline)

    def _timeline(self, incident_id: UUID) -> IncidentTimeline:
        try:
            return self.repository.get(incident_id)
        except AggregateNotFoundError:
            return IncidentTimeline(id=incident_id)

    def timeline(self, incident_id: UUID) -> list[dict[str, Any]]:
        """The incident's entries in the order the stream recorded them. Raises UnknownIncident."""
        try:
            timeline: IncidentTimeline = self.repository.get(incident_id)
        except AggregateNotFoundError as exc:
            raise UnknownIncident(incident_id) from exc
        return list(timeline.entries)
