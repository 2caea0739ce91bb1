"""iCalendar (.ics) on-call feeds -> concrete UTC shifts, with the ``icalendar`` package and ``dateutil.rrule``.

What is read from each VEVENT: DTSTART, DTEND or DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID (a moved
or cancelled single occurrence), STATUS (CANCELLED events are skipped), SUMMARY and ATTENDEE. Who the
shift belongs to is decided by the caller from ``attendees`` and ``summary``; this module only reads times.

Time rules:
- A time with a TZID is local time in that IANA zone. Recurrences are expanded in local wall-clock time,
  so a weekly 08:00 shift stays at 08:00 across a daylight-saving change (its UTC time moves by an hour).
- A shift's end keeps its local wall-clock time too: an overnight 20:00-08:00 shift over the night the
  clocks change lasts 11 or 13 hours and still hands off at 08:00. (RFC 5545 would keep the exact
  duration of DTEND - DTSTART, which would open a one-hour gap or overlap at the next hand-off.)
- Floating times (no TZID, no Z) and all-day dates are read in ``default_time_zone`` (else the calendar's
  X-WR-TIMEZONE); without either they are an error rather than a guess. An all-day event runs from local
  midnight to local midnight.
- Only occurrences overlapping [window_start, window_end) are returned, so an endless RRULE is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rruleset, rrulestr
from icalendar import Calendar, Event
from icalendar.prop import vRecur

MAX_SHIFTS = 5000  # one calendar, one horizon: more than this is a feed mistake, not a roster
# occurrences generated per event, counting those before the window: bounds the work an uploaded file can cause
MAX_STEPS = 100_000
# shifts are hours long; finer rules are mistakes, and an RRULE with FREQ=SECONDLY would be millions of steps
_FREQUENCIES = {"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


class CalendarError(ValueError):
    """The feed cannot be turned into shifts; the message says which event and why (no personal data)."""


@dataclass(frozen=True)
class CalendarEntry:
    """One concrete occurrence of a calendar event."""

    uid: str
    summary: str
    attendees: tuple[str, ...]  # cal-addresses as written: mailto:..., tel:..., urn:uuid:...
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC


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

    events = calendar.walk("VEVENT")
    moved: dict[str, set[datetime]] = {}
    for event in events:
        if event.get("RECURRENCE-ID") is not None:
            when = _guarded(_local, event, "RECURRENCE-ID", fallback)
            moved.setdefault(_uid(event), set()).add(when.astimezone(UTC))

    entries: list[CalendarEntry] = []
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue  # a cancelled RECURRENCE-ID still removed its occurrence above
        for starts, ends in _guarded(
            _occurrences, event, fallback, moved.get(_uid(event), set()), window_start, window_end
        ):
            entries.append(
                CalendarEntry(
                    uid=_uid(event),
                    summary=str(event.get("SUMMARY", "")).strip(),
                    attendees=tuple(str(a).strip() for a in _as_list(event.get("ATTENDEE"))),
                    starts_at=starts,
                    ends_at=ends,
                )
            )
            if len(entries) > MAX_SHIFTS:
                raise CalendarError(f"more than {MAX_SHIFTS} shifts in the horizon; split the calendar")
    return sorted(entries, key=lambda e: (e.starts_at, e.uid))


def _occurrences(
    event: Event, fallback: tzinfo | None, moved: set[datetime], window_start: datetime, window_end: datetime
) -> list[tuple[datetime, datetime]]:
    if event.get("DTSTART") is None:
        raise CalendarError(f"event {_uid(event)!r} has no DTSTART")
    start = _local(event, "DTSTART", fallback)
    wall_length = _wall_length(event, start, fallback)
    if wall_length <= timedelta(0):
        raise CalendarError(f"event {_uid(event)!r} ends before it starts")

    if event.get("RECURRENCE-ID") is not None or (event.get("RRULE") is None and event.get("RDATE") is None):
        starts = [start]
    else:
        rules = rruleset()
        rules.rdate(start)  # RFC 5545: DTSTART is always the first occurrence, matching the rule or not
        for recur in _as_list(event.get("RRULE")):
            rules.rrule(_rrule(event, recur, start, fallback))
        for when in _dates(event, "RDATE", start.tzinfo):
            rules.rdate(when)
        for when in _dates(event, "EXDATE", start.tzinfo):
            rules.exdate(when)
        # an occurrence that started before the window may still be running in it
        earliest, starts = window_start - wall_length, []
        for step, when in enumerate(rules):
            if when >= window_end:
                break
            if step >= MAX_STEPS:
                raise CalendarError(f"event {_uid(event)!r} recurs too often to expand")
            if when >= earliest:
                starts.append(when)

    spans = []
    for local_start in starts:
        if local_start.astimezone(UTC) in moved and event.get("RECURRENCE-ID") is None:
            continue  # replaced (or cancelled) by its RECURRENCE-ID event
        local_end = _wall(local_start.replace(tzinfo=None) + wall_length, local_start.tzinfo)
        starts_at, ends_at = local_start.astimezone(UTC), local_end.astimezone(UTC)
        if ends_at > window_start and starts_at < window_end:
            spans.append((starts_at, ends_at))
    return spans


def _guarded(step, event: Event, *args):  # noqa: ANN001, ANN202 - a thin wrapper over the two readers above
    """Run ``step`` on one event; anything the libraries raise on malformed input becomes a CalendarError."""
    try:
        return step(event, *args)
    except CalendarError:
        raise
    except Exception as exc:  # noqa: BLE001 - uploaded text: a property icalendar/dateutil cannot read
        raise CalendarError(f"event {_uid(event)!r} cannot be read: {type(exc).__name__}: {exc}") from exc


def _rrule(event: Event, recur: vRecur, start: datetime, fallback: tzinfo | None):  # noqa: ANN202 - dateutil rrule
    parts = dict(recur)
    frequency = str((parts.get("FREQ") or [""])[0]).upper()
    if frequency not in _FREQUENCIES:
        raise CalendarError(f"event {_uid(event)!r}: RRULE FREQ must be one of {', '.join(sorted(_FREQUENCIES))}")
    interval = parts.get("INTERVAL") or [1]
    if not isinstance(interval[0], int) or interval[0] < 1:
        raise CalendarError(f"event {_uid(event)!r}: RRULE INTERVAL must be a positive whole number")
    until = parts.pop("UNTIL", None)
    try:
        rule = rrulestr(vRecur(parts).to_ical().decode(), dtstart=start)
    except (ValueError, TypeError) as exc:
        raise CalendarError(f"event {_uid(event)!r} has an RRULE that cannot be read: {exc}") from exc
    if until:
        value = until[0] if isinstance(until, list) else until
        if isinstance(value, datetime):
            limit = value if value.tzinfo else _wall(value, start.tzinfo)
        else:  # a date: the whole of that local day
            limit = _wall(datetime.combine(value, time.max), start.tzinfo)
        rule = rule.replace(until=limit)
    return rule


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


def _dates(event: Event, name: str, zone: tzinfo | None) -> list[datetime]:
    found = []
    for group in _as_list(event.get(name)):
        for item in getattr(group, "dts", []):
            value = item.dt
            if isinstance(value, tuple):  # PERIOD: its start is the occurrence
                value = value[0]
            if isinstance(value, datetime):
                found.append(value if value.tzinfo else _wall(value, zone))
            elif isinstance(value, date):
                found.append(_wall(datetime.combine(value, time()), zone))
    return found


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
