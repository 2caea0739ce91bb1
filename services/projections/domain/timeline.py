"""An incident's timeline: every event about it, in stream order, as the crisis documentation's spine."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class IncidentTimeline(Aggregate):
    @event("Started")
    def __init__(self, id: UUID) -> None:  # noqa: A002 - the incident id
        self.entries: list[dict[str, Any]] = []

    @event("EntryAdded")
    def add_entry(
        self,
        event_id: UUID,
        event_type: str,
        occurred_at: datetime,
        stream_sequence: int,
        actor: str,
        channel: str,
        summary: str,
        details: dict[str, Any],
    ) -> None:
        self.entries.append(
            {
                "event_id": event_id,
                "type": event_type,
                "occurred_at": occurred_at,
                "stream_sequence": stream_sequence,
                "actor": actor,
                "channel": channel,
                "summary": summary,
                "details": details,
            }
        )

    def has_event(self, event_id: UUID) -> bool:
        return any(e["event_id"] == event_id for e in self.entries)
