"""Events of crisis intake: reports and what the reporter or staff add to them afterwards.

``incident.reported`` v2 (v1 is upcast): besides the overdose details it can carry withdrawal details
(CIWA-Ar or COWS) or a C-SSRS screener (self_harm_risk), what triage concluded (``assessment``), how the
location was resolved, the service zone (or ``outside_service_area``), and the reports it may duplicate.
The dispatcher relies on ``kind``, ``priority``, ``needs``, ``location.lat/lon/address`` and ``short_code``;
their meaning is the same in both versions.

Updates after the report are their own events: ``incident.naloxone_administered``, ``incident.ems_arrived``,
``incident.relocated`` and ``incident.cancelled`` (a false alarm; it closes the incident).

Value ranges live here (a CIWA-Ar total is 0-67 whatever else was said); rules that relate answers to each
other (a COWS score for an alcohol withdrawal) are intake rules in the gateway's domain, so an old event
is never refused on replay because a rule changed.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field, StrictBool, StrictInt

from services.contract.clinical_record import DoseResponse, NaloxoneRoute
from services.contract.envelope import E164, CrisisKind, Priority, ShortCode, Strict, UtcDatetime, event_type

LocationSource = Literal["coordinates", "address", "place"]


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    access_notes: str | None = Field(default=None, max_length=500)
    place: str | None = Field(default=None, max_length=200, description="named place, e.g. 'Union Station'")
    resolved_from: LocationSource | None = Field(
        default=None,
        description="what the reporter gave: coordinates, or an address / named place the gateway geocoded "
        "(None on v1 reports, which always had coordinates)",
    )


# Answers and scores are strict (StrictBool, StrictInt): a report's "yes", 1.0 or "12" is refused, not guessed
# at; events on the stream carry JSON booleans and integers, which parse as before.


class OverdoseDetails(Strict):
    responsive: StrictBool | None = Field(default=None, description="responds to voice or a sternal rub")
    breathing: StrictBool | None = None
    naloxone_doses_given: StrictInt = Field(default=0, ge=0, le=20, description="doses given before this report")
    ems_called: StrictBool = Field(default=False, description="911 / EMS already called")
    substance: str | None = Field(default=None, max_length=100)


WithdrawalSubstance = Literal["alcohol", "opioid", "other"]


class WithdrawalDetails(Strict):
    """Withdrawal: CIWA-Ar scores alcohol withdrawal, COWS opioid withdrawal; give at most one of them."""

    substance: WithdrawalSubstance
    ciwa_ar_score: StrictInt | None = Field(default=None, ge=0, le=67, description="CIWA-Ar total, 0-67 (alcohol)")
    cows_score: StrictInt | None = Field(default=None, ge=0, le=48, description="COWS total, 0-48 (opioids)")
    seizure: StrictBool | None = None
    delirium: StrictBool | None = None
    hallucinations: StrictBool | None = Field(default=None, description="new hallucinations")


class SelfHarmRiskDetails(Strict):
    """C-SSRS screener answers (past month unless stated). Q3-Q5 are asked only after a yes to Q2."""

    q1: StrictBool = Field(description="Q1 wished to be dead or not wake up (LOINC 93246-7)")
    q2: StrictBool = Field(description="Q2 actual thoughts of killing oneself (LOINC 93247-5)")
    q3: StrictBool | None = Field(default=None, description="Q3 thought about how (method), no intent (93248-3)")
    q4: StrictBool | None = Field(default=None, description="Q4 some intention of acting on the thoughts (93249-1)")
    q5: StrictBool | None = Field(default=None, description="Q5 worked out the details / intends a plan (93250-9)")
    q6_ever: StrictBool = Field(
        description="Q6 ever done, started or prepared to do anything to end one's life (93267-3)"
    )
    q6_past_3_months: StrictBool | None = Field(
        default=None, description="Q6 within the past 3 months (93269-9); asked after a yes to Q6 ever"
    )


class Assessment(Strict):
    """What triage concluded from the details, in words a director reads on the timeline."""

    risk_level: str | None = Field(
        default=None,
        max_length=32,
        description="self_harm_risk: low / moderate / high (C-SSRS); withdrawal: complicated, or the "
        "CIWA-Ar / COWS band; None when not scored (every overdose is P1)",
    )
    reasons: list[str] = Field(default_factory=list, description="the rules that set priority and needs")


class Reporter(Strict):
    channel: Literal["staff", "hotline", "web"]
    relation: str | None = Field(default=None, max_length=100)
    callback: E164 | None = None
    language: Literal["en", "es"] | None = Field(
        default=None, description="the caller's language, for the updates texted to the callback (None: English)"
    )


class IncidentReportedData(Strict):
    incident_id: UUID
    short_code: ShortCode
    kind: CrisisKind
    priority: Priority
    needs: list[str] = Field(
        description="what triage says the response needs: ems_now, naloxone_carrier, licensed_clinician, "
        "prescriber, nurse_or_prescriber, medical_review, safety_precautions"
    )
    guidance: list[str] = Field(description="immediate instructions given to the reporter")
    location: Location
    reporter: Reporter
    overdose: OverdoseDetails | None = None
    withdrawal: WithdrawalDetails | None = None
    self_harm_risk: SelfHarmRiskDetails | None = None
    assessment: Assessment | None = None
    zone: str | None = Field(default=None, max_length=64, description="the service zone the location is in")
    outside_service_area: bool = Field(
        default=False, description="the location is in no service zone: the supervisor decides who goes"
    )
    possible_duplicate_of: list[UUID] = Field(
        default_factory=list,
        description="earlier reports of the same kind close by and shortly before: shown, never suppressed",
    )
    reported_by: str | None = Field(
        default=None,
        max_length=100,
        description="the subject of the credential that reported it: an intake caller may update what it reported",
    )


class IncidentReported(event_type("incident.reported", IncidentReportedData, version=3)):
    pass


def _incident_reported_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 knew overdoses only and no zones: its reports were never checked against a service zone
    (zone None, not flagged) and never linked to possible duplicates."""
    data = dict(raw.get("data") or {})
    data.setdefault("zone", None)
    data.setdefault("outside_service_area", False)
    data.setdefault("possible_duplicate_of", [])
    return {**raw, "schema_version": 2, "data": data}


