"""A report being made is held among the recent reports before it is appended; it is never its own duplicate, and
the links it may have (``max_links``) all go to other incidents."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.intake_gateway.domain.duplicates import DuplicateRule, RecentReport, possible_duplicates

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_the_report_being_made_is_not_its_own_duplicate_and_takes_no_link() -> None:
    own = RecentReport(uuid4(), "overdose", 39.7431, -104.9876, T0, "4821")
    others = [RecentReport(uuid4(), "overdose", 39.7431 + i * 0.00001, -104.9876, T0, f"{1000 + i}") for i in range(4)]
    rule = DuplicateRule(max_links=3)
    found = possible_duplicates("overdose", 39.7431, -104.9876, T0, [own, *others], rule, excluding=own.incident_id)
    assert [d.short_code for d in found] == ["1000", "1001", "1002"]
    unexcluded = possible_duplicates("overdose", 39.7431, -104.9876, T0, [own, *others], rule)
    assert unexcluded[0].incident_id == own.incident_id and len(unexcluded) == 3
