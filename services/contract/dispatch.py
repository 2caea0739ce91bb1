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
    "everyone_qualified_already_paged",
    "peer_steps_exhausted",
    "no_naloxone_in_stock",
]
"""Why nobody (more) could be paged. Shown to the director on the timeline.

``everyone_qualified_already_paged``: people who could take it are on call, but each was already paged for this
incident (dispatch.unfilled v3). ``peer_steps_exhausted``: a two-person team's peer coach was sought at every
candidate step without an acceptance; the team goes on without one (v3). ``ladder_exhausted`` is the primary
response only: every step, up to the clinical director, was tried. ``no_naloxone_in_stock``: an overdose needs a
naloxone carrier, and the carriers who could be paged have recorded stock with no usable kit (none left, or only
expired ones) (v4)."""


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
    resting: bool = Field(default=False, description="resting after a death or a reversal: nobody else could be paged")
    passed_over_resting: int = Field(default=0, ge=0, description="able and on call, passed over for their rest")
    after_hours_capped: bool = Field(default=False, description="at their weekly after-hours cap: nobody else could go")
    passed_over_capped: int = Field(default=0, ge=0, description="able and on call, at their after-hours cap")


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
    """Nobody could be paged at this step; the reasons are shown to the supervisor and on the timeline.

    v3 adds two shortfalls (``everyone_qualified_already_paged``, ``peer_steps_exhausted``); a v2 event reads
    unchanged as v3. v4 adds ``no_naloxone_in_stock``; a v3 event reads unchanged as v4.
    """

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


class SpokenAnswer(PageAnswer):
    """An answer to a page: texted (``channel`` sms, with its ``message_sid``) or pressed on the keypad of the page's
    voice call (``channel`` voice, no message SID; the event's causation is the ``call.keypad_pressed``). v2 added
    ``channel`` and made ``message_sid`` optional; every v1 answer was a text."""

    message_sid: MessageSid | None = Field(default=None, description="the text that said so (channel sms)")
    channel: Literal["sms", "voice"] = "sms"


class DispatchAcknowledgedData(SpokenAnswer):
    pass


class DispatchDeclinedData(SpokenAnswer):
    pass


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


class DispatchExtraAcceptanceData(SpokenAnswer):
    """Someone accepted after the incident was already covered."""

    outcome: Literal["backup", "stand_down"]


class DispatchEscalatedData(Strict):
    incident_id: UUID
    from_step: int = Field(ge=1)
    to_step: int = Field(ge=1)
    rung: Rung
    reason: Literal["timed_out", "declined", "unreachable", "nobody_to_page", "nobody_qualified"]


class AlarmRecipient(Strict):
    responder_id: UUID
    role: Literal["supervisor", "director"]


class DispatchAlarmRaisedData(Strict):
    """Nobody accepted a P1 or P2 incident (the ladder was exhausted): the on-call supervisor(s) and the clinical
    director(s) were texted a PHI-free NOBODY ACCEPTED alert, and called too for P1. It sounds again at
    ``next_at`` until someone accepts, the incident is cancelled, or a disposition is recorded."""

    incident_id: UUID
    priority: Priority
    repeat: int = Field(ge=1, description="1 when the ladder ran out, then 2, 3, ... at each repeat")
    minutes_since_report: int = Field(ge=0)
    notified: list[AlarmRecipient] = Field(description="who was texted (empty: nobody to tell was on the roster)")
    voice: bool = Field(description="each of them was also called (P1)")
    next_at: UtcDatetime = Field(description="when it sounds again unless it is stopped first")


class DispatchAlarmStoppedData(Strict):
    """The NOBODY ACCEPTED alarm stopped: someone accepted, the incident was cancelled, or a disposition was
    recorded in its documentation."""

    incident_id: UUID
    reason: Literal["accepted", "cancelled", "disposition_recorded"]
    repeats: int = Field(ge=1, description="how many times it sounded")


class ResponderProgressData(Strict):
    """A responder said where they are in the response: en route, on scene, done; by a text (``channel`` sms,
    with its ``message_sid``), with a button on their incident page (``channel`` app, ``reported_by`` the
    person signed in) or with the code and a key pressed on a call to the organisation's number (``channel``
    voice, no message SID). v2 added ``channel`` and ``reported_by``; every v1 event was a text. v3 allows
    ``channel`` voice."""

    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    code: ShortCode
    channel: Literal["sms", "app", "voice"] = "sms"
    message_sid: MessageSid | None = Field(default=None, description="the text that said so (channel sms)")
    reported_by: str | None = Field(
        default=None, max_length=100, description="channel app: the subject signed in on the incident page"
    )


