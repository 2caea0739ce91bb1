"""Events of dispatch: who was paged, why, and what they answered."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from services.contract.envelope import MessageSid, Priority, ShortCode, Strict, UtcDatetime, event_type


class PageReason(Strict):
    """Why this person was paged: shown to the director on the timeline."""

    on_call: bool
    skills_matched: list[str]
    distance_km: float = Field(ge=0)
    load: int = Field(ge=0, description="incidents the responder was already on")
    rule: str


class DispatchOfferedData(Strict):
    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    responder_role: str
    code: ShortCode
    priority: Priority
    ack_deadline: UtcDatetime
    step: int = Field(ge=1, description="escalation step this page belongs to")
    reason: PageReason


class DispatchUnfilledData(Strict):
    """Nobody could be paged; the reason is shown to the supervisor and on the timeline."""

    incident_id: UUID
    reason: str


class DispatchAcknowledgedData(Strict):
    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    code: ShortCode
    message_sid: MessageSid


class DispatchOffered(event_type("dispatch.offered", DispatchOfferedData)):
    pass


class DispatchUnfilled(event_type("dispatch.unfilled", DispatchUnfilledData)):
    pass


class DispatchAcknowledged(event_type("dispatch.acknowledged", DispatchAcknowledgedData)):
    pass


EVENTS = (DispatchOffered, DispatchUnfilled, DispatchAcknowledged)
UPCASTERS: dict = {}
