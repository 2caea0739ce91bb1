"""Who is on call at time T for zone Z: rotations across hand-offs and DST, overrides, imported shifts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from services.dispatcher.domain.schedule import OnCallSchedule, Rotation, Window, on_call

DENVER = ZoneInfo("America/Denver")
A, B, C = uuid4(), uuid4(), uuid4()


def rotation(shift: str = "daily", start: str = "2026-03-02", weekday: str = "monday", zones=("central",)) -> Rotation:
    return Rotation.from_spec(
        {
            "rotation_id": str(uuid4()),
            "zones": list(zones),
            "time_zone": "America/Denver",
            "handoff_time": "08:00",
            "shift": shift,
            "handoff_weekday": weekday,
            "start_date": start,
            "participants": [str(A), str(B), str(C)],
        }
    )


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=DENVER).astimezone(UTC)


def test_daily_rotation_hands_off_at_the_local_time() -> None:
    daily = rotation()
    assert daily.on_call_at(local(2026, 3, 2, 7, 59)) is None  # before the first hand-off
    assert daily.on_call_at(local(2026, 3, 2, 8, 0)) == A
    assert daily.on_call_at(local(2026, 3, 3, 7, 59)) == A
    assert daily.on_call_at(local(2026, 3, 3, 8, 0)) == B
    assert daily.on_call_at(local(2026, 3, 5, 9, 0)) == A  # wraps round


def test_hand_off_stays_at_08_00_local_across_the_spring_dst_change() -> None:
    daily = rotation()  # US DST starts 2026-03-08 at 02:00 local
    before, after = local(2026, 3, 8, 7, 59), local(2026, 3, 8, 8, 0)
    assert daily.on_call_at(before) != daily.on_call_at(after)
    assert after.hour == 14  # 08:00 MDT is 14:00 UTC; the day before it was 15:00 UTC
    assert local(2026, 3, 7, 8, 0).hour == 15
    shift = daily.handoff_at(datetime(2026, 3, 8).date()) - daily.handoff_at(datetime(2026, 3, 7).date())
    assert shift == timedelta(hours=23)  # the shift spanning the change is an hour short


def test_weekly_rotation_across_the_autumn_dst_change() -> None:
    weekly = rotation("weekly", start="2026-10-26")  # a Monday; DST ends 2026-11-01
    assert weekly.on_call_at(local(2026, 10, 26, 8, 0)) == A
    assert weekly.on_call_at(local(2026, 11, 2, 7, 59)) == A
    assert weekly.on_call_at(local(2026, 11, 2, 8, 0)) == B
    assert local(2026, 11, 2, 8, 0).hour == 15  # 08:00 MST


def test_weekly_rotation_starts_on_its_weekday() -> None:
    weekly = rotation("weekly", start="2026-03-04", weekday="friday")  # Wednesday -> first hand-off Friday
    assert weekly.on_call_at(local(2026, 3, 5, 12, 0)) is None
    assert weekly.on_call_at(local(2026, 3, 6, 8, 0)) == A


def test_on_call_by_zone_with_overrides_and_shifts() -> None:
    central = rotation(zones=("central",))
    north = rotation(zones=("north",), start="2026-03-03")  # B's turn first in north
    t = local(2026, 3, 3, 9, 0)
    assert on_call([central, north], [], [], t, "central") == {B}
    assert on_call([central, north], [], [], t, "north") == {A}
    assert on_call([central, north], [], [], t, None) == {A, B}
    swap = Window(C, frozenset({"central"}), t - timedelta(hours=1), t + timedelta(hours=1), replaces=B)
    assert on_call([central], [], [swap], t, "central") == {C}
    assert on_call([central], [], [swap], t + timedelta(hours=2), "central") == {B}
    extra = Window(A, frozenset({"central"}), t, t + timedelta(hours=8))
    assert on_call([central], [extra], [], t, "central") == {A, B}
    assert on_call([central], [extra], [], t - timedelta(seconds=1), "central") == {B}


def test_schedule_aggregate_folds_rotations_overrides_and_calendars() -> None:
    schedule = OnCallSchedule()
    spec = {
        "rotation_id": str(uuid4()),
        "zones": ["central"],
        "time_zone": "America/Denver",
        "handoff_time": "08:00",
        "shift": "daily",
        "handoff_weekday": "monday",
        "start_date": "2026-03-02",
        "participants": [str(A)],
    }
    schedule.define_rotation(spec=spec)
    t = local(2026, 3, 3, 9, 0)
    calendar = {
        "calendar_id": str(uuid4()),
        "name": "ics",
        "zones": ["central"],
        "shifts": [
            {"responder_id": str(C), "starts_at": t.isoformat(), "ends_at": (t + timedelta(hours=1)).isoformat()}
        ],
    }
    schedule.import_calendar(spec=calendar)
    assert on_call(schedule.rotations(), schedule.shifts(), schedule.overrides(), t, "central") == {A, C}
    schedule.import_calendar(spec={**calendar, "shifts": []})  # a re-import replaces the calendar's shifts
    schedule.remove_rotation(rotation_id=spec["rotation_id"])
    assert on_call(schedule.rotations(), schedule.shifts(), schedule.overrides(), t, "central") == set()
