"""Hand-made rosters, schedules and incidents for the dispatcher's tests. Generated people, never real ones."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.contract.events import (
    Envelope,
    IncidentReported,
    IncidentReportedData,
    ResponderProfile,
    ResponderRegistered,
    RotationDefined,
    RotationDefinedData,
    SmsFailed,
    SmsFailedData,
    SmsOptOutChanged,
    SmsOptOutChangedData,
    new_event,
)
from tests.factories import T0, fake_phone

SCENE = (39.7431, -104.9876)
ZONES = ["central"]
_codes = itertools.count(1000)


def responder(
    role: str = "clinician",
    *,
    skills: tuple[str, ...] = ("naloxone_carrier",),
    home: tuple[float, float] = (39.745, -104.99),
    languages: tuple[str, ...] = ("en",),
    supervisor_id: UUID | None = None,
) -> ResponderProfile:
    return ResponderProfile(
        responder_id=uuid4(),
        name=f"Generated {role} {next(_codes)}",
        role=role,
        skills=list(skills),
        languages=list(languages),
        phone=fake_phone(),
        home_base={"lat": home[0], "lon": home[1]},
        zones=list(ZONES),
        supervisor_id=supervisor_id,
    )


def registered(profile: ResponderProfile, at: datetime = T0) -> Envelope:
    return new_event(ResponderRegistered, profile, event_id=uuid4(), occurred_at=at, producer="tests")


def rotation(
    participants: list[UUID],
    *,
    shift: str = "daily",
    handoff: str = "08:00",
    start: str = "2026-01-05",
    time_zone: str = "America/Denver",
    zones: list[str] | None = None,
    weekday: str = "monday",
) -> Envelope:
    data = RotationDefinedData(
        rotation_id=uuid4(),
        name="generated rotation",
        zones=zones or list(ZONES),
        time_zone=time_zone,
        handoff_time=handoff,
        shift=shift,
        handoff_weekday=weekday,
        start_date=start,
        participants=participants,
    )
    return new_event(RotationDefined, data, event_id=uuid4(), occurred_at=T0, producer="tests")


def incident(
    kind: str = "overdose",
    priority: str = "P1",
    needs: tuple[str, ...] = ("naloxone_carrier", "ems_now"),
    *,
    at: tuple[float, float] = SCENE,
    short_code: str = "4821",
    zone: str | None = "central",
) -> IncidentReported:
    incident_id = uuid4()
    data: dict[str, Any] = {
        "incident_id": incident_id,
        "short_code": short_code,
        "kind": kind,
        "priority": priority,
        "needs": list(needs),
        "guidance": [],
        "location": {"lat": at[0], "lon": at[1], "address": "5th St & Main"},
        "reporter": {"channel": "hotline"},
    }
    if "zone" in IncidentReportedData.model_fields:
        data["zone"] = zone
    return new_event(
        IncidentReported,
        IncidentReportedData.model_validate(data),
        event_id=uuid4(),
        occurred_at=T0,
        producer="tests",
        incident_id=incident_id,
    )


def sms_failed(incident_id: UUID, notification_id: UUID, to: str, code: int = 30003) -> Envelope:
    data = SmsFailedData(
        notification_id=notification_id, to=to, error_code=code, error_message="undelivered", permanent=True
    )
    return new_event(SmsFailed, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id)


def opt_out(phone: str, opted_out: bool = True, at: datetime = T0) -> Envelope:
    data = SmsOptOutChangedData(
        phone=phone,
        opted_out=opted_out,
        keyword="STOP" if opted_out else "START",
        message_sid="SM" + uuid4().hex,
        received_at=at,
    )
    return new_event(SmsOptOutChanged, data, event_id=uuid4(), occurred_at=at, producer="tests")


def later(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
