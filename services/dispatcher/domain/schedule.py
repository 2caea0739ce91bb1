"""On-call schedules: who is on call at time T for zone Z.

Rotations hand off at a local wall-clock time in a named time zone, so an 08:00 hand-off stays at 08:00
local across a daylight-saving change (the shift that spans the change is an hour shorter or longer).
Overrides put someone on call for a window, optionally in place of someone else. Imported calendars
contribute concrete shifts. All of it is plain data folded from roster events; the query is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

SCHEDULE_NAMESPACE = UUID("7e3c2a51-9d44-4a0e-8f61-0b8f5d2c4a17")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Rotation:
    rotation_id: UUID
    zones: frozenset[str]
    time_zone: str
    handoff: time
    period_days: int  # 1 daily, 7 weekly
    first_handoff: date  # local date of the first hand-off; participants[0] is on call from then
    participants: tuple[UUID, ...]

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Rotation:
        start = date.fromisoformat(spec["start_date"])
        period = 1 if spec["shift"] == "daily" else 7
        if period == 7:  # weekly rotations hand off on their weekday: the first one on or after start_date
            start += timedelta(days=(WEEKDAYS.index(spec["handoff_weekday"]) - start.weekday()) % 7)
        return cls(
            rotation_id=UUID(str(spec["rotation_id"])),
            zones=frozenset(spec["zones"]),
            time_zone=spec["time_zone"],
            handoff=time.fromisoformat(spec["handoff_time"]),
            period_days=period,
            first_handoff=start,
            participants=tuple(UUID(str(p)) for p in spec["participants"]),
        )

    def handoff_at(self, local_date: date) -> datetime:
        """The instant of the hand-off on ``local_date``. In a spring-forward gap zoneinfo moves it on."""
        return datetime.combine(local_date, self.handoff, tzinfo=ZoneInfo(self.time_zone)).astimezone(UTC)

    def on_call_at(self, at: datetime) -> UUID | None:
        if at < self.handoff_at(self.first_handoff):
            return None
        local = at.astimezone(ZoneInfo(self.time_zone))
        turns = (local.date() - self.first_handoff).days // self.period_days
        if self.handoff_at(self.first_handoff + timedelta(days=turns * self.period_days)) > at:
            turns -= 1  # today's hand-off has not happened yet
        return self.participants[turns % len(self.participants)]


@dataclass(frozen=True)
class Window:
    """A responder on call for some zones from ``starts_at`` (inclusive) to ``ends_at`` (exclusive)."""

    responder_id: UUID
    zones: frozenset[str]
    starts_at: datetime
    ends_at: datetime
    replaces: UUID | None = None

    def covers(self, at: datetime, zone: str | None) -> bool:
        return self.starts_at <= at < self.ends_at and (zone is None or zone in self.zones)


def on_call(
    rotations: Iterable[Rotation],
    shifts: Iterable[Window],
    overrides: Iterable[Window],
    at: datetime,
    zone: str | None,
) -> frozenset[UUID]:
    """Everyone on call at ``at`` for ``zone`` (``None``: for any zone, e.g. a point outside every zone)."""
    who = {
        responder
        for rotation in rotations
        if zone is None or zone in rotation.zones
        if (responder := rotation.on_call_at(at)) is not None
    }
    who |= {shift.responder_id for shift in shifts if shift.covers(at, zone)}
    active = [o for o in overrides if o.covers(at, zone)]
    who -= {o.replaces for o in active if o.replaces is not None}
    who |= {o.responder_id for o in active}
    return frozenset(who)


def _window(spec: Mapping[str, Any], zones: Iterable[str]) -> Window:
    return Window(
        responder_id=UUID(str(spec["responder_id"])),
        zones=frozenset(zones),
        starts_at=datetime.fromisoformat(spec["starts_at"]),
        ends_at=datetime.fromisoformat(spec["ends_at"]),
        replaces=UUID(str(spec["replaces"])) if spec.get("replaces") else None,
    )


class OnCallSchedule(Aggregate):
    """The organisation's rotations, overrides and imported calendars (specs as JSON-ready dicts)."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(SCHEDULE_NAMESPACE, "on-call-schedule")

    @event("Started")
    def __init__(self) -> None:
        self.rotation_specs: dict[str, dict[str, Any]] = {}
        self.override_specs: dict[str, dict[str, Any]] = {}
        self.calendar_specs: dict[str, dict[str, Any]] = {}

    @event("RotationDefined")
    def define_rotation(self, spec: dict[str, Any]) -> None:
        self.rotation_specs[str(spec["rotation_id"])] = spec

    @event("RotationRemoved")
    def remove_rotation(self, rotation_id: str) -> None:
        self.rotation_specs.pop(rotation_id, None)

    @event("OverrideAdded")
    def add_override(self, spec: dict[str, Any]) -> None:
        self.override_specs[str(spec["override_id"])] = spec

    @event("OverrideRemoved")
    def remove_override(self, override_id: str) -> None:
        self.override_specs.pop(override_id, None)

    @event("CalendarImported")
    def import_calendar(self, spec: dict[str, Any]) -> None:
        """A re-import of the same calendar replaces its shifts."""
        self.calendar_specs[str(spec["calendar_id"])] = spec

    def rotations(self) -> list[Rotation]:
        return [Rotation.from_spec(s) for s in self.rotation_specs.values()]

    def shifts(self) -> list[Window]:
        return [_window(shift, c["zones"]) for c in self.calendar_specs.values() for shift in c["shifts"]]

    def overrides(self) -> list[Window]:
        return [_window(o, o["zones"]) for o in self.override_specs.values()]
