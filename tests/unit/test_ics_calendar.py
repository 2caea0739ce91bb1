"""The iCalendar parser: recurring shifts keep their local hand-off time across DST, exceptions, all-day, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.intake_gateway.adapters.ics_calendar import parse_calendar
from services.intake_gateway.domain.calendar_feed import CalendarError

# US daylight saving time ends on Sunday 2026-11-01 (Denver: UTC-6 before, UTC-7 after).
WINDOW = {"window_start": datetime(2026, 10, 19, tzinfo=UTC), "window_end": datetime(2026, 11, 30, tzinfo=UTC)}


def calendar(*events: str, header: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{header}{body}END:VCALENDAR\r\n"


WEEKLY_OVERNIGHT = """
UID:weekly@tests
SUMMARY:On call
DTSTART;TZID=America/Denver:20261026T200000
DTEND;TZID=America/Denver:20261027T080000
RRULE:FREQ=WEEKLY;BYDAY=MO
ATTENDEE:urn:uuid:8a1f7c1e-0001-4a6b-9c11-2f0c9d1e0001
"""


def test_a_weekly_shift_keeps_its_local_start_and_handoff_across_a_dst_change() -> None:
    entries = parse_calendar(calendar(WEEKLY_OVERNIGHT), **WINDOW)
    starts = [e.starts_at for e in entries]
    # 20:00 MDT (UTC-6) before the change, 20:00 MST (UTC-7) after it: same local time, UTC moves an hour
    assert starts[:3] == [
        datetime(2026, 10, 27, 2, tzinfo=UTC),
        datetime(2026, 11, 3, 3, tzinfo=UTC),
        datetime(2026, 11, 10, 3, tzinfo=UTC),
    ]
    assert all(e.ends_at - e.starts_at == timedelta(hours=12) for e in entries)
    assert entries[0].attendees == ("urn:uuid:8a1f7c1e-0001-4a6b-9c11-2f0c9d1e0001",)
    assert all(e.starts_at.tzinfo is UTC for e in entries)


def test_an_overnight_shift_over_the_change_night_still_hands_off_at_0800_local() -> None:
    saturday_night = """
UID:sat@tests
DTSTART;TZID=America/Denver:20261031T200000
DTEND;TZID=America/Denver:20261101T080000
"""
    (entry,) = parse_calendar(calendar(saturday_night), **WINDOW)
    assert entry.starts_at == datetime(2026, 11, 1, 2, tzinfo=UTC)  # 20:00 MDT
    assert entry.ends_at == datetime(2026, 11, 1, 15, tzinfo=UTC)  # 08:00 MST: a 13-hour night


def test_exdate_removes_an_occurrence_and_recurrence_id_moves_one() -> None:
    moved = """
UID:weekly@tests
RECURRENCE-ID;TZID=America/Denver:20261116T200000
DTSTART;TZID=America/Denver:20261116T220000
DTEND;TZID=America/Denver:20261117T080000
"""
    with_exdate = WEEKLY_OVERNIGHT.strip() + "\nEXDATE;TZID=America/Denver:20261109T200000"
    entries = parse_calendar(calendar(with_exdate, moved), **WINDOW)
    local_starts = [e.starts_at for e in entries]
    assert datetime(2026, 11, 10, 3, tzinfo=UTC) not in local_starts  # 9 Nov excluded
    assert datetime(2026, 11, 17, 3, tzinfo=UTC) not in local_starts  # 16 Nov moved ...
    assert datetime(2026, 11, 17, 5, tzinfo=UTC) in local_starts  # ... to 22:00 local
    assert len(entries) == 4  # 26 Oct, 2 Nov, 16 Nov (moved), 23 Nov


def test_until_and_count_bound_the_recurrence() -> None:
    until = WEEKLY_OVERNIGHT.replace("BYDAY=MO", "BYDAY=MO;UNTIL=20261103T000000Z")
    assert len(parse_calendar(calendar(until), **WINDOW)) == 1
    count = WEEKLY_OVERNIGHT.replace("BYDAY=MO", "BYDAY=MO;COUNT=2")
    assert len(parse_calendar(calendar(count), **WINDOW)) == 2


def test_an_all_day_event_runs_local_midnight_to_midnight_in_the_calendar_zone() -> None:
    all_day = """
