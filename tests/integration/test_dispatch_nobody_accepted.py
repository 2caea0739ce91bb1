"""NOBODY ACCEPTED: when the ladder ran out on a P1 or P2 incident, the supervisors and clinical directors are told
at once (texted; P1 also called) and again at an interval, until someone accepts, the incident is cancelled or a
disposition is recorded. The repeat is a deadline in the store: a restarted dispatcher carries on.

Time is a ManualClock: every sounding is reached by moving it, never by waiting.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    Envelope,
    IncidentCancelled,
    IncidentCancelledData,
    IncidentReported,
    new_event,
)
from services.dispatcher.bootstrap import build
from services.notifier.domain.templates import VOICE_TEMPLATES, render
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, of, settings, team  # noqa: F401

# what a text must never say (DOMAIN.md): the condition, a substance, anything the reporter typed
CONDITION_WORDS = re.compile(r"overdos|withdraw|self.?harm|suicid|naloxon|opioid|alcohol", re.IGNORECASE)
P1_LADDER_SECONDS = (90, 90, 90, 90)  # two candidate steps, the supervisor, the director
P2_LADDER_SECONDS = (300, 300, 300, 300)


def climb_to_the_top(harness: Harness, reported: IncidentReported, steps: tuple[int, ...]) -> list[Envelope]:
    """Report the incident and let every step of its ladder time out: what the last step published."""
    harness.feed(reported)
    for seconds in steps[:-1]:
        harness.tick(seconds)
    return harness.tick(steps[-1])


def alerts(events: list[Envelope]) -> list[tuple[str, str, str]]:
    """(to, template, channel) of each NOBODY ACCEPTED message."""
    return [
        (e.data.to, e.data.template, e.data.channel)
        for e in of(events, "notification.requested")
        if e.data.template.startswith("nobody_accepted")
    ]


def answered(events: list[Envelope]) -> list[tuple[str, str, dict[str, Any]]]:
    """(to, channel, params) of each "the alarm ended" text."""
    return [
        (e.data.to, e.data.channel, e.data.params)
        for e in of(events, "notification.requested")
        if e.data.template == "alarm_answered"
    ]


def on_the_record(incident_id: UUID, event_class: type[Envelope], data: Any) -> Envelope:
    return new_event(event_class, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id)


def cancelled(incident_id: UUID) -> Envelope:
    return on_the_record(incident_id, IncidentCancelled, IncidentCancelledData(incident_id=incident_id, reason="x"))


def documented(incident_id: UUID, **fields: Any) -> Envelope:
    data = DocumentationFieldsCompletedData(
        incident_id=incident_id, fields=DocumentationFields(**fields), completed_by="director-1"
    )
    return on_the_record(incident_id, DocumentationFieldsCompleted, data)


def test_a_p1_ladder_that_ran_out_texts_and_calls_the_supervisor_and_the_director_at_once(harness, team) -> None:
    reported = f.incident()  # overdose, P1
    top = climb_to_the_top(harness, reported, P1_LADDER_SECONDS)

    assert [u.data.shortfalls for u in of(top, "dispatch.unfilled")] == [["ladder_exhausted"]]
    [raised] = of(top, "dispatch.alarm_raised")
    assert (raised.data.repeat, raised.data.voice, raised.data.minutes_since_report) == (1, True, 6)
    assert [(n.responder_id, n.role) for n in raised.data.notified] == [
        (team["supervisor"].responder_id, "supervisor"),
        (team["director"].responder_id, "director"),
    ]
    assert raised.data.next_at == T0 + timedelta(seconds=360 + 120)
    assert alerts(top) == [
        (team["supervisor"].phone, "nobody_accepted", "sms"),
        (team["supervisor"].phone, "nobody_accepted_call", "voice"),
        (team["director"].phone, "nobody_accepted", "sms"),
        (team["director"].phone, "nobody_accepted_call", "voice"),
    ]
    requests = [e for e in of(top, "notification.requested") if e.data.template.startswith("nobody_accepted")]
    assert {r.data.priority for r in requests} == {"P1"}
    assert {r.data.incident_id for r in requests} == {reported.data.incident_id}  # on the incident's timeline
    params = requests[0].data.params
    assert params == {"priority": "P1", "code": "4821", "kind": "overdose", "minutes_since_report": 6, "repeat": 1}
    for request in requests:
        text = render(request.data.template, request.data.params, request.data.language).text
        assert not CONDITION_WORDS.search(text), text
        assert reported.data.location.address not in text
        assert request.data.template in VOICE_TEMPLATES or len(text) <= 160
    assert render("nobody_accepted", params).text == (
        "NOBODY ACCEPTED P1 4821 (urgent medical response), reported 6 min ago. Alert 1. "
        "Assign someone now on the dispatch board."
    )


def test_it_sounds_again_at_the_interval_and_never_twice_for_one_interval(harness, team) -> None:
    climb_to_the_top(harness, f.incident(), P1_LADDER_SECONDS)
    assert harness.app.next_deadline() == T0 + timedelta(seconds=480)  # the ticker wakes for it

    assert harness.tick(119) == []
    second = harness.tick(1)
    assert [(a.data.repeat, a.data.minutes_since_report) for a in of(second, "dispatch.alarm_raised")] == [(2, 8)]
    assert len(alerts(second)) == 4
    assert [a.data.repeat for a in of(harness.tick(120), "dispatch.alarm_raised")] == [3]
    late = harness.tick(1000)  # the ticker was held up: one sounding now, not one for each interval missed
    assert [a.data.repeat for a in of(late, "dispatch.alarm_raised")] == [4]


def test_the_interval_is_a_setting(settings) -> None:
    clock = ManualClock(T0)
    with build(settings.model_copy(update={"nobody_accepted_repeat_seconds": 300}), clock) as app:
        harness = Harness(app, clock)
        director = f.responder("director", skills=())
        harness.feed(f.registered(director), f.rotation([director.responder_id]))
        first = harness.feed(f.incident())  # only a director on call: paged at once, every lower step empty
        assert of(first, "dispatch.alarm_raised") == []
        assert [a.data.repeat for a in of(harness.tick(90), "dispatch.alarm_raised")] == [1]
        assert harness.tick(299) == []
        assert [a.data.repeat for a in of(harness.tick(1), "dispatch.alarm_raised")] == [2]


def test_a_p2_ladder_that_ran_out_texts_without_calling(harness, team) -> None:
    top = climb_to_the_top(harness, f.incident("withdrawal", "P2", ("medical_review",)), P2_LADDER_SECONDS)
    [raised] = of(top, "dispatch.alarm_raised")
    assert raised.data.voice is False and raised.data.priority == "P2"
    assert {channel for _, _, channel in alerts(top)} == {"sms"}
    assert len(alerts(top)) == 2
    assert {channel for _, _, channel in alerts(harness.tick(120))} == {"sms"}


def test_a_p3_ladder_that_ran_out_sounds_no_alarm(harness, team) -> None:
    top = climb_to_the_top(harness, f.incident("withdrawal", "P3", ()), (900, 900, 900, 900))
    assert [u.data.shortfalls for u in of(top, "dispatch.unfilled")] == [["ladder_exhausted"]]
    assert of(top, "dispatch.alarm_raised") == [] and alerts(top) == []
    assert harness.tick(3600) == []


def test_a_late_acceptance_stops_it(harness, team) -> None:
    climb_to_the_top(harness, f.incident(), P1_LADDER_SECONDS)
    harness.tick(120)
    accepted = harness.reply(team["near"].phone, "Y 4821")  # the first page, which timed out six minutes ago
    assert len(of(accepted, "dispatch.acknowledged")) == 1
    [stopped] = of(accepted, "dispatch.alarm_stopped")
    assert (stopped.data.reason, stopped.data.repeats) == ("accepted", 2)
    # everyone the alarm was sounding for is told it is covered, by text only
    told = answered(accepted)
    assert sorted(to for to, _, _ in told) == sorted({team["supervisor"].phone, team["director"].phone})
    assert {(channel, params["reason"], params["code"]) for _, channel, params in told} == {("sms", "accepted", "4821")}
    assert harness.tick(600) == []
    assert harness.app.next_deadline() is None


def test_cancelling_the_incident_stops_it(harness, team) -> None:
    reported = f.incident()
    climb_to_the_top(harness, reported, P1_LADDER_SECONDS)
    out = harness.feed(cancelled(reported.data.incident_id))
    assert [(s.data.reason, s.data.repeats) for s in of(out, "dispatch.alarm_stopped")] == [("cancelled", 1)]
    assert {params["reason"] for _, _, params in answered(out)} == {"cancelled"} and len(answered(out)) == 2
    assert harness.tick(600) == []


def test_a_recorded_disposition_stops_it_and_other_documentation_does_not(harness, team) -> None:
    reported = f.incident()
    incident_id = reported.data.incident_id
    climb_to_the_top(harness, reported, P1_LADDER_SECONDS)
    assert harness.feed(documented(incident_id, notes="called the caller back")) == []
    assert len(of(harness.tick(120), "dispatch.alarm_raised")) == 1
    out = harness.feed(documented(incident_id, disposition="unable_to_locate"))
    assert [s.data.reason for s in of(out, "dispatch.alarm_stopped")] == ["disposition_recorded"]
    assert harness.tick(600) == []


def test_an_acceptance_before_the_top_means_no_alarm(harness, team) -> None:
    harness.feed(f.incident())
    harness.tick(90)
    out = harness.reply(team["second"].phone, "Y 4821")
    assert of(out, "dispatch.alarm_stopped") == []
    assert all(of(harness.tick(90 * n), "dispatch.alarm_raised") == [] for n in range(1, 6))


@pytest.mark.parametrize("snapshotted", [False, True], ids=["events", "snapshots"])
def test_it_survives_a_restart(settings, snapshotted: bool) -> None:
    """The next sounding is in the store: a dispatcher restarted after it passed sounds it on its first tick,
    once, and carries on at the interval (from events alone, or from snapshots of every aggregate)."""
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        harness = Harness(app, clock)
        supervisor, director = f.responder("supervisor", skills=()), f.responder("director", skills=())
        harness.feed(*(f.registered(p) for p in (supervisor, director)))
        harness.feed(*(f.rotation([p.responder_id]) for p in (supervisor, director)))
        reported = f.incident()
        harness.feed(reported)
        top = harness.tick(90) + harness.tick(90)  # steps 1-2 empty: supervisor, then director paged
        assert [a.data.repeat for a in of(top, "dispatch.alarm_raised")] == [1]
        if snapshotted:
            for aggregate_id in {n.originator_id for n in app.recorder.select_notifications(start=1, limit=10_000)}:
                app.take_snapshot(aggregate_id)
        pending = harness.sequence
    clock.advance(timedelta(minutes=10))  # the dispatcher is down while the alarm is due, several times over
    with build(settings, clock) as restarted:
        harness = harness.resume(restarted, pending)
        assert restarted.next_deadline() == T0 + timedelta(seconds=180 + 120)
        assert restarted.fire_due() == 1
        fired = harness.new()
        assert [(a.data.repeat, a.data.minutes_since_report) for a in of(fired, "dispatch.alarm_raised")] == [(2, 13)]
        assert len(alerts(fired)) == 4
        assert restarted.fire_due() == 0
        assert [a.data.repeat for a in of(harness.tick(120), "dispatch.alarm_raised")] == [3]
        out = harness.feed(cancelled(reported.data.incident_id))
        assert [(s.data.reason, s.data.repeats) for s in of(out, "dispatch.alarm_stopped")] == [("cancelled", 3)]
