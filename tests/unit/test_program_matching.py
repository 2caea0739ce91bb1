"""Matching at disposition (issue 17), pure: the proposed level of care from what triage knows; the filter by
level and needs; the rank by confirmed availability then distance, with reasons; and, whatever the reports' ages,
a report older than the maximum age never ranks as open nor above a confirmed one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.projections.directory import Listing
from services.projections.domain.directory import AvailabilityReport, ProgramEntry, StalenessRule, availability_now
from services.projections.domain.program_matching import MatchRequest, match_programs, propose_level_of_care

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
RULE = StalenessRule()
ORIGIN = (39.74, -104.99)


def flat_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return abs(a[0] - b[0]) * 111 + abs(a[1] - b[1]) * 85


def listing(name: str, beds: int | None, age_hours: float | None, lat: float = 39.74, **profile) -> Listing:
    report = None
    if age_hours is not None:
        report = AvailabilityReport(
            beds, None if beds is not None else NOW + timedelta(days=1), NOW - timedelta(hours=age_hours), "api", "t"
        )
    body = {"name": name, "location": {"lat": lat, "lon": -104.99}, "levels_of_care": ["OTP", "1"]} | profile
    entry = ProgramEntry(name, body, False, report)
    return Listing(entry, availability_now(report, NOW, RULE))


def test_the_proposal_follows_triage() -> None:
    assert propose_level_of_care("withdrawal", {"ciwa_ar_score": 24}, []).level == "3.7-WM"
    assert propose_level_of_care("withdrawal", {"ciwa_ar_score": 12}, []).level == "2-WM"
    assert propose_level_of_care("withdrawal", {"cows_score": 8}, []).level == "1-WM"
    assert propose_level_of_care("withdrawal", {"cows_score": 8, "seizure": True}, []).level == "4-WM"
    assert propose_level_of_care("overdose", {}, []).level == "OTP"
    assert propose_level_of_care("self_harm_risk", {"risk_level": "high"}, []).level == "4"
    later = propose_level_of_care("withdrawal", {"cows_score": 8}, [{"instrument": "cows", "score": 20}])
    assert later.level == "2-WM" and later.basis == ("COWS 20",)


def test_ranked_by_confirmed_availability_then_distance_with_reasons() -> None:
    listings = [
        listing("far open", 2, 1, lat=40.2),
        listing("near open", 1, 1),
        listing("near stale", 9, 30),
        listing("never", None, None),
        listing("no buprenorphine", 5, 1, medications=[]),
    ]
    wanted = MatchRequest("OTP", "buprenorphine", origin=ORIGIN)
    for item in listings[:4]:
        item.entry.profile["medications"] = ["buprenorphine"]
    found = match_programs(listings, wanted, flat_km)
    assert [m.name for m in found] == ["near open", "far open", "near stale", "never"]
    assert found[0].reasons[0] == "1 bed(s) open, confirmed" and "offers buprenorphine" in found[0].reasons
    assert found[2].reasons[0].startswith("availability unconfirmed")


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 200)), min_size=1, max_size=8))
def test_a_stale_report_never_ranks_as_open(reports: list[tuple[int, float]]) -> None:
    listings = [listing(f"p{i}", beds, age) for i, (beds, age) in enumerate(reports)]
    found = match_programs(listings, MatchRequest("OTP", origin=ORIGIN), flat_km)
    ages = {f"p{i}": age for i, (_, age) in enumerate(reports)}
    states = [m.state for m in found]
    for match in found:
        if match.state == "open":
            assert ages[match.name] <= RULE.beds_max_age.total_seconds() / 3600
    if "unconfirmed" in states and "open" in states:
        assert max(i for i, s in enumerate(states) if s == "open") < min(
            i for i, s in enumerate(states) if s == "unconfirmed"
        )