UID:day@tests
SUMMARY:Ana Ruiz
DTSTART;VALUE=DATE:20261101
DTEND;VALUE=DATE:20261102
"""
    (entry,) = parse_calendar(calendar(all_day, header="X-WR-TIMEZONE:America/Denver\r\n"), **WINDOW)
    assert entry.summary == "Ana Ruiz"
    assert entry.starts_at == datetime(2026, 11, 1, 6, tzinfo=UTC)  # midnight MDT
    assert entry.ends_at == datetime(2026, 11, 2, 7, tzinfo=UTC)  # midnight MST: the 25-hour day
    (same,) = parse_calendar(calendar(all_day), **WINDOW, default_time_zone="America/Denver")
    assert same == entry


def test_only_occurrences_overlapping_the_window_are_returned() -> None:
    entries = parse_calendar(
        calendar(WEEKLY_OVERNIGHT),
        window_start=datetime(2026, 11, 3, 10, tzinfo=UTC),  # during the 2 Nov night shift
        window_end=datetime(2026, 11, 11, tzinfo=UTC),
    )
    assert [e.starts_at for e in entries] == [
        datetime(2026, 11, 3, 3, tzinfo=UTC),
        datetime(2026, 11, 10, 3, tzinfo=UTC),
    ]


def test_cancelled_events_are_skipped() -> None:
    cancelled = WEEKLY_OVERNIGHT.strip() + "\nSTATUS:CANCELLED"
    assert parse_calendar(calendar(cancelled), **WINDOW) == []


HOURLY = "UID:x@tests\nDTSTART:20261101T080000Z\nDURATION:PT1H"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not a calendar", "not an iCalendar file"),
        (calendar("UID:x@tests\nDTEND:20261101T080000Z"), "has no DTSTART"),
        (calendar("UID:x@tests\nDTSTART;VALUE=DATE:20261101"), "all-day; give the calendar's time zone"),
        (calendar("UID:x@tests\nDTSTART:20261101T080000\nDURATION:PT8H"), "floating"),
        (calendar("UID:x@tests\nDTSTART;TZID=Mars/Olympus:20261101T080000\nDURATION:PT8H"), "unknown time zone"),
        (calendar("UID:x@tests\nDTSTART:20261101T080000Z\nDTEND:20261101T070000Z"), "ends before it starts"),
        (calendar("UID:x@tests\nDTSTART:20261101T080000Z"), "neither DTEND nor DURATION"),
        (calendar(f"{HOURLY}\nRRULE:FREQ=DAILY;INTERVAL=0"), "INTERVAL must be a positive"),  # loops forever
        (calendar(f"{HOURLY}\nRRULE:FREQ=SECONDLY"), "FREQ must be one of"),  # millions of steps
        (calendar(f"{HOURLY}\nRRULE:FREQ=WEEKLY;BYDAY=XX"), "cannot be read"),
        (calendar("UID:x@tests\nDTSTART:18000101T000000Z\nDURATION:PT1H\nRRULE:FREQ=HOURLY"), "recurs too often"),
    ],
)
def test_a_bad_file_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar(text, **WINDOW)


@pytest.mark.parametrize("zone", ["Nowhere/Land", "America/", "../etc"])
def test_an_unknown_default_time_zone_is_a_clear_error(zone: str) -> None:
    with pytest.raises(CalendarError, match="not an IANA time zone"):
        parse_calendar(calendar(WEEKLY_OVERNIGHT), **WINDOW, default_time_zone=zone)
