"""Use cases of the admin API: roster and on-call schedule commands -> roster events on the stream.

The gateway holds no roster: it validates each command, appends the event defined in
``services.contract.roster`` and answers 202. The dispatcher folds those events into the roster it routes
with (and owns the read model), so the gateway cannot check that a responder id it is given exists.

Event ids. With an ``Idempotency-Key`` header, the event id is derived from (event type, caller, key,
request body) and any id the server assigns (a new responder, rotation or override) from (kind, caller,
key): a retried request is the same event and is stored once by the stream's de-duplication window
(300 s), and a retry after the window repeats the same fact for the same ids, which the roster folds to the
same state. Without a key each request is a new event. Ids are deliberately *not* derived from the
content alone: "available", "off", "available" within five minutes would then make the third look like a
retry of the first and be dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Literal
from uuid import UUID, uuid4
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
from services.intake_gateway.adapters.ics_calendar import CalendarEntry, CalendarError, parse_calendar
from services.runtime.clock import Clock
from services.runtime.input_times import InputDate, InputDatetime

PRODUCER = "intake_gateway"
Publish = Callable[[Envelope], Awaitable[int]]

# a responder's phone can report a location a little ahead of our clock; further ahead is a mistake
_FUTURE_TOLERANCE = timedelta(minutes=5)


class InvalidCommand(ValueError):
    """A command that validated as JSON but not as a roster fact. ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who sent the command and the Idempotency-Key they sent, if any."""

    subject: str
    idempotency_key: str | None = None


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


class RosterAdmin:
    def __init__(self, publish: Publish, clock: Clock, *, phone_region: str, calendar_horizon_days: int) -> None:
        self.publish = publish
        self.clock = clock
        self.phone_region = phone_region
        self.calendar_horizon = timedelta(days=calendar_horizon_days)

    # -- responders --------------------------------------------------------------------------------------

    async def register_responder(self, caller: Caller, command: RegisterResponder) -> Appended:
        responder_id = command.responder_id or self._new_id(caller, "responder")
        profile = self._profile(responder_id, command)
        return await self._append(caller, command, ResponderRegistered, profile, responder_id)

    async def update_responder(self, caller: Caller, responder_id: UUID, command: ResponderDetails) -> Appended:
        """Replace the responder's whole profile (the event carries all of it)."""
        profile = self._profile(responder_id, command)
        return await self._append(caller, command, ResponderUpdated, profile, responder_id)

    async def retire_responder(self, caller: Caller, responder_id: UUID, reason: str) -> Appended:
        data = ResponderRetiredData(responder_id=responder_id, reason=reason)
        return await self._append(caller, data, ResponderRetired, data, responder_id)

    async def report_location(self, caller: Caller, responder_id: UUID, command: ReportLocation) -> Appended:
        now = self.clock.now()
        reported_at = (command.reported_at or now).astimezone(UTC)
        if reported_at > now + _FUTURE_TOLERANCE:
            raise InvalidCommand("body.reported_at", "reported_at is in the future")
        data = ResponderLocationReportedData(
            responder_id=responder_id,
            location=GeoPoint(lat=command.lat, lon=command.lon),
            label=command.label,
            source="api",
            reported_at=reported_at,
        )
        return await self._append(caller, command, ResponderLocationReported, data, responder_id)

    async def change_availability(self, caller: Caller, responder_id: UUID, command: ChangeAvailability) -> Appended:
        data = ResponderAvailabilityChangedData(
            responder_id=responder_id, availability=command.availability, reason=command.reason
        )
        return await self._append(caller, command, ResponderAvailabilityChanged, data, responder_id)

    # -- schedules ---------------------------------------------------------------------------------------

    async def define_rotation(self, caller: Caller, command: DefineRotation) -> Appended:
        rotation_id = command.rotation_id or self._new_id(caller, "rotation")
        data = RotationDefinedData(rotation_id=rotation_id, **command.model_dump(exclude={"rotation_id"}))
        return await self._append(caller, command, RotationDefined, data, rotation_id)

    async def remove_rotation(self, caller: Caller, rotation_id: UUID) -> Appended:
        data = RotationRemovedData(rotation_id=rotation_id)
        return await self._append(caller, data, RotationRemoved, data, rotation_id)

    async def add_override(self, caller: Caller, command: AddOverride) -> Appended:
        override_id = command.override_id or self._new_id(caller, "override")
        data = OverrideAddedData(
            override_id=override_id,
            responder_id=command.responder_id,
            zones=command.zones,
            starts_at=command.starts_at.astimezone(UTC),
            ends_at=command.ends_at.astimezone(UTC),
            replaces=command.replaces,
        )
        return await self._append(caller, command, OverrideAdded, data, override_id)

    async def remove_override(self, caller: Caller, override_id: UUID) -> Appended:
        data = OverrideRemovedData(override_id=override_id)
        return await self._append(caller, data, OverrideRemoved, data, override_id)

    async def import_calendar(self, caller: Caller, command: ImportCalendar) -> Appended:
        """Expand the feed over [now, now + horizon) and append it; re-importing a calendar id replaces it."""
        now = self.clock.now()
        try:
            entries = parse_calendar(
                command.ics,
                window_start=now,
                window_end=now + self.calendar_horizon,
                default_time_zone=command.time_zone,
            )
        except CalendarError as exc:
            raise InvalidCommand("body.ics", str(exc)) from exc
        shifts = self._shifts(entries, command.responders)
        calendar_id = command.calendar_id or derived_id("calendar", command.name.strip().casefold())
        data = CalendarImportedData(calendar_id=calendar_id, name=command.name, zones=command.zones, shifts=shifts)
        return await self._append(caller, command, CalendarImported, data, calendar_id, shifts=len(shifts))

    # -- helpers -----------------------------------------------------------------------------------------

    def _profile(self, responder_id: UUID, details: ResponderDetails) -> ResponderProfile:
        try:
            phone = normalise_phone(details.phone, self.phone_region)
        except ValueError as exc:
            raise InvalidCommand("body.phone", str(exc)) from exc
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
                        raise InvalidCommand("body.ics", f"event {entry.uid!r}: {attendee!r} is not a UUID") from exc
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
            raise InvalidCommand(
                "body.responders",
                f"no responder for event(s) {uids}: add their ATTENDEE email/phone or SUMMARY to responders, "
                "or use ATTENDEE urn:uuid:<responder id>",
            )
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

    def _new_id(self, caller: Caller, kind: str) -> UUID:
        if caller.idempotency_key is None:
            return uuid4()
        return derived_id(kind, caller.subject, caller.idempotency_key)

    async def _append(
        self,
        caller: Caller,
        request: BaseModel,
        event_class: type[Envelope],
        data: BaseModel,
        entity_id: UUID,
        *,
        shifts: int | None = None,
    ) -> Appended:
        if caller.idempotency_key is None:
            event_id = uuid4()
        else:
            body = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
            event_id = derived_id(event_class.TYPE, caller.subject, caller.idempotency_key, entity_id, body)
        event = new_event(event_class, data, event_id=event_id, occurred_at=self.clock.now(), producer=PRODUCER)
        await self.publish(event)
        return Appended(event, entity_id, shifts)
