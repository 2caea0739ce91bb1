"""What a treatment program may text back (projections/domain/program_replies.py): every command in English and
Spanish, any case, and anything else read as "not understood" (which carries nothing of what was typed)."""

from __future__ import annotations

from dataclasses import astuple, fields
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.contract.events import DeclineReason, InfoNeeded
from services.projections.domain.program_replies import (
    BedsReport,
    HelpAsked,
    NotUnderstood,
    ReferralAnswer,
    SlotReport,
    parse_program_reply,
)

DENVER = ZoneInfo("America/Denver")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("ACCEPT 4417", "accept"),
        ("accept 4417", "accept"),
        ("Aceptar 4417", "accept"),
        ("DECLINE 4417", "decline"),
        ("rechazar 4417", "decline"),
        ("INFO 4417", "info"),
        ("ARRIVED 4417", "arrived"),
        ("admitted 4417", "arrived"),
        ("LLEGO 4417", "arrived"),
        ("llegó 4417", "arrived"),
        ("NOSHOW 4417", "no_show"),
        ("no show 4417", "no_show"),
        ("  accept   4417  ", "accept"),
    ],
)
def test_each_answer_reads_with_its_code(text: str, answer: str) -> None:
    reply = parse_program_reply(text)

    assert isinstance(reply, ReferralAnswer)
    assert (reply.answer, reply.code) == (answer, "4417")


def test_accept_takes_an_optional_admission_window_in_hours() -> None:
    assert parse_program_reply("ACCEPT 4417").hours is None  # the desk's default
    assert parse_program_reply("ACCEPT 4417 6").hours == 6
    assert parse_program_reply("aceptar 0012 48").hours == 48
    for bad in ("ACCEPT 4417 0", "ACCEPT 4417 10000", "ACCEPT 4417 soon", "ACCEPT 4417 6 7"):
        assert parse_program_reply(bad) == NotUnderstood(), bad


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("DECLINE 4417", DeclineReason.OTHER),
        ("DECLINE 4417 FULL", DeclineReason.NO_CAPACITY),
        ("decline 4417 level", DeclineReason.LEVEL_OF_CARE),
        ("DECLINE 4417 PAYER", DeclineReason.PAYER),
        ("DECLINE 4417 POP", DeclineReason.POPULATION),
        ("DECLINE 4417 MED", DeclineReason.MEDICAL),
        ("RECHAZAR 4417 LLENO", DeclineReason.NO_CAPACITY),
        ("DECLINE 4417 whatever", DeclineReason.OTHER),
    ],
)
def test_a_decline_names_its_reason_or_other(text: str, reason: DeclineReason) -> None:
    assert parse_program_reply(text) == ReferralAnswer("decline", "4417", reason=reason)


@pytest.mark.parametrize(
    ("text", "needed"),
    [
        ("INFO 4417", (InfoNeeded.OTHER,)),
        ("INFO 4417 INS", (InfoNeeded.INSURANCE,)),
        ("info 4417 meds", (InfoNeeded.MEDICATION_LIST,)),
        ("INFO 4417 MED", (InfoNeeded.MEDICAL_HISTORY,)),
        ("INFO 4417 ID CONTACT", (InfoNeeded.IDENTIFICATION, InfoNeeded.CONTACT)),
        ("INFO 4417 INS INS", (InfoNeeded.INSURANCE,)),
        ("INFO 4417 SEGURO", (InfoNeeded.INSURANCE,)),
    ],
)
def test_info_names_what_is_needed(text: str, needed: tuple[InfoNeeded, ...]) -> None:
    assert parse_program_reply(text) == ReferralAnswer("info", "4417", needed=needed)


def test_beds_and_full() -> None:
    assert parse_program_reply("BEDS 3") == BedsReport(3)
    assert parse_program_reply("camas 0") == BedsReport(0)
    assert parse_program_reply("FULL") == BedsReport(0)
    assert parse_program_reply("lleno") == BedsReport(0)
    for bad in ("BEDS", "BEDS three", "BEDS -1", "BEDS 3 4", "BEDS 100000"):
        assert parse_program_reply(bad) == NotUnderstood(), bad


def test_a_slot_is_the_organisations_local_time_in_utc() -> None:
    winter = parse_program_reply("SLOT 2026-12-07 09:30", DENVER)
    summer = parse_program_reply("cita 2026-07-07 9:05", DENVER)

    assert winter == SlotReport(datetime(2026, 12, 7, 16, 30, tzinfo=UTC))  # MST, UTC-7
    assert summer == SlotReport(datetime(2026, 7, 7, 15, 5, tzinfo=UTC))  # MDT, UTC-6
    assert parse_program_reply("SLOT 2026-12-07 09:30") == SlotReport(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "text",
    ["SLOT", "SLOT tomorrow", "SLOT 2026-02-30 09:30", "SLOT 2026-12-07 25:00", "SLOT 2026-12-07", "SLOT 12/07 9am"],
)
def test_a_slot_that_is_no_date_and_time_is_not_understood(text: str) -> None:
    assert parse_program_reply(text, DENVER) == NotUnderstood()


def test_help_in_both_languages() -> None:
    assert parse_program_reply("HELP") == HelpAsked()
    assert parse_program_reply("ayuda") == HelpAsked()


@pytest.mark.parametrize(
    "text",
    ["", "   ", "yes", "ACCEPT", "ACCEPT 44", "ACCEPT 44170", "ACCEPT abcd", "ARRIVED 4417 late", "OK 4417", "?"],
)
def test_anything_else_is_not_understood(text: str) -> None:
    assert parse_program_reply(text) == NotUnderstood()


@given(st.text(max_size=400))
def test_any_text_reads_as_a_typed_reply_and_never_carries_free_text(text: str) -> None:
    reply = parse_program_reply(text, DENVER)

    assert isinstance(reply, ReferralAnswer | BedsReport | SlotReport | HelpAsked | NotUnderstood)
    assert fields(NotUnderstood) == () and astuple(NotUnderstood()) == ()
    if isinstance(reply, ReferralAnswer):
        assert reply.code.isdigit() and len(reply.code) == 4  # only the code is taken from the text


def test_punctuation_is_forgiven_but_a_sign_is_not() -> None:
    assert parse_program_reply("Accept #4417.") == ReferralAnswer("accept", "4417")
    assert parse_program_reply("NO-SHOW 4417") == ReferralAnswer("no_show", "4417")
    assert parse_program_reply("INFO 4417 INS,MEDS") == ReferralAnswer(
        "info", "4417", needed=(InfoNeeded.INSURANCE, InfoNeeded.MEDICATION_LIST)
    )
    assert parse_program_reply("ACCEPT 4417 -6") == NotUnderstood()
    assert parse_program_reply("ACCEPT -4417") == NotUnderstood()
