"""iCalendar (.ics) on-call feeds -> concrete UTC shifts: ``icalendar`` reads, ``recurring-ical-events`` expands.

What is read from each VEVENT: DTSTART, DTEND or DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID (a moved
or cancelled occurrence, also with RANGE=THISANDFUTURE), STATUS (CANCELLED occurrences are skipped), SUMMARY
and ATTENDEE. Who the shift belongs to is decided by the caller from ``attendees`` and ``summary``; this module
only reads times.

The library expands; this module holds what the library does not promise, checked on every event *before*
anything is expanded, because the file is uploaded by a person and one line of it can ask for millions of steps:
- Rules finer than hourly are refused, and so is an INTERVAL that is not a positive whole number (it would
  loop forever); an event whose rules take more than ``MAX_STEPS`` steps from DTSTART to the window's end is
  refused too, and a calendar with more than ``MAX_SHIFTS`` shifts in the window.
- A time with a TZID is local time in that IANA zone. Recurrences are expanded in local wall-clock time,
  so a weekly 08:00 shift stays at 08:00 across a daylight-saving change (its UTC time moves by an hour).
- A shift's end keeps its local wall-clock time too: an overnight 20:00-08:00 shift over the night the
  clocks change lasts 11 or 13 hours and still hands off at 08:00. (RFC 5545 would keep the exact
  duration of DTEND - DTSTART, which would open a one-hour gap or overlap at the next hand-off.)
- An UNTIL written as a date or a floating time (RFC 5545 wants UTC when DTSTART has a zone) is read in
  DTSTART's zone, a date as the whole of that local day, and handed to the library in UTC, so no shift of
  the last day is lost.
- Floating times (no TZID, no Z) and all-day dates are read in ``default_time_zone`` (else the calendar's
  X-WR-TIMEZONE); without either they are an error rather than a guess. An all-day event runs from local
  midnight to local midnight.
- Only occurrences overlapping [window_start, window_end) are returned, so an endless RRULE is finite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from icalendar import Calendar, Event
from icalendar.prop import vRecur
from recurring_ical_events import CalendarQuery

from services.intake_gateway.domain.calendar_feed import CalendarEntry, CalendarError

MAX_SHIFTS = 5000  # one calendar, one horizon: more than this is a feed mistake, not a roster
# occurrences generated per rule, counting those before the window: bounds the work an uploaded file can cause
MAX_STEPS = 100_000
# shifts are hours long; finer rules are mistakes, and an RRULE with FREQ=SECONDLY would be millions of steps
_FREQUENCIES = {"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
# floating and all-day times are only placed in a zone here, after expansion: ask the library for a day more
_ZONE_MARGIN = timedelta(days=1)


def parse_calendar(
    text: str, *, window_start: datetime, window_end: datetime, default_time_zone: str | None = None
) -> list[CalendarEntry]:
    """Every occurrence in ``text`` overlapping the window, sorted by start. Raises CalendarError."""
    try:
        calendar = Calendar.from_ical(text)
    except Exception as exc:  # noqa: BLE001 - uploaded text: whatever the parser chokes on is a bad file
        raise CalendarError(f"not an iCalendar file: {exc}") from exc
    if getattr(calendar, "name", None) != "VCALENDAR":
        raise CalendarError("not an iCalendar file: it must start with BEGIN:VCALENDAR")
    zone_name = default_time_zone or str(calendar.get("X-WR-TIMEZONE") or "") or None
    fallback = _zone(zone_name, "the calendar's time zone") if zone_name else None

    longest = timedelta(0)
    for event in calendar.walk("VEVENT"):
        longest = max(longest, _guarded(_within_limits, event, fallback, window_end))
    try:
        # CalendarQuery, not recurring_ical_events.of: "of" would move UTC times into X-WR-TIMEZONE
        occurrences = CalendarQuery(calendar).between(window_start - longest - _ZONE_MARGIN, window_end + _ZONE_MARGIN)
    except Exception as exc:  # noqa: BLE001 - uploaded text: a combination the library cannot expand
        raise CalendarError(f"the calendar cannot be expanded: {type(exc).__name__}: {exc}") from exc

    entries: list[CalendarEntry] = []
    for occurrence in occurrences:
        if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
            continue  # the whole event, or one occurrence cancelled through its RECURRENCE-ID
        starts_at, ends_at = _guarded(_utc_span, occurrence, fallback)
        if ends_at <= window_start or starts_at >= window_end:
            continue
        entries.append(
            CalendarEntry(
                uid=_uid(occurrence),
                summary=str(occurrence.get("SUMMARY", "")).strip(),
                attendees=tuple(str(a).strip() for a in _as_list(occurrence.get("ATTENDEE"))),
                starts_at=starts_at,
                ends_at=ends_at,
            )
        )
        if len(entries) > MAX_SHIFTS:
            raise CalendarError(f"more than {MAX_SHIFTS} shifts in the horizon; split the calendar")
    return sorted(entries, key=lambda e: (e.starts_at, e.uid))


def _within_limits(event: Event, fallback: tzinfo | None, window_end: datetime) -> timedelta:
    """Check one VEVENT against the limits above; returns its wall-clock length. Rewrites a date or floating
    UNTIL in UTC (see the module's docstring) so that the library reads it as this module does."""
    if event.get("DTSTART") is None:
        raise CalendarError(f"event {_uid(event)!r} has no DTSTART")
    start = _local(event, "DTSTART", fallback)
    if event.get("RECURRENCE-ID") is not None:
        _local(event, "RECURRENCE-ID", fallback)
    wall_length = _wall_length(event, start, fallback)
    if wall_length <= timedelta(0):
        raise CalendarError(f"event {_uid(event)!r} ends before it starts")
    floating = not isinstance(event.decoded("DTSTART"), datetime) or event.decoded("DTSTART").tzinfo is None
    for recur in _as_list(event.get("RRULE")):
        until = _until(recur, start)
        if until is not None:  # handed to the library as read here: UTC, or local like a floating DTSTART
            recur["UNTIL"] = [until.replace(tzinfo=None) if floating else until.astimezone(UTC)]
        steps = takewhile(lambda when: when < window_end, _rrule(event, recur, start, until))
        if sum(1 for _ in islice(steps, MAX_STEPS + 1)) > MAX_STEPS:
            raise CalendarError(f"event {_uid(event)!r} recurs too often to expand")
    return wall_length


def _utc_span(occurrence: Event, fallback: tzinfo | None) -> tuple[datetime, datetime]:
    """An expanded occurrence's start and its wall-clock end, in UTC."""
    start = _local(occurrence, "DTSTART", fallback)
    local_end = _wall(start.replace(tzinfo=None) + _wall_length(occurrence, start, fallback), start.tzinfo)
    return start.astimezone(UTC), local_end.astimezone(UTC)


def _guarded(step, event: Event, *args):  # noqa: ANN001, ANN202 - a thin wrapper over the two readers above
    """Run ``step`` on one event; anything the libraries raise on malformed input becomes a CalendarError."""
    try:
        return step(event, *args)
    except CalendarError:
        raise
    except Exception as exc:  # noqa: BLE001 - uploaded text: a property icalendar/dateutil cannot read
        raise CalendarError(f"event {_uid(event)!r} cannot be read: {type(exc).__name__}: {exc}") from exc


def _rrule(event: Event, recur: vRecur, start: datetime, until: datetime | None) -> rrule:
    """The event's RRULE from ``start`` to ``until``; refused when finer than hourly or with a bad INTERVAL."""
    parts = dict(recur)
    frequency = str((parts.get("FREQ") or [""])[0]).upper()
    if frequency not in _FREQUENCIES:
        raise CalendarError(f"event {_uid(event)!r}: RRULE FREQ must be one of {', '.join(sorted(_FREQUENCIES))}")
    interval = parts.get("INTERVAL") or [1]
    if not isinstance(interval[0], int) or interval[0] < 1:
        raise CalendarError(f"event {_uid(event)!r}: RRULE INTERVAL must be a positive whole number")
    parts.pop("UNTIL", None)
    try:
        rule = rrulestr(vRecur(parts).to_ical().decode(), dtstart=start)
    except (ValueError, TypeError) as exc:
        raise CalendarError(f"event {_uid(event)!r} has an RRULE that cannot be read: {exc}") from exc
    return rule if until is None else rule.replace(until=until)


def _until(recur: vRecur, start: datetime) -> datetime | None:
    """The rule's UNTIL, read in ``start``'s zone when it has none (a date: the whole of that local day)."""
    until = recur.get("UNTIL")
    if not until:
        return None
    value = until[0] if isinstance(until, list) else until
    if isinstance(value, datetime):
        return value if value.tzinfo else _wall(value, start.tzinfo)
    return _wall(datetime.combine(value, time.max), start.tzinfo)


def _local(event: Event, name: str, fallback: tzinfo | None) -> datetime:
    """The property as an aware local datetime; dates become local midnight."""
    prop = event[name]
    value = event.decoded(name)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value
        if "TZID" in prop.params:
            raise CalendarError(f"event {_uid(event)!r}: unknown time zone {prop.params['TZID']!r} in {name}")
        if fallback is None:
            raise CalendarError(f"event {_uid(event)!r} has a floating {name}; give the calendar's time zone")
        return _wall(value, fallback)
    if isinstance(value, date):
        if fallback is None:
            raise CalendarError(f"event {_uid(event)!r} is all-day; give the calendar's time zone")
        return _wall(datetime.combine(value, time()), fallback)
    raise CalendarError(f"event {_uid(event)!r}: {name} is not a date or date-time")


def _wall_length(event: Event, start: datetime, fallback: tzinfo | None) -> timedelta:
    """DTEND - DTSTART in local wall-clock time, or DURATION, or one day for an all-day event."""
    if event.get("DTEND") is not None:
        end = _local(event, "DTEND", fallback).astimezone(start.tzinfo)
        return end.replace(tzinfo=None) - start.replace(tzinfo=None)
    if event.get("DURATION") is not None:
        duration = event.decoded("DURATION")
        if not isinstance(duration, timedelta):
            raise CalendarError(f"event {_uid(event)!r} has an unreadable DURATION")
        return duration
    if not isinstance(event.decoded("DTSTART"), datetime):
        return timedelta(days=1)
    raise CalendarError(f"event {_uid(event)!r} has neither DTEND nor DURATION")


def _wall(naive: datetime, zone: tzinfo | None) -> datetime:
    """Local wall-clock time in ``zone`` (a time skipped by a DST change lands after it, as zoneinfo does)."""
    if zone is None:
        raise CalendarError("a floating time needs the calendar's time zone")
    return naive.replace(tzinfo=zone)


def _zone(name: str, what: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America/" is a directory: OSError
        raise CalendarError(f"{what} {name!r} is not an IANA time zone") from exc


def _uid(event: Event) -> str:
    return str(event.get("UID", "(no UID)"))


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
