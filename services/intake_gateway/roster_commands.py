"""Roster and on-call schedule commands (the admin API's use cases) -> roster events on the stream.

The gateway holds no roster: it validates each command, appends the event defined in
``services.contract.roster`` and answers 202. The dispatcher folds those events into the roster it routes
with (and owns the read model), so the gateway cannot check that a responder id it is given exists.

Ids. The event id, and the id of a responder, rotation or override the server assigns, come from the request's
``RequestIds``: fresh for a request without an Idempotency-Key (so "available", "off", "available" are three
facts), derived from the key's random seed with one (a retry is the same event, and the entrypoint answers a
retry with the first answer, however late, without appending again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, field_validator, model_validator

from services.contract.events import (
    CalendarImported,
    CalendarImportedData,
    Envelope,
    GeoPoint,
    OverrideAdded,
    OverrideAddedData,
    OverrideRemoved,
    OverrideRemovedData,
    ResponderAvailabilityChanged,
    ResponderAvailabilityChangedData,
    ResponderLocationReported,
    ResponderLocationReportedData,
    ResponderProfile,
    ResponderRegistered,
    ResponderRetired,
    ResponderRetiredData,
    ResponderUpdated,
    Role,
    RotationDefined,
    RotationDefinedData,
    RotationRemoved,
    RotationRemovedData,
    Shift,
    Skill,
    Weekday,
    derived_id,
    new_event,
)
from services.intake_gateway.domain.calendar_feed import CalendarEntry, CalendarError, CalendarReader
from services.intake_gateway.refusals import InvalidInput
from services.runtime.clock import Clock
from services.runtime.input_times import InputDate, InputDatetime
from services.runtime.request_ids import FRESH, RequestIds

PRODUCER = "intake_gateway"
Publish = Callable[[Envelope], Awaitable[int]]

# a responder's phone can report a location a little ahead of our clock; further ahead is a mistake
_FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Appended:
    """What was appended: the event and the id of the thing it is about."""

    event: Envelope
    entity_id: UUID
    shifts: int | None = None


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponderDetails(Command):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    skills: list[Skill] = Field(default_factory=list)
    languages: list[Literal["en", "es"]] = Field(default_factory=lambda: ["en"], min_length=1)
    phone: str = Field(
        min_length=3,
        max_length=32,
        description="any common format; stored as E.164 (numbers without +country use the default region)",
        examples=["+13035550123", "(303) 555-0123"],
    )
    home_base: GeoPoint
    zones: list[str] = Field(default_factory=list)
    supervisor_id: UUID | None = None


class RegisterResponder(ResponderDetails):
    responder_id: UUID | None = Field(default=None, description="omit to have one assigned")


class ReportLocation(Command):
    lat: StrictFloat = Field(ge=-90, le=90)
    lon: StrictFloat = Field(ge=-180, le=180)
    label: str | None = Field(default=None, max_length=200)
    reported_at: InputDatetime | None = Field(default=None, description="when the responder was there; default now")


class ChangeAvailability(Command):
    availability: Literal["available", "off"]
    reason: str | None = Field(default=None, max_length=300)


class DefineRotation(Command):
    rotation_id: UUID | None = Field(default=None, description="omit to have one assigned; reuse to redefine")
    name: str = Field(min_length=1, max_length=100)
    zones: list[str] = Field(min_length=1)
    time_zone: str = Field(description="IANA time zone, e.g. America/Denver", examples=["America/Denver"])
    handoff_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local HH:MM")
    shift: Literal["daily", "weekly"]
    handoff_weekday: Weekday = Weekday.MONDAY
    start_date: InputDate
    participants: list[UUID] = Field(min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str) -> str:
        _require_zone(value)
        return value


class AddOverride(Command):
    override_id: UUID | None = Field(default=None, description="omit to have one assigned")
    responder_id: UUID
    zones: list[str] = Field(min_length=1)
    starts_at: InputDatetime
    ends_at: InputDatetime
    replaces: UUID | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AddOverride:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ImportCalendar(Command):
    calendar_id: UUID | None = Field(
        default=None, description="omit to derive it from the name, so importing the same name again replaces it"
    )
    name: str = Field(min_length=1, max_length=100)
    zones: list[str] = Field(min_length=1)
    ics: str = Field(min_length=1, description="the iCalendar text")
    time_zone: str | None = Field(
        default=None, description="zone for floating times and all-day events (default: the calendar's X-WR-TIMEZONE)"
    )
    responders: dict[str, UUID] = Field(
        default_factory=dict,
        description="who each ATTENDEE (email or phone) or SUMMARY (name) is; ATTENDEE urn:uuid:<id> needs no entry",
    )

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if value is not None:
            _require_zone(value)
        return value


def _require_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America/" is a directory: OSError
        raise ValueError(f"{name!r} is not an IANA time zone") from exc


def normalise_phone(raw: str, region: str) -> str:
    """``raw`` as E.164, read with ``region`` when it has no +country code. Raises ValueError if not a valid
    number for its country (a number that can never receive an SMS must not enter the roster)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class RosterCommands:
    def __init__(
        self,
        publish: Publish,
        clock: Clock,
        *,
        read_calendar: CalendarReader,
        phone_region: str,
        calendar_horizon_days: int,
    ) -> None:
        self.publish = publish
        self.read_calendar = read_calendar
        self.clock = clock
        self.phone_region = phone_region
        self.calendar_horizon = timedelta(days=calendar_horizon_days)

    # -- responders --------------------------------------------------------------------------------------

    async def register_responder(self, command: RegisterResponder, ids: RequestIds = FRESH) -> Appended:
        responder_id = command.responder_id or ids.id_for("responder")
        profile = self._profile(responder_id, command)
        return await self._append(ids, ResponderRegistered, profile, responder_id)

    async def update_responder(
        self, responder_id: UUID, command: ResponderDetails, ids: RequestIds = FRESH
    ) -> Appended:
        """Replace the responder's whole profile (the event carries all of it)."""
        profile = self._profile(responder_id, command)
        return await self._append(ids, ResponderUpdated, profile, responder_id)

    async def retire_responder(self, responder_id: UUID, reason: str, ids: RequestIds = FRESH) -> Appended:
        data = ResponderRetiredData(responder_id=responder_id, reason=reason)
        return await self._append(ids, ResponderRetired, data, responder_id)

    async def report_location(self, responder_id: UUID, command: ReportLocation, ids: RequestIds = FRESH) -> Appended:
        now = self.clock.now()
        reported_at = (command.reported_at or now).astimezone(UTC)
        if reported_at > now + _FUTURE_TOLERANCE:
            raise InvalidInput([("reported_at", "reported_at is in the future")])
        data = ResponderLocationReportedData(
            responder_id=responder_id,
            location=GeoPoint(lat=command.lat, lon=command.lon),
            label=command.label,
            source="api",
            reported_at=reported_at,
        )
        return await self._append(ids, ResponderLocationReported, data, responder_id)

    async def change_availability(
        self, responder_id: UUID, command: ChangeAvailability, ids: RequestIds = FRESH
    ) -> Appended:
        data = ResponderAvailabilityChangedData(
            responder_id=responder_id, availability=command.availability, reason=command.reason
        )
        return await self._append(ids, ResponderAvailabilityChanged, data, responder_id)

    # -- schedules ---------------------------------------------------------------------------------------

    async def define_rotation(self, command: DefineRotation, ids: RequestIds = FRESH) -> Appended:
        rotation_id = command.rotation_id or ids.id_for("rotation")
        data = RotationDefinedData(rotation_id=rotation_id, **command.model_dump(exclude={"rotation_id"}))
        return await self._append(ids, RotationDefined, data, rotation_id)

    async def remove_rotation(self, rotation_id: UUID, ids: RequestIds = FRESH) -> Appended:
        data = RotationRemovedData(rotation_id=rotation_id)
        return await self._append(ids, RotationRemoved, data, rotation_id)

    async def add_override(self, command: AddOverride, ids: RequestIds = FRESH) -> Appended:
        override_id = command.override_id or ids.id_for("override")
        data = OverrideAddedData(
            override_id=override_id,
            responder_id=command.responder_id,
            zones=command.zones,
            starts_at=command.starts_at.astimezone(UTC),
            ends_at=command.ends_at.astimezone(UTC),
            replaces=command.replaces,
        )
        return await self._append(ids, OverrideAdded, data, override_id)

    async def remove_override(self, override_id: UUID, ids: RequestIds = FRESH) -> Appended:
        data = OverrideRemovedData(override_id=override_id)
        return await self._append(ids, OverrideRemoved, data, override_id)

    async def import_calendar(self, command: ImportCalendar, ids: RequestIds = FRESH) -> Appended:
        """Expand the feed over [now, now + horizon) and append it; re-importing a calendar id replaces it."""
        now = self.clock.now()
        try:
            # in a worker thread: a long feed takes a second or more to expand, and reports must not wait for it
            entries = await asyncio.to_thread(
                self.read_calendar,
                command.ics,
                window_start=now,
                window_end=now + self.calendar_horizon,
                default_time_zone=command.time_zone,
            )
        except CalendarError as exc:
            raise InvalidInput([("ics", str(exc))]) from exc
        shifts = self._shifts(entries, command.responders)
        calendar_id = command.calendar_id or derived_id("calendar", command.name.strip().casefold())
        data = CalendarImportedData(calendar_id=calendar_id, name=command.name, zones=command.zones, shifts=shifts)
        return await self._append(ids, CalendarImported, data, calendar_id, shifts=len(shifts))

    # -- helpers -----------------------------------------------------------------------------------------

    def _profile(self, responder_id: UUID, details: ResponderDetails) -> ResponderProfile:
        try:
            phone = normalise_phone(details.phone, self.phone_region)
        except ValueError as exc:
            raise InvalidInput([("phone", str(exc))]) from exc
        fields = details.model_dump(exclude={"phone", "responder_id"})
        return ResponderProfile(responder_id=responder_id, phone=phone, **fields)

    def _shifts(self, entries: list[CalendarEntry], responders: Mapping[str, UUID]) -> list[Shift]:
        """Each occurrence belongs to the responders its ATTENDEEs name; with none, to its SUMMARY's."""
        known = {key: rid for raw, rid in responders.items() if (key := self._identity(raw)) is not None}
        shifts: list[Shift] = []
        unmatched: list[str] = []
        for entry in entries:
            owners = []
            for attendee in entry.attendees:
                if attendee.lower().startswith("urn:uuid:"):
                    try:
                        owners.append(UUID(attendee[len("urn:uuid:") :]))
                    except ValueError as exc:
                        raise InvalidInput([("ics", f"event {entry.uid!r}: {attendee!r} is not a UUID")]) from exc
                elif (key := self._identity(attendee)) in known:
                    owners.append(known[key])
            if not owners and (key := self._identity(entry.summary)) in known:
                owners.append(known[key])
            if not owners:
                unmatched.append(entry.uid)
            for responder_id in dict.fromkeys(owners):
                shifts.append(Shift(responder_id=responder_id, starts_at=entry.starts_at, ends_at=entry.ends_at))
        if unmatched:
            uids = ", ".join(sorted(set(unmatched))[:5])
            message = (
                f"no responder for event(s) {uids}: add their ATTENDEE email/phone or SUMMARY to responders, "
                "or use ATTENDEE urn:uuid:<responder id>"
            )
            raise InvalidInput([("responders", message)])
        return shifts

    def _identity(self, raw: str) -> str | None:
        """One spelling per person: mailto:<lower-case email>, tel:<E.164>, or name:<case-folded name>."""
        value = raw.strip()
        lowered = value.lower()
        if lowered.startswith("urn:uuid:"):
            return None
        if lowered.startswith("mailto:"):
            value, lowered = value[7:], lowered[7:]
        if "@" in value:
            return f"mailto:{lowered}"
        phone_text = value[4:] if lowered.startswith("tel:") else value
        try:
            return f"tel:{normalise_phone(phone_text, self.phone_region)}"
        except ValueError:
            pass
        return f"name:{' '.join(value.casefold().split())}" if value else None

    async def _append(
        self,
        ids: RequestIds,
        event_class: type[Envelope],
        data: BaseModel,
        entity_id: UUID,
        *,
        shifts: int | None = None,
    ) -> Appended:
        event = new_event(
            event_class, data, event_id=ids.id_for(event_class.TYPE), occurred_at=self.clock.now(), producer=PRODUCER
        )
        await self.publish(event)
        return Appended(event, entity_id, shifts)