class ProgressReportedData(Strict):
    """A responder pressed en route, on scene or done on their incident page. The dispatcher records it as it
    records the same words texted (dispatch.en_route, dispatch.arrived, dispatch.completed, channel app), or
    not at all when that responder is not (or no longer) on the incident."""

    incident_id: UUID
    responder_id: UUID
    stage: Literal["en_route", "arrived", "done"]
    reported_by: str = Field(min_length=1, max_length=100, description="the subject signed in on the page")


def _progress_v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "schema_version": 3}


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 had fewer (all optional in v2) fields: the defaults describe what v1 always meant."""
    return {**raw, "schema_version": 2}


def _unfilled_v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """v3 only adds shortfall values: every v2 event means the same in v3."""
    return {**raw, "schema_version": 3}


def _unfilled_v3_to_v4(raw: dict[str, Any]) -> dict[str, Any]:
    """v4 only adds a shortfall value (``no_naloxone_in_stock``): every v3 event means the same in v4."""
    return {**raw, "schema_version": 4}


class DispatchOffered(event_type("dispatch.offered", DispatchOfferedData, version=2)):
    pass


class DispatchUnfilled(event_type("dispatch.unfilled", DispatchUnfilledData, version=4)):
    pass


class DispatchAcknowledged(event_type("dispatch.acknowledged", DispatchAcknowledgedData, version=2)):
    pass


class DispatchDeclined(event_type("dispatch.declined", DispatchDeclinedData, version=2)):
    pass


class DispatchTimedOut(event_type("dispatch.timed_out", DispatchTimedOutData)):
    pass


class DispatchUnreachable(event_type("dispatch.unreachable", DispatchUnreachableData)):
    pass


class DispatchWithdrawn(event_type("dispatch.withdrawn", DispatchWithdrawnData)):
    pass


class DispatchExtraAcceptance(event_type("dispatch.extra_acceptance", DispatchExtraAcceptanceData, version=2)):
    pass


class DispatchEscalated(event_type("dispatch.escalated", DispatchEscalatedData)):
    pass


class DispatchAlarmRaised(event_type("dispatch.alarm_raised", DispatchAlarmRaisedData)):
    """NOBODY ACCEPTED: the supervisors and clinical directors were alerted (again, from ``repeat`` 2 on)."""


class DispatchAlarmStopped(event_type("dispatch.alarm_stopped", DispatchAlarmStoppedData)):
    pass


class ResponderEnRoute(event_type("dispatch.en_route", ResponderProgressData, version=3)):
    pass


class ResponderArrived(event_type("dispatch.arrived", ResponderProgressData, version=3)):
    pass


class DispatchCompletedData(ResponderProgressData):
    closes_incident: bool = Field(description="true when this was the last responder still on the incident")


class DispatchCompleted(event_type("dispatch.completed", DispatchCompletedData, version=3)):
    """A responder texted DONE (or pressed it on their incident page). When nobody else is still on it, the
    incident is closed."""


class ProgressReported(event_type("dispatch.progress_reported", ProgressReportedData)):
    pass


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
    DispatchAlarmRaised,
    DispatchAlarmStopped,
    ResponderEnRoute,
    ResponderArrived,
    DispatchCompleted,
    ProgressReported,
)
UPCASTERS = {
    ("dispatch.offered", 1): _v1_to_v2,
    ("dispatch.unfilled", 1): _v1_to_v2,
    ("dispatch.unfilled", 2): _unfilled_v2_to_v3,
    ("dispatch.unfilled", 3): _unfilled_v3_to_v4,
    # v2 of the progress events only adds fields whose defaults say what v1 always was: a text
    ("dispatch.en_route", 1): _v1_to_v2,
    ("dispatch.arrived", 1): _v1_to_v2,
    ("dispatch.completed", 1): _v1_to_v2,
    # v3 only allows channel "voice" (the code and a key pressed on a call): every v2 event reads as it was
    ("dispatch.en_route", 2): _progress_v2_to_v3,
    ("dispatch.arrived", 2): _progress_v2_to_v3,
    ("dispatch.completed", 2): _progress_v2_to_v3,
    # v2 of a page's answers adds the voice keypad: every v1 answer was a text
    ("dispatch.acknowledged", 1): _v1_to_v2,
    ("dispatch.declined", 1): _v1_to_v2,
    ("dispatch.extra_acceptance", 1): _v1_to_v2,
}
