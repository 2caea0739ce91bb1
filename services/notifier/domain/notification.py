"""One outgoing SMS and what became of it. Recorded before and after the provider call."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Notification(Aggregate):
    @event("Requested")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - the notification id chosen by the requester
        to: str,
        body: str,
        priority: str,
        template: str,
        incident_id: UUID | None,
        page_id: UUID | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self.to, self.body, self.priority, self.template = to, body, priority, template
        self.incident_id, self.page_id = incident_id, page_id
        self.status = "requested"
        self.message_sid: str | None = None

    @property
    def is_settled(self) -> bool:
        return self.status != "requested"

    @event("Sent")
    def record_sent(self, message_sid: str, provider_status: str, segments: int, caused_by: UUID, at: datetime) -> None:
        self.status = "sent"
        self.message_sid = message_sid

    @event("Failed")
    def record_failed(
        self, error_code: int | None, error_message: str, permanent: bool, caused_by: UUID, at: datetime
    ) -> None:
        self.status = "failed"
