"""Candidate selection and the ladder: pure functions over hand-made rosters."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatcher.domain.policy import PagingPolicy, Rung, next_rung
from services.dispatcher.domain.replies import Reply, free_code, parse_reply
from services.dispatcher.domain.roster import ResponderView
from services.dispatcher.domain.routing import (
    Request,
    RoutingRules,
    SpatialIndex,
    haversine_km,
    select_candidates,
    select_naively,
)
from tests.factories import fake_phone

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SCENE = (39.7431, -104.9876)
RULES = RoutingRules()


def person(lat: float, lon: float, role: str = "clinician", skills=("naloxone_carrier",), **state) -> ResponderView:
    return ResponderView(uuid4(), "Generated", role, fake_phone(), (lat, lon), frozenset(skills), **state)


def select(people, needs=("naloxone_carrier",), count=1, on_call=None, index=None, rules=RULES, **request):
    roster = {p.responder_id: p for p in people}
    pool = frozenset(roster) if on_call is None else frozenset(p.responder_id for p in on_call)
    return select_candidates(
        roster, pool, Request(SCENE, NOW, count, tuple(needs), **request), rules, haversine_km, index
    )


def test_nearest_eligible_by_distance_then_load() -> None:
    far = person(39.80, -104.90)
    near = person(39.745, -104.99)
    tie_busier = person(39.745, -104.99, load=0)
    chosen = select([far, near], count=2).candidates
    assert [c.responder for c in chosen] == [near, far]
    assert chosen[0].skills_matched == ("naloxone_carrier",)
    assert chosen[0].distance_km == pytest.approx(haversine_km((39.745, -104.99), SCENE), abs=0.001)
    assert {c.responder for c in select([near, tie_busier], count=2).candidates} == {near, tie_busier}


def test_each_triage_need_requires_its_skill() -> None:
    peer = person(39.744, -104.988, "peer_coach", skills=("naloxone_carrier",))
    clinician = person(39.75, -104.99, "clinician", skills=("licensed_clinician",))
    nurse = person(39.76, -104.99, "nurse", skills=("nurse",))
    prescriber = person(39.77, -104.99, "prescriber", skills=("prescriber",))
    everyone = [peer, clinician, nurse, prescriber]
    assert select(everyone, ("licensed_clinician",)).candidates[0].responder == clinician  # high self-harm risk
    assert select(everyone, ("naloxone_carrier",)).candidates[0].responder == peer  # overdose
    assert select(everyone, ("nurse_or_prescriber",)).candidates[0].responder == nurse  # severe withdrawal
    assert select([peer, prescriber], ("nurse_or_prescriber",)).candidates[0].responder == prescriber


@pytest.mark.parametrize(
    ("people", "needs", "shortfalls"),
    [
        ([], (), ("nobody_on_call",)),
        ([person(39.75, -104.99, available=False)], (), ("nobody_on_call",)),
        ([person(39.75, -104.99, opted_out=True)], (), ("all_unreachable",)),
        ([person(39.75, -104.99, load=1)], (), ("all_busy",)),
        ([person(39.75, -104.99, skills=())], ("licensed_clinician",), ("nobody_with_skill",)),
        ([person(45.0, -110.0)], (), ("outside_radius",)),
        (
            [person(45.0, -110.0, reported_location=(39.75, -104.99), reported_at=NOW - timedelta(hours=3))],
            (),
            ("outside_radius", "locations_stale"),
        ),
    ],
)
def test_every_shortfall_names_its_reason(people, needs, shortfalls) -> None:
    selection = select(people, needs)
    assert selection.candidates == () and selection.shortfalls == shortfalls


def test_off_call_people_are_not_candidates() -> None:
    on, off = person(39.80, -104.90), person(39.744, -104.988)
    assert [c.responder for c in select([on, off], on_call=[on]).candidates] == [on]


def test_a_fresh_reported_location_beats_the_home_base_and_a_stale_one_does_not() -> None:
    fresh = person(39.90, -104.80, reported_location=(39.7432, -104.9877), reported_at=NOW - timedelta(minutes=5))
    stale = person(39.90, -104.80, reported_location=(39.7431, -104.9876), reported_at=NOW - timedelta(hours=2))
    home = person(39.76, -104.99)
    ranked = select([stale, home, fresh], count=3).candidates
    assert [c.responder for c in ranked] == [fresh, home, stale]
    assert (ranked[0].location_source, ranked[0].location_age_minutes) == ("reported", 5)
    assert (ranked[2].location_source, ranked[2].location_age_minutes) == ("home_base", 120)


def test_roles_and_exclusions_narrow_the_pool() -> None:
    supervisor = person(39.80, -104.90, "supervisor", skills=())
    clinician = person(39.744, -104.988)
    assert select([supervisor, clinician], (), roles=frozenset({"supervisor"})).candidates[0].responder == supervisor
    excluded = select([clinician], (), exclude=frozenset({clinician.responder_id}))
    assert excluded.shortfalls == ("everyone_qualified_already_paged",)  # on call, but already paged: not "nobody"


def test_already_paged_is_the_reason_only_when_the_people_left_out_could_have_taken_it() -> None:
    clinician = person(39.744, -104.988)
    nurse = person(39.75, -104.99, "nurse", skills=("nurse",))
    paged_before = frozenset({clinician.responder_id})
    assert select([clinician, nurse], ("naloxone_carrier",), exclude=paged_before).shortfalls == (
        "everyone_qualified_already_paged",
    )
    busy = replace(clinician, load=1)
    assert select([busy], ("naloxone_carrier",), exclude=paged_before).shortfalls == ("all_busy",)
    assert select([nurse], ("naloxone_carrier",), exclude=paged_before).shortfalls == ("nobody_with_skill",)


def test_the_grid_index_finds_the_same_people_as_measuring_everyone() -> None:
    rng = random.Random(7)
    people = [
        person(
            39.74 + rng.uniform(-0.4, 0.4),
            -104.99 + rng.uniform(-0.4, 0.4),
            load=rng.choice([0, 0, 0, 1]),
            skills=rng.choice([("naloxone_carrier",), ("licensed_clinician",), ()]),
        )
        for _ in range(3000)
    ]
    index = SpatialIndex()
    for p in people:
        index.place(p)
    roster = {p.responder_id: p for p in people}
    for _ in range(20):
        scene = (39.74 + rng.uniform(-0.3, 0.3), -104.99 + rng.uniform(-0.3, 0.3))
        request = Request(scene, NOW, 2, ("naloxone_carrier",))
        fast = select_candidates(roster, frozenset(roster), request, RULES, haversine_km, index).candidates
        naive = select_naively(roster, frozenset(roster), request, RULES, haversine_km)
        assert [c.responder.responder_id for c in fast] == [c.responder.responder_id for c in naive]


def test_the_ladder_climbs_candidates_then_supervisor_then_director() -> None:
    policy = PagingPolicy(candidate_steps=2)
    assert next_rung(Rung(1, "candidates"), "primary", policy) == Rung(2, "candidates")
    assert next_rung(Rung(2, "candidates"), "primary", policy) == Rung(3, "supervisor")
    assert next_rung(Rung(3, "supervisor"), "primary", policy) == Rung(4, "director")
    assert next_rung(Rung(4, "director"), "primary", policy) is None
    assert next_rung(Rung(1, "candidates"), "primary", policy, nobody_qualified=True) == Rung(2, "supervisor")
    assert next_rung(Rung(2, "candidates"), "peer", policy) is None


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ("Y 4821", Reply("accept", "4821")),
        ("  yes   4821 ", Reply("accept", "4821")),
        ("y#4821!", Reply("accept", "4821")),
        ("Y", Reply("accept")),
        ("n 4821", Reply("decline", "4821")),
        ("No", Reply("decline")),
        ("otw", Reply("en_route")),
        ("en route 4821", Reply("en_route", "4821")),
        ("ARRIVED", Reply("arrived")),
        ("On Scene", Reply("arrived")),
        ("done 4821", Reply("done", "4821")),
        ("Status", Reply("status")),
        ("help", Reply("help")),
        ("at  5th   and Main", Reply("at", place="5th and Main")),
        ("yes please", Reply("unknown")),
        ("Y 48", Reply("unknown")),
        ("", Reply("unknown")),
    ],
)
def test_replies_are_read_tolerantly(body: str, reply: Reply) -> None:
    assert parse_reply(body) == reply


def test_free_code_skips_codes_in_use_and_wraps() -> None:
    assert free_code("4821", set()) == "4821"
    assert free_code("4821", {"4821", "4822"}) == "4823"
    assert free_code("9999", {"9999"}) == "1000"


def test_resting_after_a_hard_call_is_passed_over_unless_nobody_else_can_go() -> None:
    """Issue 19: a responder resting after a death or a reversal is passed over (the page says how many were), and
    is paged, marked resting, only when nobody else can be; the rest ends at its time."""
    resting = person(39.744, -104.988, resting_until=NOW + timedelta(hours=8))
    other = person(39.80, -104.90)
    chosen = select([resting, other])
    assert [c.responder for c in chosen.candidates] == [other]
    assert chosen.passed_over_resting == 1 and not chosen.candidates[0].resting
    alone = select([resting])
    assert [c.responder for c in alone.candidates] == [resting]
    assert alone.candidates[0].resting and alone.passed_over_resting == 0
    rested = replace(resting, resting_until=NOW - timedelta(minutes=1))
    back = select([rested, other])
    assert [c.responder for c in back.candidates] == [rested] and back.passed_over_resting == 0
    assert select([resting], needs=("prescriber",)).shortfalls == ("nobody_with_skill",)  # rest is no excuse


def test_the_weekly_after_hours_cap_spares_a_person_unless_nobody_else_can_go() -> None:
    """Issue 19: at their after-hours cap (pages before 08:00, from 18:00 or at weekends in the last 7 days) a person
    is passed over after hours, paged marked capped when nobody else can be, and paged as usual in the daytime."""
    capped_rules = RoutingRules(after_hours_cap=2, zone="America/Denver")
    night = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 02:00 in Denver, a Tuesday
    day = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 11:00 in Denver
    tired = person(39.744, -104.988, after_hours_pages=(night - timedelta(days=1), night - timedelta(days=2)))
    fresh = person(39.80, -104.90, after_hours_pages=(night - timedelta(days=8), night - timedelta(days=9)))

    def pick(people, at):
        roster = {p.responder_id: p for p in people}
        request = Request(SCENE, at, 1, ("naloxone_carrier",))
        return select_candidates(roster, frozenset(roster), request, capped_rules, haversine_km)

    chosen = pick([tired, fresh], night)
    assert [c.responder for c in chosen.candidates] == [fresh] and chosen.passed_over_capped == 1
    alone = pick([tired], night)
    assert alone.candidates[0].responder == tired and alone.candidates[0].capped
    assert pick([tired, fresh], day).candidates[0].responder == tired  # the cap is about nights and weekends
