"""The bodies of the crisis intake routes: reports, updates, and what each answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from services.contract.events import (
    CrisisKind,
    DoseResponse,
    Envelope,
    GivenBy,
    Location,
    NaloxoneRoute,
    OverdoseDetails,
    Priority,
    Reporter,
    SelfHarmRiskDetails,
    WithdrawalDetails,
)
from services.intake_gateway.incident_reads import IncidentState
from services.intake_gateway.locator import LocationGiven
from services.intake_gateway.refusals import IncidentStatus, InvalidInput
from services.runtime.input_times import InputDatetime


class LocationIn(BaseModel):
    """Coordinates (lat and lon), or a street address, or a named place; coordinates win when given."""

    model_config = ConfigDict(extra="forbid")
    # JSON numbers only: true or "39.7" is refused, not read as 1.0 or 39.7
    lat: StrictFloat | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: StrictFloat | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=300, examples=["1701 Wynkoop St"])
    place: str | None = Field(default=None, max_length=200, examples=["Union Station"])
    access_notes: str | None = Field(default=None, max_length=500)

    def given(self) -> LocationGiven:
        return LocationGiven(self.lat, self.lon, self.address, self.place, self.access_notes)


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: LocationIn
    reporter: Reporter


class OverdoseReport(_Report):
    kind: Literal["overdose"]
    details: OverdoseDetails = OverdoseDetails()


class WithdrawalReport(_Report):
    kind: Literal["withdrawal"]
    details: WithdrawalDetails


class SelfHarmRiskReport(_Report):
    kind: Literal["self_harm_risk"]
    details: SelfHarmRiskDetails


IncidentReport = Annotated[OverdoseReport | WithdrawalReport | SelfHarmRiskReport, Field(discriminator="kind")]


TIMELINE_URL = (
    "the incident's timeline on the projections service (GET, bearer token of a director or a paged responder; "
    "CRISIS_WORKSPACE_PUBLIC_URL)"
)


class PossibleDuplicateOut(BaseModel):
    incident_id: UUID
    short_code: str
    distance_m: float
    minutes_before: float


class IncidentAccepted(BaseModel):
    incident_id: UUID
    short_code: str
    kind: CrisisKind
    priority: Priority
    needs: list[str]
    guidance: list[str] = Field(description="what the reporter must do now, most urgent first")
    risk_level: str | None = Field(description="C-SSRS risk, withdrawal band or complicated; None if not scored")
    location: Location = Field(description="where responders go: as given, or as geocoded")
    zone: str | None
    outside_service_area: bool = Field(description="in no service zone: the supervisor decides who goes")
    possible_duplicates: list[PossibleDuplicateOut] = Field(
        description="reports of the same kind close by and shortly before; linked, never merged"
    )
    timeline_url: str = Field(description=TIMELINE_URL)


class IncidentStateOut(BaseModel):
    """An incident as the gateway knows it; its full record is on the projections service (``timeline_url``)."""

    incident_id: UUID
    kind: CrisisKind
    status: IncidentStatus
    reported_at: datetime
    closed_at: datetime | None = Field(description="when it was cancelled or completed; None while open")
    responders_paged: int = Field(description="how many responders have been paged for it so far")
    timeline_url: str = Field(description=TIMELINE_URL)

    @classmethod
    def of(cls, state: IncidentState, timeline_url: str) -> IncidentStateOut:
        return cls(
            incident_id=state.incident_id,
            kind=CrisisKind(state.kind),
            status=state.status,
            reported_at=state.reported_at,
            closed_at=state.closed_at,
            responders_paged=len(state.relations.paged),
            timeline_url=timeline_url,
        )


class NaloxoneDoseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    given_at: InputDatetime | None = Field(default=None, description="default: now")
    product: str = Field(min_length=1, max_length=100, examples=["naloxone 4 mg nasal spray"])
    dose_mg: StrictFloat | None = Field(default=None, gt=0, le=20, allow_inf_nan=False)
    route: NaloxoneRoute
    given_by_role: GivenBy | None = None
    response: DoseResponse | None = Field(default=None, description="improved, unchanged or worse; omit if unknown")

    def arguments(self) -> dict[str, Any]:
        """The use case's arguments (``IncidentIntake.record_naloxone``); InvalidInput for a time out of range."""
        return self.model_dump(exclude={"given_at"}) | {"given_at": utc(self.given_at, "given_at")}


class EmsArrivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arrived_at: InputDatetime | None = Field(default=None, description="default: now")
    agency: str | None = Field(default=None, max_length=100)

    def arguments(self) -> dict[str, Any]:
        return {"arrived_at": utc(self.arrived_at, "arrived_at"), "agency": self.agency}


class RelocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: LocationIn
    reason: str | None = Field(default=None, max_length=300)

    def arguments(self) -> dict[str, Any]:
        return {"location": self.location.given(), "reason": self.reason}


class CancellationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=300, examples=["false alarm: the person was asleep"])

    def arguments(self) -> dict[str, Any]:
        return {"reason": self.reason}


UpdateBody = NaloxoneDoseIn | EmsArrivalIn | RelocationIn | CancellationIn


class UpdateRecorded(BaseModel):
    incident_id: UUID
    event_type: str
    event_id: UUID
    occurred_at: datetime

    @classmethod
    def of(cls, event: Envelope) -> UpdateRecorded:
        """The answer to an update that appended ``event``."""
        return cls(
            incident_id=event.incident_id, event_type=event.type, event_id=event.id, occurred_at=event.occurred_at
        )


class RelocationRecorded(UpdateRecorded):
    location: Location
    zone: str | None
    outside_service_area: bool

    @classmethod
    def of(cls, event: Envelope) -> RelocationRecorded:
        placed = event.data
        recorded = UpdateRecorded.of(event).model_dump()
        return cls(
            **recorded, location=placed.location, zone=placed.zone, outside_service_area=placed.outside_service_area
        )


def utc(value: datetime | None, name: str) -> datetime | None:
    """``value`` in UTC; InvalidInput (422 naming ``name``) when it cannot be converted."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput([(name, "is out of range")]) from None
