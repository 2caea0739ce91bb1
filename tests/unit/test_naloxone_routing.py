"""Naloxone in the bag, pure: the kits' arithmetic, and routing a naloxone carrier only with a usable kit.

A responder whose stock was never recorded is routed by skill as before; once recorded, none left or only expired
kits is not a carrier, and when that leaves nobody the shortfall says so.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatcher.domain.ladder import reason_nobody_was_paged, shortfall_sentence
from services.dispatcher.domain.roster import (
    NaloxoneLot,
    ResponderView,
    add_kits,
    kits_from_stored,
    stored_kits,
    take_kits,
    usable_kits,
)
from services.dispatcher.domain.routing import Request, RoutingRules, haversine_km, select_candidates, select_naively
from services.projections.domain.entries import timeline_entries
from tests.factories import fake_phone
from tests.support.incident_story import LadderStory

NOW = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
TODAY = NOW.date()
SCENE = (39.7431, -104.9876)


def carrier(lat: float = 39.745, lon: float = -104.99, naloxone=None, **state) -> ResponderView:
    kits = None if naloxone is None else tuple(naloxone)
    return ResponderView(
        uuid4(), "Generated", "clinician", fake_phone(), (lat, lon), frozenset({"naloxone_carrier"}), naloxone=kits
    )


def select(people, needs=("naloxone_carrier", "ems_now"), at=NOW, count=1):
    roster = {p.responder_id: p for p in people}
    request = Request(SCENE, at, count, tuple(needs))
    return select_candidates(roster, frozenset(roster), request, RoutingRules(), haversine_km)


# ---- the kits ---------------------------------------------------------------------------------------------


def test_a_kit_is_usable_through_its_expiry_day_and_without_an_expiry() -> None:
    kits = [NaloxoneLot(2, "A", TODAY), NaloxoneLot(3, "B", TODAY - timedelta(days=1)), NaloxoneLot(1)]
    assert usable_kits(kits, TODAY) == 3
    assert usable_kits(kits, TODAY + timedelta(days=1)) == 1


def test_a_dose_takes_the_usable_kit_that_expires_first_and_expired_ones_only_when_nothing_else_is_left() -> None:
    expired = NaloxoneLot(1, "OLD", date(2026, 1, 31))
    later = NaloxoneLot(2, "LATE", date(2028, 6, 30))
    sooner = NaloxoneLot(1, "SOON", date(2027, 1, 31))
    kits = [expired, later, sooner]
    assert take_kits(kits, 1, TODAY) == [expired, later]
    assert take_kits(kits, 3, TODAY) == [expired]
    assert take_kits(kits, 4, TODAY) == []
    assert take_kits(kits, 9, TODAY) == []  # never below zero


def test_kits_left_of_a_named_lot_come_from_that_lot_first() -> None:
    kits = [NaloxoneLot(2, "SOON", date(2027, 1, 31)), NaloxoneLot(2, "LATE", date(2028, 6, 30))]
    assert take_kits(kits, 1, TODAY, lot="LATE") == [
        NaloxoneLot(2, "SOON", date(2027, 1, 31)),
        NaloxoneLot(1, "LATE", date(2028, 6, 30)),
    ]
    assert take_kits(kits, 3, TODAY, lot="LATE") == [NaloxoneLot(1, "SOON", date(2027, 1, 31))]


def test_a_restock_adds_kits_merges_a_lot_and_takes_expired_kits_out() -> None:
    kits = [NaloxoneLot(1, "OLD", date(2026, 1, 31)), NaloxoneLot(1, "A", date(2027, 6, 30))]
    after = add_kits(kits, [NaloxoneLot(2, "A", date(2027, 6, 30)), NaloxoneLot(1, "B", None)], TODAY)
    assert after == [NaloxoneLot(3, "A", date(2027, 6, 30)), NaloxoneLot(1, "B", None)]


def test_kits_are_stored_as_plain_values_and_read_back() -> None:
    kits = [NaloxoneLot(3, "A1", date(2027, 6, 30)), NaloxoneLot(1)]
    stored = stored_kits(kits)
    assert stored == [
        {"count": 3, "lot": "A1", "expires_on": "2027-06-30"},
        {"count": 1, "lot": None, "expires_on": None},
    ]
    assert list(kits_from_stored(stored)) == kits


def test_the_view_says_none_for_a_stock_never_recorded_and_counts_usable_kits_otherwise() -> None:
    assert carrier().naloxone_usable(TODAY) is None
    assert carrier(naloxone=[]).naloxone_usable(TODAY) == 0
    assert carrier(naloxone=[NaloxoneLot(2, None, TODAY)]).naloxone_usable(TODAY) == 2


# ---- routing ----------------------------------------------------------------------------------------------


def test_a_carrier_whose_stock_was_never_recorded_is_routed_by_skill_as_before() -> None:
    never = carrier()
    assert [c.responder for c in select([never]).candidates] == [never]


def test_a_carrier_with_no_kit_left_is_not_routed_for_an_overdose_and_the_shortfall_says_so() -> None:
    empty = carrier(naloxone=[])
    selection = select([empty])
    assert selection.candidates == ()
    assert selection.shortfalls == ("no_naloxone_in_stock",)
    assert "no naloxone in stock" in shortfall_sentence(selection.shortfalls, "candidates")
    assert reason_nobody_was_paged(selection.shortfalls) == "nobody_qualified"  # like a missing skill


def test_only_expired_kits_is_no_stock_from_the_day_after_expiry_utc() -> None:
    expiring = carrier(naloxone=[NaloxoneLot(2, "A", TODAY)])
    assert [c.responder for c in select([expiring]).candidates] == [expiring]  # 23:30 UTC on its expiry day
    next_day = NOW + timedelta(hours=1)
    assert select([expiring], at=next_day).shortfalls == ("no_naloxone_in_stock",)


def test_a_nearer_carrier_without_kits_is_passed_over_for_one_with_kits() -> None:
    near_empty = carrier(39.7432, -104.9877, naloxone=[])
    far_stocked = carrier(39.80, -104.90, naloxone=[NaloxoneLot(1)])
    assert [c.responder for c in select([near_empty, far_stocked]).candidates] == [far_stocked]
    naive = select_naively(
        {p.responder_id: p for p in (near_empty, far_stocked)},
        frozenset({near_empty.responder_id, far_stocked.responder_id}),
        Request(SCENE, NOW, 1, ("naloxone_carrier",)),
        RoutingRules(),
        haversine_km,
    )
    assert [c.responder for c in naive] == [far_stocked]


@pytest.mark.parametrize("needs", [(), ("licensed_clinician",)])
def test_stock_matters_only_for_a_naloxone_need(needs) -> None:
    empty = ResponderView(
        uuid4(),
        "Generated",
        "clinician",
        fake_phone(),
        (39.745, -104.99),
        frozenset({"naloxone_carrier", "licensed_clinician"}),
        naloxone=(),
    )
    assert [c.responder for c in select([empty], needs=needs).candidates] == [empty]


def test_no_skill_at_all_is_still_nobody_with_skill() -> None:
    clinician = ResponderView(uuid4(), "Generated", "clinician", fake_phone(), (39.745, -104.99), frozenset())
    assert select([clinician]).shortfalls == ("nobody_with_skill",)


def test_the_timeline_says_no_naloxone_in_stock_when_that_is_why_nobody_was_paged() -> None:
    story = LadderStory()
    unfilled = story.unfilled(0.1, 1, ["no_naloxone_in_stock"], rung="candidates")
    (entry,) = timeline_entries([unfilled])
    assert entry.summary.endswith(": no naloxone in stock")
