"""The directory's staleness rule: a report older than the maximum age is unconfirmed, never open; and how the
directory folds program events and says availability in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.projections.domain.directory import (
    Availability,
    AvailabilityReport,
    DirectoryFilter,
    ProgramEntry,
    StalenessRule,
    availability_now,
    availability_words,
    fold_program,
)

NOW = datetime(2026, 12, 4, 21, 20, tzinfo=UTC)  # 14:20 in Denver
DENVER = ZoneInfo("America/Denver")
RULE = StalenessRule(beds_max_age=timedelta(hours=24), slots_max_age=timedelta(days=7))


def report(beds: int | None, age: timedelta, slot_in: timedelta | None = None) -> AvailabilityReport:
    slot = NOW + slot_in if slot_in is not None else None
    return AvailabilityReport(beds, slot, NOW - age, "api", "test-admin")


@given(
    beds=st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
    hours_past_max=st.floats(min_value=0.001, max_value=24 * 365),
    slot_hours=st.one_of(st.none(), st.floats(min_value=-100, max_value=1000)),
)
def test_a_stale_report_is_never_offered_as_open(beds, hours_past_max, slot_hours) -> None:
    max_age = RULE.beds_max_age if beds is not None else RULE.slots_max_age
    slot = timedelta(hours=slot_hours) if slot_hours is not None else None
    if beds is None and slot is None:
        slot = timedelta(hours=1)
    said = availability_now(report(beds, max_age + timedelta(hours=hours_past_max), slot), NOW, RULE)
    assert said.state == "unconfirmed" and not said.offered_as_open
    assert said.beds_open is None and said.next_intake_at is None  # nothing to act on, only its as_of
    assert "unconfirmed (as of" in availability_words(said, NOW, DENVER)


def test_a_fresh_report_is_open_full_or_a_slot() -> None:
    assert availability_now(report(3, timedelta(hours=1)), NOW, RULE).state == "open"
    assert availability_now(report(0, timedelta(hours=1)), NOW, RULE).state == "full"
    assert availability_now(report(0, timedelta(hours=1), timedelta(days=1)), NOW, RULE).state == "intake_slot"
    assert availability_now(report(None, timedelta(days=3), timedelta(days=1)), NOW, RULE).state == "intake_slot"
    passed = availability_now(report(0, timedelta(hours=1), timedelta(hours=-1)), NOW, RULE)
    assert passed.state == "full" and passed.next_intake_at is None  # a slot that passed is no slot
    assert availability_now(None, NOW, RULE).state == "not_reported"


def test_the_bed_age_and_the_slot_age_are_each_their_own() -> None:
    day_and_a_bit = timedelta(hours=25)
    assert availability_now(report(2, day_and_a_bit), NOW, RULE).state == "unconfirmed"
    assert availability_now(report(None, day_and_a_bit, timedelta(days=2)), NOW, RULE).state == "intake_slot"
    exactly = availability_now(report(2, timedelta(hours=24)), NOW, RULE)
    assert exactly.state == "open"  # at the maximum age itself, still confirmed


@pytest.mark.parametrize(
    ("availability", "words"),
    [
        (Availability("open", 3, None, NOW, timedelta(0)), "open: 3 beds as of 14:20"),
        (Availability("open", 1, None, NOW, timedelta(0)), "open: 1 bed as of 14:20"),
        (Availability("full", 0, None, NOW, timedelta(0)), "full as of 14:20"),
        (
            Availability("intake_slot", None, NOW + timedelta(days=1), NOW, timedelta(0)),
            "next intake Dec 5 14:20 (as of 14:20)",
        ),
        (Availability("unconfirmed", as_of=NOW - timedelta(days=2)), "unconfirmed (as of Dec 2 14:20)"),
        (Availability("not_reported"), "not reported"),
    ],
)
def test_availability_in_words_in_the_organisations_zone(availability, words) -> None:
    assert availability_words(availability, NOW, DENVER) == words


def profile(program_id, **changes) -> dict:
    base = {
        "program_id": str(program_id),
        "name": "A",
        "levels_of_care": ["2.1"],
        "medications": ["buprenorphine"],
        "payers": ["medicaid"],
        "populations": ["adults"],
        "languages": ["en", "es"],
    }
    return base | changes


def test_fold_registers_updates_retires_and_keeps_the_newest_report() -> None:
    program_id = uuid4()
    assert fold_program(None, "program.availability_reported", {"program_id": str(program_id)}) is None
    entry = fold_program(None, "program.registered", profile(program_id))
    assert entry is not None and entry.program_id == str(program_id) and entry.profile["name"] == "A"
    newer = {"program_id": str(program_id), "beds_open": 2, "as_of": NOW.isoformat(), "channel": "link"}
    entry = fold_program(entry, "program.availability_reported", newer | {"reported_by": "program link"})
    older = newer | {"beds_open": 9, "as_of": (NOW - timedelta(hours=1)).isoformat(), "reported_by": "x"}
    entry = fold_program(entry, "program.availability_reported", older)
    assert entry.availability.beds_open == 2  # a late, older report does not replace a newer one
    entry = fold_program(entry, "program.updated", profile(program_id, name="B"))
    assert entry.profile["name"] == "B" and entry.availability.beds_open == 2
    entry = fold_program(entry, "program.retired", {"program_id": str(program_id), "reason": "closed"})
    assert entry.retired and not DirectoryFilter().matches(entry)


def test_the_filter_wants_each_given_value() -> None:
    entry = ProgramEntry("p", profile("p"))
    assert DirectoryFilter(level="2.1", medication="buprenorphine", payer="medicaid", language="es").matches(entry)
    assert not DirectoryFilter(level="3.7-WM").matches(entry)
    assert not DirectoryFilter(population="veterans").matches(entry)
    assert DirectoryFilter(level="2.1", payer="medicaid").said() == "level 2.1, payer medicaid"
    assert DirectoryFilter().said() == "all programs"
