"""One incident, one ladder position: a two-person team (a clinician and a peer coach) climbs one ladder, each step
is escalated to once, and ``ladder_exhausted`` is recorded only when every step up to the director was tried.

Time is a ManualClock: deadlines are reached by moving it, never by waiting.
"""

# ruff: noqa: F811 - the fixtures (settings, harness) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from typing import Any

import pytest

from services.contract.events import Envelope
from tests import dispatch_factories as f
from tests.support.dispatch_harness import Harness, harness, of, settings  # noqa: F401

SELF_HARM_HIGH = ("self_harm_risk", "P1", ("licensed_clinician", "safety_precautions"))


@pytest.fixture
def crew(harness: Harness) -> dict[str, Any]:
    """Three clinicians, two peer coaches, a supervisor and a director, all on call in zone central."""
    clinical = ("licensed_clinician",)
    people = {
        "c1": f.responder("clinician", skills=clinical, home=(39.744, -104.988)),
        "c2": f.responder("clinician", skills=clinical, home=(39.75, -104.99)),
        "c3": f.responder("clinician", skills=clinical, home=(39.80, -104.90)),
        "p1": f.responder("peer_coach", skills=(), home=(39.746, -104.989)),
        "p2": f.responder("peer_coach", skills=(), home=(39.78, -104.95)),
        "supervisor": f.responder("supervisor", skills=clinical, home=(39.74, -104.99)),
        "director": f.responder("director", skills=clinical, home=(39.70, -104.95)),
    }
    harness.feed(*(f.registered(p) for p in people.values()))
    harness.feed(*(f.rotation([p.responder_id]) for p in people.values()))
    harness.new()
    return people


def escalations(events: list[Envelope]) -> list[tuple[int, int, str, str]]:
    return [(e.data.from_step, e.data.to_step, e.data.rung, e.data.reason) for e in of(events, "dispatch.escalated")]


def paged(events: list[Envelope], crew: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(who, step, team role) of each page offered."""
    names = {p.responder_id: name for name, p in crew.items()}
    return [(names[o.data.responder_id], o.data.step, o.data.reason.team_role) for o in of(events, "dispatch.offered")]


def shortfalls(events: list[Envelope]) -> list[tuple[int, list[str]]]:
    return [(u.data.step, u.data.shortfalls) for u in of(events, "dispatch.unfilled")]


def test_a_team_climbs_one_ladder_and_runs_out_only_after_the_director(harness, crew) -> None:
    start = harness.feed(f.incident(*SELF_HARM_HIGH))
    assert paged(start, crew) == [("c1", 1, "primary"), ("c2", 1, "primary"), ("p1", 1, "peer")]

    step2 = harness.tick(90)  # all three time out together: the incident climbs once, both slots are asked again
    assert escalations(step2) == [(1, 2, "candidates", "timed_out")]
    assert paged(step2, crew) == [("c3", 2, "primary"), ("p2", 2, "peer")]

    step3 = harness.tick(90)
    assert escalations(step3) == [(2, 3, "supervisor", "timed_out")]
    assert paged(step3, crew) == [("supervisor", 3, "supervisor")]
    assert shortfalls(step3) == [(2, ["peer_steps_exhausted"])]  # the team goes on without a peer; not exhausted

    step4 = harness.tick(90)
    assert escalations(step4) == [(3, 4, "director", "timed_out")]
    assert paged(step4, crew) == [("director", 4, "director")]
    assert shortfalls(step4) == []

    top = harness.tick(90)
    assert shortfalls(top) == [(4, ["ladder_exhausted"])]
    assert escalations(top) == []
    everything = harness.published()
    assert [s for _, s in shortfalls(everything)].count(["ladder_exhausted"]) == 1
    assert len(escalations(everything)) == 3  # one per step: the escalation metric counts steps


def test_a_peer_whose_page_ran_out_first_climbs_the_ladder_once_and_the_primary_catches_up(harness, crew) -> None:
    harness.feed(f.incident(*SELF_HARM_HIGH))
    harness.clock.advance(f.later(10))
    declined = harness.reply(crew["c1"].phone, "N 4821")  # replaced at once within step 1, with a later deadline
    assert paged(declined, crew) == [("c3", 1, "primary")]

    at_90 = harness.tick(80)  # c2 and p1 time out; c3 is still open, so only the peer's running out moves it
    assert escalations(at_90) == [(1, 2, "candidates", "timed_out")]
    assert paged(at_90, crew) == [("p2", 2, "peer")]

    at_100 = harness.tick(10)  # c3 times out: the primary catches up at step 2 (nobody left), then climbs
    assert shortfalls(at_100) == [(2, ["everyone_qualified_already_paged"])]
    [unfilled] = of(at_100, "dispatch.unfilled")
    assert unfilled.data.reason == "everyone qualified on call was already paged for this incident"
    assert escalations(at_100) == [(2, 3, "supervisor", "nobody_to_page")]
    assert paged(at_100, crew) == [("supervisor", 3, "supervisor")]
    assert len(escalations(harness.published())) == 2


def test_a_covered_team_seeks_its_peer_for_the_candidate_steps_then_goes_on_without(harness, crew) -> None:
    harness.feed(f.incident(*SELF_HARM_HIGH))
    accepted = harness.reply(crew["c1"].phone, "Y 4821")
    withdrawn = {e.data.responder_id for e in of(accepted, "dispatch.withdrawn")}
    assert withdrawn == {crew["c2"].responder_id}  # the peer's page stays open when a primary accepts

    step2 = harness.tick(90)
    assert escalations(step2) == [(1, 2, "candidates", "timed_out")]
    assert paged(step2, crew) == [("p2", 2, "peer")]

    ended = harness.tick(90)
    assert shortfalls(ended) == [(2, ["peer_steps_exhausted"])]
    assert escalations(ended) == [] and paged(ended, crew) == []  # no supervisor paged for a covered incident
    assert of(ended, "dispatch.alarm_raised") == []
    assert harness.tick(900) == []


def test_a_team_with_no_peer_coach_on_call_does_not_climb_for_the_peer(harness) -> None:
    clinicians = [f.responder("clinician", skills=("licensed_clinician",), home=(39.744, -104.988)) for _ in range(3)]
    harness.feed(*(f.registered(c) for c in clinicians), *(f.rotation([c.responder_id]) for c in clinicians))
    start = harness.feed(f.incident(*SELF_HARM_HIGH))
    assert [(o.data.step, o.data.reason.team_role) for o in of(start, "dispatch.offered")] == [(1, "primary")] * 2
    assert shortfalls(start) == [(1, ["nobody_on_call"]), (1, ["peer_steps_exhausted"])]
    assert escalations(start) == []  # the peer's empty pool does not move the incident's ladder
    step2 = harness.tick(90)
    assert escalations(step2) == [(1, 2, "candidates", "timed_out")]
    assert [(o.data.step, o.data.reason.team_role) for o in of(step2, "dispatch.offered")] == [(2, "primary")]
