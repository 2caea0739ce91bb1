"""When a caring text is due (issue 19, ``domain/caring.py``): on its day, in the organisation's daytime, never
within 20 hours of the last one, each once; the reply code is four digits and stable for a message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.projections.domain.caring import DEFAULT_SCHEDULE, CaringPolicy, earliest_send, next_text, reply_code

DENVER = ZoneInfo("America/Denver")
CONSENT = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 10:00 in Denver
POLICY = CaringPolicy()
DAYS = list(DEFAULT_SCHEDULE)


def local(day: int, hour: int) -> datetime:
    return (CONSENT.astimezone(DENVER) + timedelta(days=day)).replace(hour=hour).astimezone(UTC)


@pytest.mark.parametrize(
    ("sent", "last", "now", "expected"),
    [
        (0, None, local(0, 23), None),  # not yet due
        (0, None, local(1, 10), 1),  # due, daytime
        (0, None, local(1, 7), None),  # due, but 07:00: wait for 09:00
        (0, None, local(1, 20), None),  # 20:00 is evening already
        (1, local(1, 10), local(6, 12), None),  # the second is due on day 7
        (1, local(1, 10), local(7, 12), 2),
        (2, local(40, 10), local(40, 19), None),  # two were missed: the next waits a day after the last
        (2, local(40, 10), local(41, 9), 3),
        (11, local(365, 10), local(400, 12), None),  # all sent
    ],
)
def test_next_text(sent: int, last: datetime | None, now: datetime, expected: int | None) -> None:
    assert next_text(DAYS, CONSENT, sent, last, now, DENVER, POLICY) == expected


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_a_year_stepped_hour_by_hour_sends_each_text_once_in_order(gaps: list[int]) -> None:
    """Whatever the schedule, stepping the clock sends 1..n once each, in order, in daytime, at least 20 h apart."""
    days = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    sent, last, now, times = 0, None, CONSENT, []
    while now < CONSENT + timedelta(days=days[-1] + len(days) + 3):
        now += timedelta(hours=3)
        number = next_text(days, CONSENT, sent, last, now, DENVER, POLICY)
        if number is not None:
            assert number == sent + 1
            sent, last = number, now
            times.append(now)
    assert sent == len(days)
    assert all(9 <= t.astimezone(DENVER).hour < 20 for t in times)
    assert all(b - a >= timedelta(hours=20) for a, b in zip(times, times[1:], strict=False))


@given(
    st.integers(min_value=0, max_value=10),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.booleans(),
)
def test_the_earliest_send_is_when_next_text_first_says_yes(sent: int, moment: datetime, has_last: bool) -> None:
    consent = moment.replace(tzinfo=UTC)
    last = consent + timedelta(days=DAYS[sent - 1]) + timedelta(hours=5) if sent and has_last else None
    due = consent + timedelta(days=DAYS[sent])
    first = earliest_send(due, last, DENVER, POLICY)
    assert next_text(DAYS, consent, sent, last, first, DENVER, POLICY) == sent + 1
    assert next_text(DAYS, consent, sent, last, first - timedelta(minutes=1), DENVER, POLICY) is None


def test_the_reply_code() -> None:
    sid = "SM" + "a" * 32
    assert reply_code(sid) == reply_code(sid) and len(reply_code(sid)) == 4 and reply_code(sid).isdigit()
