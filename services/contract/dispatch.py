"""Events of dispatch: who was paged and why, what they answered, and every escalation with its reason."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from services.contract.envelope import MessageSid, Priority, ShortCode, Strict, UtcDatetime, event_type

Rung = Literal["candidates", "supervisor", "director"]
"""The escalation ladder: the best candidates first, then the on-call supervisor, then the clinical director."""

Shortfall = Literal[
    "nobody_on_call",
    "all_busy",
    "locations_stale",
    "outside_radius",
    "nobody_with_skill",
    "all_unreachable",
    "ladder_exhausted",
]
"""Why nobody (more) could be paged. Shown to the director on the timeline."""


class PageReason(Strict):
    """Why this person was paged: shown to the director on the timeline."""

    on_call: bool
    skills_matched: list[str]
    distance_km: float = Field(ge=0)
    load: int = Field(ge=0, description="incidents the responder was already on")
    rule: str = Field(description="the policy rule that chose them, e.g. 'P1: best two at once'")
    rung: Rung = "candidates"
    team_role: Literal["primary", "peer", "supervisor", "director"] = "primary"
    location_source: Literal["reported", "home_base"] = "home_base"
    location_age_minutes: int | None = Field(default=None, ge=0)


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
    """Nobody could be paged at this step; the reasons are shown to the supervisor and on the timeline."""

    incident_id: UUID
    reason: str = Field(description="a sentence for people")
    shortfalls: list[Shortfall] = Field(default_factory=list)
    step: int = Field(default=1, ge=1)
    rung: Rung = "candidates"


class PageAnswer(Strict):
    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    code: ShortCode


class DispatchAcknowledgedData(PageAnswer):
    message_sid: MessageSid


class DispatchDeclinedData(PageAnswer):
    message_sid: MessageSid


class DispatchTimedOutData(PageAnswer):
    deadline: UtcDatetime


class DispatchUnreachableData(PageAnswer):
    """The page could not reach the responder (SMS failed, undelivered, or they opted out)."""

    notification_id: UUID | None = None
    error_code: int | None = None
    reason: str


class DispatchWithdrawnData(PageAnswer):
    """An open page was closed without an answer: the incident was covered or cancelled."""

    reason: Literal["covered", "cancelled", "completed"]


class DispatchExtraAcceptanceData(PageAnswer):
    """Someone accepted after the incident was already covered."""

    message_sid: MessageSid
    outcome: Literal["backup", "stand_down"]


class DispatchEscalatedData(Strict):
    incident_id: UUID
    from_step: int = Field(ge=1)
    to_step: int = Field(ge=1)
    rung: Rung
    reason: Literal["timed_out", "declined", "unreachable", "nobody_to_page", "nobody_qualified"]


class ResponderProgressData(Strict):
    """A responder said where they are in the response: en route, on scene, done."""

    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    code: ShortCode
    message_sid: MessageSid


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 had fewer (all optional in v2) fields: the defaults describe what v1 always meant."""
    return {**raw, "schema_version": 2}


class DispatchOffered(event_type("dispatch.offered", DispatchOfferedData, version=2)):
    pass


class DispatchUnfilled(event_type("dispatch.unfilled", DispatchUnfilledData, version=2)):
    pass


class DispatchAcknowledged(event_type("dispatch.acknowledged", DispatchAcknowledgedData)):
    pass


class DispatchDeclined(event_type("dispatch.declined", DispatchDeclinedData)):
    pass


class DispatchTimedOut(event_type("dispatch.timed_out", DispatchTimedOutData)):
    pass


class DispatchUnreachable(event_type("dispatch.unreachable", DispatchUnreachableData)):
    pass


class DispatchWithdrawn(event_type("dispatch.withdrawn", DispatchWithdrawnData)):
    pass


class DispatchExtraAcceptance(event_type("dispatch.extra_acceptance", DispatchExtraAcceptanceData)):
    pass


class DispatchEscalated(event_type("dispatch.escalated", DispatchEscalatedData)):
    pass


class ResponderEnRoute(event_type("dispatch.en_route", ResponderProgressData)):
    pass


class ResponderArrived(event_type("dispatch.arrived", ResponderProgressData)):
    pass


class DispatchCompletedData(ResponderProgressData):
    closes_incident: bool = Field(description="true when this was the last responder still on the incident")


class DispatchCompleted(event_type("dispatch.completed", DispatchCompletedData)):
    """A responder texted DONE. When nobody else is still on it, the incident is closed."""


EVENTS = (
    DispatchOffered,
    DispatchUnfilled,
    DispatchAcknowledged,
    DispatchDeclined,
    DispatchTimedOut,
    DispatchUnreachable,
    DispatchWithdrawn,
    DispatchExtraAcceptance,
    DispatchEscalated,
    ResponderEnRoute,
    ResponderArrived,
    DispatchCompleted,
)
UPCASTERS = {("dispatch.offered", 1): _v1_to_v2, ("dispatch.unfilled", 1): _v1_to_v2}
