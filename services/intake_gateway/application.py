"""The gateway's use cases: turn validated input into events on the stream."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

from services.contract.events import (
    CrisisKind,
    Envelope,
    IncidentReported,
    IncidentReportedData,
    Location,
    OverdoseDetails,
    Reporter,
    SmsReceived,
    SmsReceivedData,
    derived_id,
    new_event,
)
from services.intake_gateway.domain.triage import triage_overdose
from services.runtime.clock import Clock

PRODUCER = "intake_gateway"

Publish = Callable[[Envelope], Awaitable[int]]


@dataclass(frozen=True)
class ReportOverdose:
    location: Location
    reporter: Reporter
    details: OverdoseDetails


class IntakeGateway:
    def __init__(self, publish: Publish, clock: Clock) -> None:
        self.publish = publish
        self.clock = clock

    async def report_overdose(self, command: ReportOverdose) -> IncidentReported:
        """Triage and append the report. Raises if the stream is unreachable: nothing was recorded then."""
        triage = triage_overdose(command.details)
        incident_id = uuid4()
        event = new_event(
            IncidentReported,
            IncidentReportedData(
                incident_id=incident_id,
                short_code=f"{1000 + secrets.randbelow(9000)}",
                kind=CrisisKind.OVERDOSE,
                priority=triage.priority,
                needs=list(triage.needs),
                guidance=list(triage.guidance),
                location=command.location,
                reporter=command.reporter,
                overdose=command.details,
            ),
            event_id=uuid4(),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            incident_id=incident_id,
        )
        await self.publish(event)
        return event  # type: ignore[return-value]

    async def receive_sms(self, message_sid: str, from_number: str, to_number: str, body: str) -> UUID:
        """Append an inbound SMS; keyed by MessageSid so Twilio's retries are stored once."""
        event = new_event(
            SmsReceived,
            SmsReceivedData(message_sid=message_sid, from_number=from_number, to_number=to_number, body=body),
            event_id=derived_id("sms.received", message_sid),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
        )
        await self.publish(event)
        return event.id
