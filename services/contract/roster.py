"""Events of the roster: responders, where they are, whether they can take a page, and on-call schedules.

The gateway's admin API appends these; the dispatcher folds them into the roster it routes with.
Times in schedules are local wall-clock times in a named IANA time zone, so a hand-off at 08:00 stays
at 08:00 across a daylight-saving change.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictFloat

from services.contract.envelope import E164, Strict, UtcDatetime, event_type


class Role(StrEnum):
    CLINICIAN = "clinician"
    NURSE = "nurse"
    PRESCRIBER = "prescriber"
    PEER_COACH = "peer_coach"
    SUPERVISOR = "supervisor"
    DIRECTOR = "director"


class Skill(StrEnum):
    NALOXONE_CARRIER = "naloxone_carrier"
    LICENSED_CLINICIAN = "licensed_clinician"
    PRESCRIBER = "prescriber"
    NURSE = "nurse"


class GeoPoint(Strict):
    # JSON numbers only (a roster command's home_base is a GeoPoint): true or "39.7" is refused
    lat: StrictFloat = Field(ge=-90, le=90)
    lon: StrictFloat = Field(ge=-180, le=180)


class ResponderProfile(Strict):
    """Everything the dispatcher needs to know about a responder. Staff data, not client PHI."""

    responder_id: UUID
    name: str = Field(min_length=1, max_length=100)
    role: Role
    skills: list[Skill] = Field(default_factory=list)
    languages: list[Literal["en", "es"]] = Field(default_factory=lambda: ["en"], min_length=1)
    phone: E164
    home_base: GeoPoint
    zones: list[str] = Field(default_factory=list, description="service zones this responder covers")
    supervisor_id: UUID | None = None


class ResponderRetiredData(Strict):
    responder_id: UUID
    reason: str = Field(max_length=300)


class ResponderLocationReportedData(Strict):
    responder_id: UUID
    location: GeoPoint
    label: str | None = Field(default=None, max_length=200, description="the place or address given, if any")
    source: Literal["api", "sms"]
    reported_at: UtcDatetime


class ResponderAvailabilityChangedData(Strict):
    responder_id: UUID
    availability: Literal["available", "off"]
    reason: str | None = Field(default=None, max_length=300)


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class RotationDefinedData(Strict):
    """A rotation: participants take turns, handing off at a local time every day or every week."""

    rotation_id: UUID
    name: str = Field(min_length=1, max_length=100)
    zones: list[str] = Field(min_length=1)
    time_zone: str = Field(description="IANA time zone, e.g. America/Denver")
    handoff_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local HH:MM")
    shift: Literal["daily", "weekly"]
    handoff_weekday: Weekday = Weekday.MONDAY
    start_date: date = Field(description="local date of the first hand-off; participants[0] starts then")
    participants: list[UUID] = Field(min_length=1)


class RotationRemovedData(Strict):
    rotation_id: UUID


class OverrideAddedData(Strict):
    """For a window, ``responder_id`` is on call for the zones in place of whoever the rotation says."""

    override_id: UUID
    responder_id: UUID
    zones: list[str] = Field(min_length=1)
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    replaces: UUID | None = Field(default=None, description="the responder taken off call, if any")


class OverrideRemovedData(Strict):
    override_id: UUID


class Shift(Strict):
    responder_id: UUID
    starts_at: UtcDatetime
    ends_at: UtcDatetime


class CalendarImportedData(Strict):
    """An iCalendar feed, expanded to concrete shifts; a re-import of the same calendar replaces its shifts."""

    calendar_id: UUID
    name: str = Field(max_length=100)
    zones: list[str] = Field(min_length=1)
    shifts: list[Shift]


class ResponderRestStartedData(Strict):
    """Issue 19: a death or an overdose reversal on ``incident_id``: this responder rests until ``until`` (routing
    passes them over while anyone else can be paged)."""

    responder_id: UUID
    incident_id: UUID
    until: UtcDatetime
    what: Literal["a death", "an overdose reversal"]


class ResponderRestEndedData(Strict):
    """A supervisor (or director) ended a rest early, explicitly."""

    responder_id: UUID
    incident_id: UUID = Field(description="the incident the rest was for")
    ended_by: str = Field(min_length=1, max_length=100)


class ResponderRegistered(event_type("responder.registered", ResponderProfile)):
    pass


class ResponderUpdated(event_type("responder.updated", ResponderProfile)):
    pass


class ResponderRetired(event_type("responder.retired", ResponderRetiredData)):
    pass


class ResponderLocationReported(event_type("responder.location_reported", ResponderLocationReportedData)):
    pass


class ResponderAvailabilityChanged(event_type("responder.availability_changed", ResponderAvailabilityChangedData)):
    pass


class RotationDefined(event_type("schedule.rotation_defined", RotationDefinedData)):
    pass


class RotationRemoved(event_type("schedule.rotation_removed", RotationRemovedData)):
    pass


class OverrideAdded(event_type("schedule.override_added", OverrideAddedData)):
    pass


class OverrideRemoved(event_type("schedule.override_removed", OverrideRemovedData)):
    pass


class CalendarImported(event_type("schedule.calendar_imported", CalendarImportedData)):
    pass


class ResponderRestStarted(event_type("responder.rest_started", ResponderRestStartedData)):
    pass


class ResponderRestEnded(event_type("responder.rest_ended", ResponderRestEndedData)):
    pass


EVENTS = (
    ResponderRestStarted,
    ResponderRestEnded,
    ResponderRegistered,
    ResponderUpdated,
    ResponderRetired,
    ResponderLocationReported,
    ResponderAvailabilityChanged,
    RotationDefined,
    RotationRemoved,
    OverrideAdded,
    OverrideRemoved,
    CalendarImported,
)
UPCASTERS: dict = {}
