"""Events about the system itself: messages no consumer could read."""

from __future__ import annotations

import json
from uuid import UUID

from pydantic import Field

from services.contract.envelope import Strict, event_type


class MessageDeadLetteredData(Strict):
    consumer: str
    reason: str
    stream_sequence: int = Field(ge=1)
    original_subject: str
    original_payload: str = Field(description="the unreadable message, decoded as UTF-8 with replacement")

    def original_incident_id(self) -> UUID | None:
        """The incident the message was about, if its envelope can still be read that far."""
        try:
            return UUID(json.loads(self.original_payload)["incident_id"])
        except (ValueError, TypeError, KeyError):
            return None


class MessageDeadLettered(event_type("message.dead_lettered", MessageDeadLetteredData)):
    pass


class AccessRefusedData(Strict):
    """A service refused a caller a record (403): entered in the audit log like a refused read.

    Carries no incident id in its envelope: a refused attempt is not part of the incident's record."""

    subject: str = Field(max_length=100, description="the credential's subject")
    role: str = Field(max_length=32)
    responder_id: UUID | None = None
    action: str = Field(max_length=100, description="what was attempted, e.g. write:incident.cancelled")
    record_type: str = Field(max_length=32)
    record_id: str = Field(max_length=100)


class AccessRefused(event_type("access.refused", AccessRefusedData)):
    pass


EVENTS = (MessageDeadLettered, AccessRefused)
UPCASTERS: dict = {}
