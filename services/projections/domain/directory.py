"""The treatment-program directory as a read model: each program's profile and the latest availability it reported,
and the staleness rule that decides what the directory may say about that availability.

Pure. ``fold_program`` applies one program event to a program's entry; ``availability_now`` is the rule: a report
older than the maximum age is *unconfirmed (as of ...)*, never open, whatever it said, because the first complaint
about every bed registry is listings that are out of date ("you might call 10 places, and the first nine say
'We're full'"). Beds go stale fast (default 24 h); a report of only the next intake slot (outpatient) has its own
age (default 7 days, DOMAIN.md). ``matches`` is the directory's filter (level, medication, payer, population,
language), the first step of section 2's matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

AvailabilityState = Literal["open", "intake_slot", "full", "unconfirmed", "not_reported"]
"""open: beds open, confirmed recently; intake_slot: no bed count but a next intake slot ahead, confirmed recently;
full: no beds and no slot ahead; unconfirmed: the last report is older than the maximum age (never offered as open);
not_reported: the program never reported."""


@dataclass(frozen=True)
class AvailabilityReport:
    beds_open: int | None
    next_intake_at: datetime | None
    as_of: datetime
    channel: str
    reported_by: str


@dataclass(frozen=True)
class ProgramEntry:
    """A program as the directory lists it: its profile (the contract's fields, JSON values) and its last report."""

    program_id: str
    profile: dict[str, Any]
    retired: bool = False
    availability: AvailabilityReport | None = None


@dataclass(frozen=True)
class StalenessRule:
    beds_max_age: timedelta = timedelta(hours=24)
    slots_max_age: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Availability:
    """What the directory says of a program's availability at one moment."""

    state: AvailabilityState
    beds_open: int | None = None
    next_intake_at: datetime | None = None
    as_of: datetime | None = None
    age: timedelta | None = None

    @property
    def offered_as_open(self) -> bool:
        return self.state in ("open", "intake_slot")


def fold_program(entry: ProgramEntry | None, event_type: str, data: dict[str, Any]) -> ProgramEntry | None:
    """``entry`` after one program event (``data``: the event's data as JSON values); None when the event names
    a program the directory does not know and cannot start one (a report or retirement before any profile)."""
    if event_type in ("program.registered", "program.updated"):
        profile = dict(data)
        program_id = str(profile.pop("program_id"))
        if entry is None:
            return ProgramEntry(program_id, profile)
        return replace(entry, profile=profile, retired=False)
    if entry is None:
        return None
    if event_type == "program.retired":
        return replace(entry, retired=True)
    if event_type == "program.availability_reported":
        report = AvailabilityReport(
            beds_open=data.get("beds_open"),
            next_intake_at=_time(data.get("next_intake_at")),
            as_of=_time(data["as_of"]),  # type: ignore[arg-type]
            channel=data["channel"],
            reported_by=data["reported_by"],
        )
        if entry.availability is not None and report.as_of < entry.availability.as_of:
            return entry  # an older report arriving late does not replace a newer one
        return replace(entry, availability=report)
    return entry


def availability_now(report: AvailabilityReport | None, now: datetime, rule: StalenessRule) -> Availability:
    """The staleness rule: what may be said of ``report`` at ``now``. A report older than its maximum age is
    ``unconfirmed`` and carries no bed count or slot to act on, only its ``as_of``."""
    if report is None:
        return Availability("not_reported")
    age = max(now - report.as_of, timedelta(0))
    max_age = rule.beds_max_age if report.beds_open is not None else rule.slots_max_age
    if age > max_age:
        return Availability("unconfirmed", as_of=report.as_of, age=age)
    slot = report.next_intake_at if report.next_intake_at is not None and report.next_intake_at > now else None
    if report.beds_open:
        return Availability("open", report.beds_open, slot, report.as_of, age)
    if slot is not None:
        return Availability("intake_slot", report.beds_open, slot, report.as_of, age)
    return Availability("full", report.beds_open, None, report.as_of, age)


@dataclass(frozen=True)
class DirectoryFilter:
    """Each given value must be among the program's (None: any)."""

    level: str | None = None
    medication: str | None = None
    payer: str | None = None
    population: str | None = None
    language: str | None = None
    include_retired: bool = False
    _fields: tuple[tuple[str, str], ...] = field(
        default=(
            ("level", "levels_of_care"),
            ("medication", "medications"),
            ("payer", "payers"),
            ("population", "populations"),
            ("language", "languages"),
        ),
        repr=False,
    )

    def matches(self, entry: ProgramEntry) -> bool:
        if entry.retired and not self.include_retired:
            return False
        for name, profile_field in self._fields:
            wanted = getattr(self, name)
            if wanted is not None and wanted not in entry.profile.get(profile_field, []):
                return False
        return True

    def said(self) -> str:
        """The filter in words, for the page: 'level 2.1, payer medicaid' or 'all programs'."""
        chosen = [f"{name} {getattr(self, name)}" for name, _ in self._fields if getattr(self, name) is not None]
        return ", ".join(chosen) if chosen else "all programs"


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def availability_words(availability: Availability, now: datetime, zone: tzinfo) -> str:
    """What the directory page says: 'open: 3 beds as of 14:20', 'next intake Dec 5 09:00 (as of 14:20)',
    'full as of 14:20', 'unconfirmed (as of Dec 2 08:00)', 'not reported'. Times in ``zone``; the day is said
    when it is not today there."""

    def at(moment: datetime | None) -> str:
        if moment is None:
            return "?"
        local = moment.astimezone(zone)
        same_day = local.date() == now.astimezone(zone).date()
        return local.strftime("%H:%M") if same_day else f"{local.strftime('%b')} {local.day} {local.strftime('%H:%M')}"

    state = availability.state
    if state == "not_reported":
        return "not reported"
    if state == "unconfirmed":
        return f"unconfirmed (as of {at(availability.as_of)})"
    if state == "full":
        return f"full as of {at(availability.as_of)}"
    if state == "intake_slot":
        return f"next intake {at(availability.next_intake_at)} (as of {at(availability.as_of)})"
    beds = availability.beds_open
    text = f"open: {beds} bed{'s' if beds != 1 else ''} as of {at(availability.as_of)}"
    if availability.next_intake_at is not None:
        text += f", next intake {at(availability.next_intake_at)}"
    return text