def _incident_reported_v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """v2 did not say which credential reported: only directors and the responders paged may update those."""
    data = dict(raw.get("data") or {})
    data.setdefault("reported_by", None)
    return {**raw, "schema_version": 3, "data": data}


# -- updates after the report ---------------------------------------------------------------------------

GivenBy = Literal["bystander", "reporter", "peer_coach", "responder", "clinician", "ems", "other"]


class NaloxoneAdministeredData(Strict):
    """One naloxone dose, as NEMSIS eMedications wants it: when, what, how, by whom, and the response."""

    incident_id: UUID
    given_at: UtcDatetime
    product: str = Field(min_length=1, max_length=100, description="e.g. 'naloxone 4 mg nasal spray'")
    dose_mg: float | None = Field(default=None, gt=0, le=20)
    route: NaloxoneRoute
    given_by_role: GivenBy | None = None
    response: DoseResponse | None = Field(default=None, description="None: not yet known")
    recorded_by: str | None = Field(default=None, max_length=100, description="the credential's subject")


class EmsArrivedData(Strict):
    incident_id: UUID
    arrived_at: UtcDatetime
    agency: str | None = Field(default=None, max_length=100)
    recorded_by: str | None = Field(default=None, max_length=100)


class IncidentRelocatedData(Strict):
    """The person moved (or was found elsewhere): responders go to the new location."""

    incident_id: UUID
    location: Location
    zone: str | None = Field(default=None, max_length=64)
    outside_service_area: bool = False
    reason: str | None = Field(default=None, max_length=300)
    recorded_by: str | None = Field(default=None, max_length=100)


class IncidentCancelledData(Strict):
    """A false alarm (or a report that should not have been made): closes the incident, pages are withdrawn."""

    incident_id: UUID
    reason: str = Field(min_length=1, max_length=300)
    recorded_by: str | None = Field(default=None, max_length=100)


class NaloxoneAdministered(event_type("incident.naloxone_administered", NaloxoneAdministeredData)):
    pass


class EmsArrived(event_type("incident.ems_arrived", EmsArrivedData)):
    pass


class IncidentRelocated(event_type("incident.relocated", IncidentRelocatedData)):
    pass


class IncidentCancelled(event_type("incident.cancelled", IncidentCancelledData)):
    pass


EVENTS = (IncidentReported, NaloxoneAdministered, EmsArrived, IncidentRelocated, IncidentCancelled)
UPCASTERS = {
    ("incident.reported", 1): _incident_reported_v1_to_v2,
    ("incident.reported", 2): _incident_reported_v2_to_v3,
}
