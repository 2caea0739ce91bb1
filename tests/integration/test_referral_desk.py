"""The referral desk on a real store (SQLite and PostgreSQL) with a moved clock (issue 17's must-show): each
program is texted a code and a signed link, nothing about the person; nobody accepts by the deadline -> exactly
one ``referral.acceptance_overdue``, still one after a restart and from a second instance; an accepted admission
window that closes without an arrival -> exactly one ``referral.no_show`` (actor "deadline"); programs answer by
SMS (the others are withdrawn after an accept) and report beds by SMS; a stranger's text changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from services.contract.events import (
    CancelReason,
    Envelope,
    ReferralAdmitted,
    ReferralAdmittedData,
    ReferralCancelled,
    ReferralCancelledData,
    ReferralNeeds,
    ReferralSent,
    ReferralSentData,
    new_event,
)
from services.projections.bootstrap import build_referral_desk
from services.projections.referral_desk import ReferralDesk
from services.projections.referral_links import ReferralLinks
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import sms_received
from tests.integration.test_directory_read_model import CLINIC, CLOSED, RESIDENTIAL, registered
from tests.integration.test_projections import T0

PHONES = {CLINIC: "+13035550141", RESIDENTIAL: "+13035550143", CLOSED: "+13035550146"}
KEY = b"k" * 32


class Fed:
    """A desk fed by hand: each event the next stream sequence; ``new()`` is what it published since."""

    def __init__(self, desk: ReferralDesk, sequence: int = 0) -> None:
        self.desk, self.sequence = desk, sequence
        self.seen = len(self.published())

    def feed(self, *events: Envelope) -> list[Envelope]:
        for event in events:
            self.sequence += 1
            self.desk.handle(event, self.sequence)
        return self.new()

    def published(self) -> list[Envelope]:
        notifications = self.desk.recorder.select_notifications(start=1, limit=10_000)
        return [e for n in notifications for e in self.desk.outbox(self.desk.mapper.to_domain_event(n))]

    def new(self) -> list[Envelope]:
        everything = self.published()
        fresh, self.seen = everything[self.seen :], len(everything)
        return fresh


def texts(events: list[Envelope]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.data.to, e.data.template, e.data.params) for e in events if e.type == "notification.requested"]


def sent(referral_id: UUID, incident_id: UUID, code: str = "4417", to: tuple[UUID, ...] = tuple(PHONES)) -> Envelope:
    data = ReferralSentData(
        referral_id=referral_id,
        incident_id=incident_id,
        code=code,
        level_of_care="OTP",
        needs=ReferralNeeds(medication="buprenorphine"),
        program_ids=list(to),
        accept_by=T0 + timedelta(hours=1),
        sent_by="cleo",
    )
    return new_event(
        ReferralSent, data, event_id=uuid4(), occurred_at=T0, producer="projections", incident_id=incident_id
    )


@pytest.fixture
def open_desk(tmp_path: Path, database_url: str):
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url)
    clock = ManualClock(T0)
    opened: list[ReferralDesk] = []

    def opening() -> ReferralDesk:
        desk = build_referral_desk(settings, clock, ReferralLinks(KEY, base_url="https://ws.example.org"))
        opened.append(desk)
        return desk

    yield opening, clock
    for desk in opened:
        desk.close()


def programs() -> list[Envelope]:
    return [
        registered(program, name, T0, intake_phone=PHONES[program])
        for program, name in ((CLINIC, "Bannock Clinic"), (RESIDENTIAL, "Cheesman House"), (CLOSED, "Evans Unit"))
    ]


def test_offers_then_nobody_accepts_pages_once_across_restart_and_two_instances(open_desk) -> None:
    opening, clock = open_desk
    fed = Fed(opening())
    referral, incident = uuid4(), uuid4()
    fed.feed(*programs())
    offers = texts(fed.feed(sent(referral, incident)))
    assert sorted(to for to, _, _ in offers) == sorted(PHONES.values())
    for _, template, params in offers:
        assert template == "referral_offer" and set(params) == {"code", "link"} and params["code"] == "4417"
        assert re.fullmatch(r"https://ws\.example\.org/rf/[A-Za-z0-9_-]{64}", params["link"])
    links = ReferralLinks(KEY)
    read = {links.read(p["link"].rsplit("/", 1)[1], T0) for _, _, p in offers}
    assert read == {(referral, program) for program in PHONES}

    fed.feed(sms_received(PHONES[CLINIC], "DECLINE 4417 FULL"))
    clock.advance(timedelta(minutes=59))
    assert fed.desk.fire_due(clock.now()) == 0
    clock.advance(timedelta(minutes=2))
    assert fed.desk.fire_due(clock.now()) == 1
    overdue = [e for e in fed.new() if e.type == "referral.acceptance_overdue"]
    assert [(e.data.code, e.data.declined, e.data.unanswered) for e in overdue] == [("4417", 1, 2)]
    assert overdue[0].incident_id == incident
    assert fed.desk.fire_due(clock.now() + timedelta(hours=3)) == 0

    sequence = fed.sequence
    fed.desk.close()
    again, second = Fed(opening(), sequence), Fed(opening(), sequence)
    assert again.desk.fire_due(clock.now() + timedelta(days=1)) == 0
    assert second.desk.fire_due(clock.now() + timedelta(days=1)) == 0
    assert [e for e in again.published() if e.type == "referral.acceptance_overdue"] == overdue


def test_sms_answers_withdraw_the_others_and_a_missed_admission_is_a_no_show(open_desk) -> None:
    opening, clock = open_desk
    fed = Fed(opening())
    referral, incident = uuid4(), uuid4()
    fed.feed(*programs(), sent(referral, incident))
    assert texts(fed.feed(sms_received("+15550000999", "ACCEPT 4417"))) == []  # not a program: not ours

    clock.advance(timedelta(minutes=10))
    answered = fed.feed(sms_received(PHONES[RESIDENTIAL], "accept 4417 6"))
    accepted = [e for e in answered if e.type == "referral.accepted"]
    assert len(accepted) == 1 and accepted[0].data.channel == "sms" and accepted[0].data.actor == "program sms"
    assert accepted[0].data.admission_until == clock.now() + timedelta(hours=6)
    withdrawn = [e for e in answered if e.type == "referral.withdrawn"]
    assert {e.data.program_id for e in withdrawn} == {CLINIC, CLOSED}
    assert {(to, t) for to, t, _ in texts(answered)} == {
        (PHONES[RESIDENTIAL], "referral_noted"),
        (PHONES[CLINIC], "referral_withdrawn"),
        (PHONES[CLOSED], "referral_withdrawn"),
    }
    assert fed.feed(*accepted, *withdrawn) == []  # our own events coming back from the stream change nothing
    assert texts(fed.feed(sms_received(PHONES[CLINIC], "ACCEPT 4417"))) == [
        (PHONES[CLINIC], "program_reply_help", {})
    ]  # its offer was withdrawn

    clock.advance(timedelta(hours=1))
    assert fed.desk.fire_due(clock.now()) == 0  # accepted: the acceptance deadline no longer applies
    clock.advance(timedelta(hours=6))
    assert fed.desk.fire_due(clock.now()) == 1
    no_show = [e for e in fed.new() if e.type == "referral.no_show"]
    assert [(e.data.actor, e.data.channel, e.data.program_id) for e in no_show] == [
        ("deadline", "deadline", RESIDENTIAL)
    ]
    assert fed.desk.fire_due(clock.now() + timedelta(days=2)) == 0

    beds = fed.feed(sms_received(PHONES[CLOSED], "CAMAS 3"))
    reported = [e for e in beds if e.type == "program.availability_reported"]
    assert [(e.data.beds_open, e.data.channel) for e in reported] == [(3, "sms")]
    assert texts(beds)[0][1] == "availability_noted"


def test_an_admission_in_time_is_no_no_show(open_desk) -> None:
    opening, clock = open_desk
    fed = Fed(opening())
    referral, incident = uuid4(), uuid4()
    fed.feed(*programs(), sent(referral, incident))
    fed.feed(sms_received(PHONES[CLINIC], "ACEPTAR 4417 2"))
    clock.advance(timedelta(hours=1))
    data = ReferralAdmittedData(
        referral_id=referral,
        incident_id=incident,
        program_id=CLINIC,
        actor="program link",
        channel="link",
        admitted_at=clock.now(),
    )
    fed.feed(new_event(ReferralAdmitted, data, event_id=uuid4(), occurred_at=clock.now(), producer="t"))
    assert fed.desk.view(referral).state.value == "admitted"
    assert fed.desk.fire_due(clock.now() + timedelta(days=3)) == 0
    assert not [e for e in fed.new() if e.type in ("referral.no_show", "referral.acceptance_overdue")]


def test_slots_help_and_texts_the_desk_cannot_place(open_desk) -> None:
    opening, clock = open_desk
    fed = Fed(opening())  # the organisation's time zone: America/Denver (the settings' default)
    fed.feed(*programs(), sent(uuid4(), uuid4()), sent(uuid4(), uuid4(), to=(CLINIC,)))  # two open 4417s for CLINIC

    slot = fed.feed(sms_received(PHONES[RESIDENTIAL], "SLOT 2026-12-07 09:30"))
    reported = [e for e in slot if e.type == "program.availability_reported"]
    assert [(e.data.program_id, e.data.next_intake_at, e.data.beds_open, e.data.channel) for e in reported] == [
        (RESIDENTIAL, datetime(2026, 12, 7, 16, 30, tzinfo=UTC), None, "sms")
    ]
    assert texts(slot) == [(PHONES[RESIDENTIAL], "availability_noted", {"beds_open": None, "slot": True})]

    help_only = [(PHONES[CLINIC], "program_reply_help", {})]
    past = (clock.now() - timedelta(days=1)).astimezone(ZoneInfo("America/Denver")).strftime("%Y-%m-%d %H:%M")
    assert texts(fed.feed(sms_received(PHONES[CLINIC], f"SLOT {past}"))) == help_only  # already past: a slip
    assert texts(fed.feed(sms_received(PHONES[CLINIC], "HELP"))) == help_only
    assert texts(fed.feed(sms_received(PHONES[CLINIC], "call me about Maria 555-0100"))) == help_only  # no echo
    assert texts(fed.feed(sms_received(PHONES[CLINIC], "ACCEPT 4417"))) == help_only  # which 4417? ask again
    assert texts(fed.feed(sms_received(PHONES[CLINIC], "ACCEPT 9999"))) == help_only  # no such referral
    assert fed.feed(sms_received("+15550000999", "DECLINE 4417")) == []  # not a program: nothing at all
    assert fed.feed(sms_received("+15550000999", "BEDS 3")) == []


def test_a_cancel_withdraws_every_open_offer_once(open_desk) -> None:
    opening, clock = open_desk
    fed = Fed(opening())
    referral, incident = uuid4(), uuid4()
    fed.feed(*programs(), sent(referral, incident))
    fed.feed(sms_received(PHONES[CLINIC], "DECLINE 4417"))

    data = ReferralCancelledData(
        referral_id=referral, incident_id=incident, reason=CancelReason.OTHER_CARE_ARRANGED, actor="cleo"
    )
    cancelled = new_event(ReferralCancelled, data, event_id=uuid4(), occurred_at=clock.now(), producer="t")
    out = fed.feed(cancelled)

    withdrawn = [e for e in out if e.type == "referral.withdrawn"]
    assert {(e.data.program_id, e.data.reason) for e in withdrawn} == {
        (RESIDENTIAL, "referral_cancelled"),
        (CLOSED, "referral_cancelled"),
    }  # the clinic had declined: nothing to withdraw there
    assert all(e.incident_id == incident for e in withdrawn)
    assert sorted(texts(out)) == sorted(
        [
            (PHONES[RESIDENTIAL], "referral_withdrawn", {"code": "4417"}),
            (PHONES[CLOSED], "referral_withdrawn", {"code": "4417"}),
        ]
    )
    assert fed.feed(cancelled, *withdrawn) == []  # redelivered, and our own withdrawals back: nothing more
    assert fed.desk.fire_due(clock.now() + timedelta(days=2)) == 0  # a cancelled referral has no deadlines
    assert texts(fed.feed(sms_received(PHONES[RESIDENTIAL], "ACCEPT 4417"))) == [
        (PHONES[RESIDENTIAL], "program_reply_help", {})
    ]


def test_the_books_are_snapshotted_and_a_restart_answers_from_the_snapshots(open_desk) -> None:
    """The program book and the deadlines are snapshotted (every 50 events, here by hand): a desk restarted on them
    still knows each program's phone, the referral's code and its deadline."""
    from services.projections.domain.referral_case import DeadlineBook, ProgramBook

    opening, clock = open_desk
    fed = Fed(opening())
    referral, incident = uuid4(), uuid4()
    fed.feed(*programs(), sent(referral, incident))
    for book in (ProgramBook, DeadlineBook):
        fed.desk.take_snapshot(book.create_id())
        assert list(fed.desk.snapshots.get(book.create_id()))
    sequence = fed.sequence
    fed.desk.close()
    fed = Fed(opening(), sequence)
    clock.advance(timedelta(minutes=10))
    answered = fed.feed(sms_received(PHONES[RESIDENTIAL], "ACCEPT 4417 6"))
    assert [e.data.program_id for e in answered if e.type == "referral.accepted"] == [RESIDENTIAL]
    clock.advance(timedelta(hours=7))
    assert fed.desk.fire_due(clock.now()) == 1  # the admission deadline, read back from the snapshot and after
