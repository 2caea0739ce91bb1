"""Generated test data: fake phone numbers and plausible events, never real people."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from uuid import UUID, uuid4

from services.contract.events import (
    CrisisKind,
    IncidentReported,
    IncidentReportedData,
    Location,
    OverdoseDetails,
    Priority,
    Reporter,
    SmsReceived,
    SmsReceivedData,
    derived_id,
    new_event,
)

_counter = itertools.count(1)
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def fake_phone() -> str:
    return f"+1555019{next(_counter):04d}"


def incident_reported(
    lat: float = 39.7431, lon: float = -104.9876, *, short_code: str = "4821", ems_called: bool = False
) -> IncidentReported:
    incident_id = uuid4()
    return new_event(
        IncidentReported,
        IncidentReportedData(
            incident_id=incident_id,
            short_code=short_code,
            kind=CrisisKind.OVERDOSE,
            priority=Priority.P1,
            needs=["naloxone_carrier"] + ([] if ems_called else ["ems_now"]),
            guidance=["Call 911 now."],
            location=Location(lat=lat, lon=lon, address="5th St & Main"),
            reporter=Reporter(channel="hotline"),
            overdose=OverdoseDetails(ems_called=ems_called),
        ),
        event_id=uuid4(),
        occurred_at=T0,
        producer="tests",
        incident_id=incident_id,
    )


def sms_received(from_number: str, body: str, sid_seed: UUID | None = None) -> SmsReceived:
    sid = "SM" + (sid_seed or uuid4()).hex
    return new_event(
        SmsReceived,
        SmsReceivedData(message_sid=sid, from_number=from_number, to_number="+15005550006", body=body),
        event_id=derived_id("sms.received", sid),
        occurred_at=T0,
        producer="tests",
    )
