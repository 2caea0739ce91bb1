"""The ladder's pure decisions: one position per incident, where a slot goes when its step ran out, and when
NOBODY ACCEPTED sounds and whom it tells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatcher.domain.incident import SlotState
from services.dispatcher.domain.ladder import Move, alarm_recipients, decide_escalation, plan_alarm
from services.dispatcher.domain.policy import AlarmPolicy, PagingPolicy, Rung
from services.dispatcher.domain.roster import ResponderView
from tests.factories import fake_phone

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = PagingPolicy()


def slot(name: str, step: int, rung: str = "candidates") -> SlotState:
    return SlotState(name=name, step=step, rung=rung, tried=(), covered_by=None, active=True, from_step=None)


@pytest.mark.parametrize(
    ("position", "state", "reason", "move", "to"),
    [
        # at the ladder's position: climb it
        (Rung(1, "candidates"), slot("primary", 1), "timed_out", Move.CLIMB, Rung(2, "candidates")),
        (Rung(1, "candidates"), slot("primary", 1), "nobody_qualified", Move.CLIMB, Rung(2, "supervisor")),
        (Rung(2, "candidates"), slot("primary", 2), "declined", Move.CLIMB, Rung(3, "supervisor")),
        (Rung(3, "supervisor"), slot("primary", 3, "supervisor"), "timed_out", Move.CLIMB, Rung(4, "director")),
        (Rung(4, "director"), slot("primary", 4, "director"), "timed_out", Move.EXHAUSTED, None),
        # a peer climbs the candidate steps only, and only after a page of its own ran out
        (Rung(1, "candidates"), slot("peer", 1), "timed_out", Move.CLIMB, Rung(2, "candidates")),
        (Rung(2, "candidates"), slot("peer", 2), "timed_out", Move.SLOT_ENDS, None),
        (Rung(1, "candidates"), slot("peer", 1), "nobody_to_page", Move.SLOT_ENDS, None),
        (Rung(1, "candidates"), slot("peer", 1), "nobody_qualified", Move.SLOT_ENDS, None),
        # behind the ladder (its pages were still open when it climbed): catch up, no new escalation
        (Rung(2, "candidates"), slot("primary", 1), "timed_out", Move.CATCH_UP, Rung(2, "candidates")),
        (Rung(3, "supervisor"), slot("primary", 2), "timed_out", Move.CATCH_UP, Rung(3, "supervisor")),
        (Rung(2, "candidates"), slot("peer", 1), "timed_out", Move.CATCH_UP, Rung(2, "candidates")),
        (Rung(3, "supervisor"), slot("peer", 2), "timed_out", Move.SLOT_ENDS, None),
        (Rung(2, "supervisor"), slot("peer", 1), "nobody_to_page", Move.SLOT_ENDS, None),
    ],
)
def test_where_a_slot_goes_when_its_step_ran_out(position, state, reason, move, to) -> None:
    decision = decide_escalation(position, state, POLICY, reason)
    assert (decision.move, decision.to) == (move, to)


def test_only_the_primary_response_exhausts_the_ladder() -> None:
    top = Rung(4, "director")
    assert decide_escalation(top, slot("primary", 4, "director"), POLICY, "timed_out").reason.startswith("every step")
    assert "peer coach" in decide_escalation(top, slot("peer", 2), POLICY, "timed_out").reason


def test_the_alarm_sounds_for_p1_and_p2_calls_for_p1_and_counts_whole_minutes() -> None:
    policy = AlarmPolicy(repeat_every=timedelta(seconds=120))
    reported = NOW - timedelta(minutes=6, seconds=59)
    p1 = plan_alarm("P1", reported, 0, policy, NOW)
    p2 = plan_alarm("P2", reported, 2, policy, NOW)
    assert p1 is not None and (p1.repeat, p1.voice, p1.minutes_since_report) == (1, True, 6)
    assert p1.next_at == NOW + timedelta(seconds=120)
    assert p2 is not None and (p2.repeat, p2.voice) == (3, False)
    assert plan_alarm("P3", reported, 0, policy, NOW) is None
    assert plan_alarm("P1", NOW + timedelta(seconds=5), 0, policy, NOW).minutes_since_report == 0  # clocks skew


def view(role: str, active: bool = True) -> ResponderView:
    return ResponderView(uuid4(), "Generated", role, fake_phone(), (39.7, -104.9), active=active)


def test_the_alarm_tells_the_zone_supervisors_and_the_directors_on_call() -> None:
    zone_supervisor, elsewhere, director, off_duty_director = (
        view("supervisor"),
        view("supervisor"),
        view("director"),
        view("director"),
    )
    anywhere = [zone_supervisor, elsewhere, director, view("clinician")]
    chosen = alarm_recipients([zone_supervisor], anywhere, [director, off_duty_director])
    assert chosen == [zone_supervisor, director]


def test_with_nobody_on_call_in_the_zone_every_supervisor_on_call_and_every_active_director_is_told() -> None:
    supervisors = [view("supervisor"), view("supervisor")]
    directors = [view("director"), view("director"), view("director", active=False)]
    assert alarm_recipients([], supervisors, directors) == [*supervisors, *directors[:2]]
    assert alarm_recipients([], [], []) == []
