"""Treatment-program directory commands (the admin API's use cases) -> program events on the stream.

Like the roster commands, the gateway keeps no directory: it validates each command, appends the event defined
in ``services.contract.treatment`` and answers 202; the projections fold the events into the directory read model.
So ``program.registered`` for an id the directory knows replaces that program's profile (a CSV imported twice
updates its programs in place: their ids come from the ``program_id`` column, or from the name and address).

A CSV import is all or nothing: every row is read and validated before the first event is appended, and a bad
row refuses the whole file (422, with its line number). Ids follow ``RequestIds`` (see roster_commands.py), so a
retried import with the same Idempotency-Key appends the same events, which the stream de-duplicates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from services.contract.events import (
    Envelope,
    GeoLocation,
    LanguageCode,
    LevelOfCare,
    Medication,
    Payer,
    Population,
    ProgramAvailabilityReported,
    ProgramAvailabilityReportedData,
    ProgramProfile,
    ProgramRegistered,
    ProgramRetired,
    ProgramRetiredData,
    ProgramUpdated,
    WeeklyWindow,
    derived_id,
    new_event,
)
from services.intake_gateway.domain.program_csv import CsvRowError, ProgramRow, read_program_csv
from services.intake_gateway.refusals import InvalidInput
from services.intake_gateway.roster_commands import normalise_phone
from services.runtime.clock import Clock
from services.runtime.input_times import InputDatetime
from services.runtime.request_ids import FRESH, RequestIds

PRODUCER = "intake_gateway"
Publish = Callable[[Envelope], Awaitable[int]]

# a program's clock may run a little ahead of ours; a report further in the future is a mistake
_FUTURE_TOLERANCE = timedelta(minutes=5)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramDetails(Command):
    name: str = Field(min_length=1, max_length=150)
    address: str = Field(min_length=1, max_length=300)
    location: GeoLocation
    zone: str | None = Field(default=None, max_length=100)
    levels_of_care: list[LevelOfCare] = Field(min_length=1, examples=[["2.1", "1-WM"]])
    medications: list[Medication] = Field(default_factory=list)
    payers: list[Payer] = Field(default_factory=list)
    populations: list[Population] = Field(default_factory=list)
    languages: list[LanguageCode] = Field(default_factory=lambda: ["en"], min_length=1)
    intake_phone: str = Field(
        min_length=3, max_length=32, description="any common format; stored as E.164", examples=["+13035550142"]
    )
    hours: list[WeeklyWindow] = Field(default_factory=list, description="intake hours, local time")


class RegisterProgram(ProgramDetails):
    program_id: UUID | None = Field(default=None, description="omit to have one assigned")


class ReportAvailability(Command):
    beds_open: StrictInt | None = Field(default=None, ge=0, le=10000, description="beds open now; 0 = full")
    next_intake_at: InputDatetime | None = Field(default=None, description="the next intake slot (with an offset)")
    as_of: InputDatetime | None = Field(default=None, description="when this was true; default now")

    @model_validator(mode="after")
    def _something(self) -> ReportAvailability:
        if self.beds_open is None and self.next_intake_at is None:
            raise ValueError("report beds_open, next_intake_at, or both")
        return self


@dataclass(frozen=True)
class Appended:
    event: Envelope
    entity_id: UUID


@dataclass(frozen=True)
class Imported:
    """What a CSV import appended: one ``program.registered`` per row, and the codes it ignored."""

    events: list[Envelope]
    program_ids: list[UUID]
    ignored_codes: dict[str, list[int]] = field(default_factory=dict)


class ProgramCommands:
    def __init__(self, publish: Publish, clock: Clock, *, phone_region: str) -> None:
        self.publish = publish
        self.clock = clock
        self.phone_region = phone_region

    async def register_program(self, command: RegisterProgram, ids: RequestIds = FRESH) -> Appended:
        program_id = command.program_id or ids.id_for("program")
        profile = self._profile(program_id, command, "api")
        return await self._append(ids, ProgramRegistered, profile, program_id)

    async def update_program(self, program_id: UUID, command: ProgramDetails, ids: RequestIds = FRESH) -> Appended:
        profile = self._profile(program_id, command, "api")
        return await self._append(ids, ProgramUpdated, profile, program_id)

    async def retire_program(self, program_id: UUID, reason: str, ids: RequestIds = FRESH) -> Appended:
        data = ProgramRetiredData(program_id=program_id, reason=reason)
        return await self._append(ids, ProgramRetired, data, program_id)

    async def report_availability(
        self, program_id: UUID, command: ReportAvailability, reported_by: str, ids: RequestIds = FRESH
    ) -> Appended:
        now = self.clock.now()
        as_of = (command.as_of or now).astimezone(UTC)
        if as_of > now + _FUTURE_TOLERANCE:
            raise InvalidInput([("as_of", "as_of is in the future")])
        data = ProgramAvailabilityReportedData(
            program_id=program_id,
            beds_open=command.beds_open,
            next_intake_at=command.next_intake_at.astimezone(UTC) if command.next_intake_at else None,
            as_of=as_of,
            reported_by=reported_by,
            channel="api",
        )
        return await self._append(ids, ProgramAvailabilityReported, data, program_id)

    async def import_csv(self, text: str, ids: RequestIds = FRESH) -> Imported:
        """Read and validate every row, then append one ``program.registered`` per row."""
        try:
            parsed = read_program_csv(text)
        except CsvRowError as exc:
            raise InvalidInput([(f"line {exc.line}", exc.message)], line=exc.line) from exc
        profiles = [self._row_profile(row) for row in parsed.rows]
        seen: dict[UUID, int] = {}
        for row, profile in zip(parsed.rows, profiles, strict=True):
            if (first := seen.setdefault(profile.program_id, row.line)) != row.line:
                message = f"the same program as line {first} (same program_id, or same name and address)"
                raise InvalidInput([(f"line {row.line}", message)], line=row.line)
        now = self.clock.now()
        events = [
            new_event(
                ProgramRegistered,
                profile,
                event_id=ids.id_for(f"program.registered/{index}"),
                occurred_at=now,
                producer=PRODUCER,
            )
            for index, profile in enumerate(profiles)
        ]
        for event in events:
            await self.publish(event)
        return Imported(events, [p.program_id for p in profiles], parsed.ignored_codes)

    # -- helpers -----------------------------------------------------------------------------------------

    def _profile(self, program_id: UUID, details: ProgramDetails, source: str) -> ProgramProfile:
        try:
            phone = normalise_phone(details.intake_phone, self.phone_region)
        except ValueError as exc:
            raise InvalidInput([("intake_phone", str(exc))]) from exc
        fields = details.model_dump(exclude={"intake_phone", "program_id"})
        return ProgramProfile(program_id=program_id, intake_phone=phone, source=source, **fields)

    def _row_profile(self, row: ProgramRow) -> ProgramProfile:
        where = f"line {row.line}"
        try:
            phone = normalise_phone(row.intake_phone, self.phone_region)
        except ValueError as exc:
            raise InvalidInput([(where, f"intake phone: {exc}")], line=row.line) from exc
        program_id = row.program_id or derived_id("program", row.name.casefold(), row.address.casefold())
        try:
            return ProgramProfile.model_validate(
                {
                    "program_id": program_id,
                    "name": row.name,
                    "address": row.address,
                    "location": {"lat": row.lat, "lon": row.lon},
                    "zone": row.zone,
                    "levels_of_care": row.levels_of_care,
                    "medications": row.medications,
                    "payers": row.payers,
                    "populations": row.populations,
                    "languages": row.languages,
                    "intake_phone": phone,
                    "hours": row.hours,
                    "source": "csv",
                }
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][:1])}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise InvalidInput([(where, problems)], line=row.line) from exc

    async def _append(self, ids: RequestIds, event_class: type[Envelope], data: BaseModel, entity_id: UUID) -> Appended:
        event = new_event(
            event_class, data, event_id=ids.id_for(event_class.TYPE), occurred_at=self.clock.now(), producer=PRODUCER
        )
        await self.publish(event)
        return Appended(event, entity_id)
