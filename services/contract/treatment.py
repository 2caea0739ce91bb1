"""Events of the treatment-program directory: the programs a person in crisis can be referred to, and the
availability each program reports for itself (issue 17, section 1).

Programs are facilities and services, not people: nothing here is PHI. The gateway's admin API appends
``program.registered``, ``program.updated`` and ``program.retired`` (one at a time, or many from a CSV import);
``program.availability_reported`` comes from the admin API (channel ``api``) or from the program's own signed link
(channel ``link``; producer: projections). The projections fold them into the directory read model, where a report
older than the configured age is shown as unconfirmed, never as open.

The vocabularies follow FindTreatment.gov's service codes (the CSV import maps the codes to these values; the
mapping table is in the README) and ASAM's levels of care (``LevelOfCare``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictFloat, StrictInt, model_validator

from services.contract.envelope import E164, Strict, UtcDatetime, event_type
from services.contract.roster import Weekday


class LevelOfCare(StrEnum):
    """ASAM levels of care, the withdrawal-management levels, and an opioid treatment program (OTP)."""

    EARLY_INTERVENTION = "0.5"
    OUTPATIENT = "1"
    INTENSIVE_OUTPATIENT = "2.1"
    PARTIAL_HOSPITALISATION = "2.5"
    RESIDENTIAL_LOW = "3.1"
    RESIDENTIAL_POPULATION_SPECIFIC = "3.3"
    RESIDENTIAL_HIGH = "3.5"
    INPATIENT_MEDICALLY_MONITORED = "3.7"
    INPATIENT_MEDICALLY_MANAGED = "4"
    WITHDRAWAL_AMBULATORY = "1-WM"
    WITHDRAWAL_AMBULATORY_EXTENDED = "2-WM"
    WITHDRAWAL_CLINICALLY_MANAGED_RESIDENTIAL = "3.2-WM"
    WITHDRAWAL_MEDICALLY_MONITORED_INPATIENT = "3.7-WM"
    WITHDRAWAL_MEDICALLY_MANAGED_INPATIENT = "4-WM"
    OPIOID_TREATMENT_PROGRAM = "OTP"


class Medication(StrEnum):
    """Medications for opioid use disorder a program offers."""

    METHADONE = "methadone"
    BUPRENORPHINE = "buprenorphine"
    NALTREXONE = "naltrexone"


class Payer(StrEnum):
    MEDICAID = "medicaid"
    MEDICARE = "medicare"
    PRIVATE = "private"
    SLIDING_FEE = "sliding_fee"
    FREE = "free"


class Population(StrEnum):
    ADULTS = "adults"
    ADOLESCENTS = "adolescents"
    YOUNG_ADULTS = "young_adults"
    SENIORS = "seniors"
    VETERANS = "veterans"
    WOMEN = "women"
    MEN = "men"
    PREGNANT_POSTPARTUM = "pregnant_postpartum"
    WOMEN_WITH_CHILDREN = "women_with_children"
    CRIMINAL_JUSTICE = "criminal_justice"


LanguageCode = Literal[
    "en", "es", "ar", "fr", "ht", "hmn", "km", "ko", "ru", "so", "tl", "vi", "zh", "ase", "pt", "pl", "de", "am"
]
"""ISO 639 codes the directory knows (``ase``: American Sign Language)."""


class GeoLocation(Strict):
    lat: StrictFloat = Field(ge=-90, le=90)
    lon: StrictFloat = Field(ge=-180, le=180)


class WeeklyWindow(Strict):
    """Intake is open on ``weekday`` from ``opens`` to ``closes`` (local HH:MM in the organisation's time zone;
    ``closes`` 24:00 for the end of the day)."""

    weekday: Weekday
    opens: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    closes: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")

    @model_validator(mode="after")
    def _ordered(self) -> WeeklyWindow:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


class ProgramProfile(Strict):
    """Everything the directory knows about a program (``program.registered`` and ``program.updated`` carry all
    of it: an update replaces the whole profile)."""

    program_id: UUID
    name: str = Field(min_length=1, max_length=150)
    address: str = Field(min_length=1, max_length=300)
    location: GeoLocation
    zone: str | None = Field(default=None, max_length=100, description="the service zone it is in, if any")
    levels_of_care: list[LevelOfCare] = Field(min_length=1)
    medications: list[Medication] = Field(default_factory=list)
    payers: list[Payer] = Field(default_factory=list)
    populations: list[Population] = Field(default_factory=list)
    languages: list[LanguageCode] = Field(default_factory=lambda: ["en"], min_length=1)
    intake_phone: E164
    hours: list[WeeklyWindow] = Field(default_factory=list, description="intake hours; empty: call to ask")
    source: Literal["api", "csv"] = "api"


class ProgramRetiredData(Strict):
    program_id: UUID
    reason: str = Field(min_length=1, max_length=300)


AvailabilityChannel = Literal["api", "link", "sms"]


class ProgramAvailabilityReportedData(Strict):
    """What a program says of itself: beds open now and/or its next intake slot, as of a time.

    ``beds_open`` 0 with no ``next_intake_at`` means full. A report is shown as open only while it is younger than
    the configured age (the projections' staleness rule)."""

    program_id: UUID
    beds_open: StrictInt | None = Field(default=None, ge=0, le=10000)
    next_intake_at: UtcDatetime | None = None
    as_of: UtcDatetime = Field(description="when the program says this was true")
    reported_by: str = Field(min_length=1, max_length=100, description="credential subject, or 'program link'")
    channel: AvailabilityChannel

    @model_validator(mode="after")
    def _something(self) -> ProgramAvailabilityReportedData:
        if self.beds_open is None and self.next_intake_at is None:
            raise ValueError("report beds_open, next_intake_at, or both")
        return self


class ProgramRegistered(event_type("program.registered", ProgramProfile)):
    pass


class ProgramUpdated(event_type("program.updated", ProgramProfile)):
    pass


class ProgramRetired(event_type("program.retired", ProgramRetiredData)):
    pass


class ProgramAvailabilityReported(event_type("program.availability_reported", ProgramAvailabilityReportedData)):
    pass


EVENTS = (ProgramRegistered, ProgramUpdated, ProgramRetired, ProgramAvailabilityReported)
UPCASTERS: dict = {}
