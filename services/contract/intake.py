"""Events of crisis intake: reports and what the reporter or staff add to them afterwards."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from services.contract.envelope import E164, CrisisKind, Priority, ShortCode, Strict, event_type


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    access_notes: str | None = Field(default=None, max_length=500)


class OverdoseDetails(Strict):
    responsive: bool | None = None
    breathing: bool | None = None
    naloxone_doses_given: int = Field(default=0, ge=0, le=20)
    ems_called: bool = False
    substance: str | None = Field(default=None, max_length=100)


class Reporter(Strict):
    channel: Literal["staff", "hotline", "web"]
    relation: str | None = Field(default=None, max_length=100)
    callback: E164 | None = None


class IncidentReportedData(Strict):
    incident_id: UUID
    short_code: ShortCode
    kind: CrisisKind
    priority: Priority
    needs: list[str] = Field(description="what triage says the response needs, e.g. ems_now, naloxone_carrier")
    guidance: list[str] = Field(description="immediate instructions given to the reporter")
    location: Location
    reporter: Reporter
    overdose: OverdoseDetails | None = None


class IncidentReported(event_type("incident.reported", IncidentReportedData)):
    pass


EVENTS = (IncidentReported,)
UPCASTERS: dict = {}
