"""Caring contacts on a real store (SQLite and PostgreSQL) over a simulated year with a moved clock (issue 19's
must-show): each text of each series is sent once, in order, in the organisation's daytime, across restarts of the
desk and a clock that jumps past several due times (the missed ones then go out a day apart, none skipped); STOP
ends a series and is never read as a reply; a reply is coded, acknowledged to the person with 988/911, and put on
the stream for the dispatcher to page."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta
from pathlib import Path
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from services.contract.events import (
    CaringEnrolled,
    CaringEnrolledData,
    CaringWithdrawn,
    CaringWithdrawnData,
    Envelope,
    SmsOptOutChanged,
    SmsOptOutChangedData,
    new_event,
)
from services.projections.bootstrap import build_caring_desk
from services.projections.caring_desk import CaringDesk
from services.projections.domain.caring import DEFAULT_SCHEDULE
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0, sms_received
from tests.integration.test_referral_desk import Fed

ZONE = ZoneInfo("America/Denver")
ANA, BEA, CAL = "+15550107001", "+15550107002", "+15550107003"


def enrolled(phone: str, consented_at, language: str = "en") -> tuple[UUID, Envelope]:
    enrolment = uuid4()
    data = CaringEnrolledData(
        enrolment_id=enrolment,
        person_id=uuid4(),
        phone=phone,
        language=language,
        schedule_days=list(DEFAULT_SCHEDULE),
        consent_how="verbal",
        consented_at=consented_at,
        actor="clinician-user",
    )
    return enrolment, new_event(CaringEnrolled, data, event_id=uuid4(), occurred_at=consented_at, producer="t")


def opted_out(phone: str, at) -> Envelope:
    sid = "SM" + uuid4().hex
    data = SmsOptOutChangedData(phone=phone, opted_out=True, keyword="STOP", message_sid=sid, received_at=at)
    return new_event(SmsOptOutChanged, data, event_id=uuid4(), occurred_at=at, producer="intake_gateway")


@pytest.fixture
def desks(tmp_path: Path, database_url: str):
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url, org_time_zone="America/Denver")
    clock = ManualClock(T0)
    opened: list[CaringDesk] = []

    def opening() -> CaringDesk:
        desk = build_caring_desk(settings, clock)
        opened.append(desk)
        return desk

    yield opening, clock
    for desk in opened:
        desk.close()


def test_a_year_of_caring_texts_each_once_in_order_across_restarts_and_a_moved_clock(desks) -> None:
    opening, clock = desks
    fed = Fed(opening())
    night = (T0.astimezone(ZONE).replace(hour=2) + timedelta(days=3)).astimezone(UTC)  # consent at 02:00 local
    _, ana = enrolled(ANA, T0)
    _, bea = enrolled(BEA, night, "es")
    _, cal = enrolled(CAL, T0)
    published = fed.feed(ana, bea, cal)
    step, day = timedelta(hours=4), 0
    while clock.now() < T0 + timedelta(days=400):
        clock.advance(step)
        if clock.now() >= T0 + timedelta(days=100) and day < 100:  # the desk was down for 50 days: a clock jump
            clock.advance(timedelta(days=50))
            day = 100
        if clock.now() >= T0 + timedelta(days=20) and cal is not None:
            published += fed.feed(sms_received(CAL, "STOP"), opted_out(CAL, clock.now()))
            cal = None
        if fed.desk.fire_due(clock.now()):
            published += fed.new()
        if clock.now().day == 1 and clock.now().hour < 4:  # a restart a month, on the same store
            sequence = fed.sequence
            fed.desk.close()
            fed = Fed(opening(), sequence)

    sent: dict[str, list[tuple[int, object, str]]] = defaultdict(list)
    for e in published:
        if e.type == "notification.requested" and e.data.template == "caring_contact":
            sent[e.data.to].append((e.data.params["number"], e.occurred_at, e.data.language))
    for phone in (ANA, BEA):
        assert [n for n, _, _ in sent[phone]] == list(range(1, 12)), phone  # each once, in order, none skipped
        times = [at for _, at, _ in sent[phone]]
        assert all(9 <= at.astimezone(ZONE).hour < 20 for at in times)  # daytime only
        assert all(b - a >= timedelta(hours=20) for a, b in zip(times, times[1:], strict=False))  # one a day at most
    assert {lang for _, _, lang in sent[BEA]} == {"es"}
    first_bea = sent[BEA][0][1].astimezone(ZONE)
    assert first_bea.date() == (night + timedelta(days=1)).astimezone(ZONE).date() and first_bea.hour >= 9
    after_jump = [at for _, at, _ in sent[ANA] if at >= T0 + timedelta(days=150)]
    assert len(after_jump) >= 3  # days 120 and 150 were missed while down: sent a day apart on return
    assert [n for n, _, _ in sent[CAL]] == [1, 2, 3]  # days 1, 7, 14; STOP on day 20 ended it
    kinds = [e.type for e in published]
    assert kinds.count("caring.completed") == 2 and kinds.count("caring.contact_sent") == 25
    assert [e.data.reason for e in published if e.type == "caring.withdrawn"] == ["stop"]
    assert not [e for e in published if e.type == "caring.reply_received"]  # STOP is not a reply


def test_a_reply_is_coded_and_acknowledged_and_staff_may_end_a_series(desks) -> None:
    opening, clock = desks
    fed = Fed(opening())
    enrolment, ana = enrolled(ANA, T0)
    fed.feed(ana)
    clock.advance(timedelta(days=1, hours=8))  # 10:00 in Denver
    assert fed.desk.fire_due(clock.now()) == 1
    fed.new()
    reply = sms_received(ANA, "not doing great tbh")
    answered = fed.feed(reply, reply)  # the same message twice (a redelivery): one reply
    (received,) = [e for e in answered if e.type == "caring.reply_received"]
    assert (received.data.enrolment_id, received.data.message_sid) == (enrolment, reply.data.message_sid)
    assert len(received.data.code) == 4
    acks = [(e.data.to, e.data.template) for e in answered if e.type == "notification.requested"]
    assert acks == [(ANA, "caring_reply_ack")]
    assert "not doing great" not in str([e.model_dump() for e in answered])  # the text is never repeated
    (view,) = fed.desk.series_for(received.data.person_id)
    assert (view["sent"], view["of"], view["replies"][0]["code"]) == (1, 11, received.data.code)
    assert fed.feed(sms_received("+15550109999", "hello")) == []  # not a phone of a series

    data = CaringWithdrawnData(
        enrolment_id=enrolment, person_id=received.data.person_id, reason="staff", channel="app", actor="dr"
    )
    staff = new_event(CaringWithdrawn, data, event_id=uuid4(), occurred_at=clock.now(), producer="projections")
    assert fed.feed(staff, staff) == []  # on the stream already: nothing to publish, ended once
    clock.advance(timedelta(days=30))
    assert fed.desk.fire_due(clock.now()) == 0
    assert fed.desk.series_for(received.data.person_id)[0]["ended"] == "withdrawn"
    assert fed.feed(sms_received(ANA, "are you there")) == []  # an ended series reads no replies


def test_the_book_is_snapshotted_and_a_restart_sends_from_the_snapshot(desks) -> None:
    """The book of open series is snapshotted (every 50 events, here by hand): a desk restarted on it still sends
    the first text of a series opened before."""
    from services.projections.domain.caring import CaringBook

    opening, clock = desks
    fed = Fed(opening())
    _, ana = enrolled(ANA, T0)
    fed.feed(ana)
    fed.desk.take_snapshot(CaringBook.create_id())
    assert list(fed.desk.snapshots.get(CaringBook.create_id()))
    sequence = fed.sequence
    fed.desk.close()
    fed = Fed(opening(), sequence)
    sent = 0
    while not sent and clock.now() < T0 + timedelta(days=DEFAULT_SCHEDULE[0] + 2):
        clock.advance(timedelta(hours=4))
        sent = fed.desk.fire_due(clock.now())
    assert sent == 1
    assert [e.data.to for e in fed.new() if e.type == "notification.requested"] == [ANA]
