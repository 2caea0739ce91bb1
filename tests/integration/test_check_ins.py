"""Safety check-ins on a real dispatcher store, with a moved clock: ARRIVED starts a responder's timer, the prompt
comes before it is due, a missed one climbs reminder -> call -> supervisor and partner -> 911, each step once and
in order, across a restart and two instances; OK restarts it, CLEAR and DONE end it, a cancellation ends every one.
Pairs only, a late ETA and EMS not confirmed prompt the supervisor once.

Time is a ManualClock (``harness.tick``); the texts are rendered by the notifier's templates to check their words.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from services.contract.events import (
    Envelope,
    IncidentCancelled,
    IncidentCancelledData,
    IncidentReported,
    IncidentReportedData,
    ProgressReported,
    ProgressReportedData,
    new_event,
    place_ref,
)
from services.dispatcher.bootstrap import build
from services.dispatcher.unit_of_work import UnitOfWork
from services.notifier.domain.templates import render
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401

MINUTE = 60
STEPS = ["reminder", "call", "supervisor_paged", "call_911"]


def texts(events: list[Envelope]) -> list[tuple[str, str, str]]:
    """(to, template, channel) of every message requested."""
    return [(e.data.to, e.data.template, e.data.channel) for e in of(events, "notification.requested")]


def text_of(request: Envelope) -> str:
    return render(request.data.template, request.data.params, request.data.language).text


def on_scene(harness: Harness, who, code: str = "4821", **incident) -> IncidentReported:
    """A P2 withdrawal (nobody else paged once accepted) that ``who`` accepted and arrived at."""
    reported = f.incident("withdrawal", "P2", ("medical_review",), short_code=code, **incident)
    harness.feed(reported)
    assert of(harness.reply(who.phone, f"Y {code}"), "dispatch.acknowledged")
    started = of(harness.reply(who.phone, f"ARRIVED {code}"), "checkin.started")
    assert [(s.data.responder_id, s.data.minutes, s.data.channel) for s in started] == [(who.responder_id, 15, "sms")]
    assert started[0].data.due_at == harness.clock.now() + timedelta(minutes=15)
    return reported


def clinician():
    return f.responder(skills=("naloxone_carrier", "licensed_clinician"), home=(39.744, -104.988))


def cancel(incident_id) -> Envelope:
    data = IncidentCancelledData(incident_id=incident_id, reason="false alarm")
    return new_event(
        IncidentCancelled, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


def test_a_missed_check_in_climbs_every_step_once_and_in_order(harness, team) -> None:
    near, supervisor = team["near"], team["supervisor"]
    on_scene(harness, near)

    assert harness.tick(12 * MINUTE) == []
    prompt = harness.tick(1 * MINUTE)  # 2 minutes before it is due
    assert [e.type for e in prompt] == ["checkin.prompted", "notification.requested"]
    assert texts(prompt) == [(near.phone, "checkin_prompt", "sms")]
    # 09:15 UTC is 02:15 in the organisation's zone (America/Denver)
    assert text_of(of(prompt, "notification.requested")[0]) == (
        "Safety check-in for 4821: reply OK 4821 by 02:15 (CLEAR 4821 when you leave)."
    )
    assert harness.tick(1 * MINUTE) == []

    reminder = harness.tick(1 * MINUTE)  # due, no answer
    assert [m.data.step for m in of(reminder, "checkin.missed")] == ["reminder"]
    assert texts(reminder) == [(near.phone, "checkin_reminder", "sms")]
    assert harness.tick(1 * MINUTE) == []
    call = harness.tick(1 * MINUTE)
    assert [m.data.step for m in of(call, "checkin.missed")] == ["call"]
    assert texts(call) == [(near.phone, "checkin_call", "voice")]
    assert "reply to our text with OK" in text_of(of(call, "notification.requested")[0])  # keys: the keypad prompt
    paged = harness.tick(3 * MINUTE)
    [missed] = of(paged, "checkin.missed")
    assert (missed.data.step, missed.data.minutes_overdue) == ("supervisor_paged", 5)
    assert missed.data.notified == [supervisor.responder_id]
    assert missed.data.last_known.source == "scene"
    assert (missed.data.last_known.lat, missed.data.last_known.lon) == f.SCENE
    assert texts(paged) == [(supervisor.phone, "checkin_missed_alert", "sms")]
    alert = of(paged, "notification.requested")[0]
    assert alert.data.params["zone"] == place_ref("central") and alert.data.priority == "P1"
    assert text_of(alert).startswith(f"CHECK-IN MISSED: {near.name} on 4821, 5 min overdue.")
    call_911 = harness.tick(5 * MINUTE)
    assert [m.data.step for m in of(call_911, "checkin.missed")] == ["call_911"]
    assert texts(call_911) == [(supervisor.phone, "checkin_call_911", "sms")]
    assert text_of(of(call_911, "notification.requested")[0]).startswith(f"CALL 911 NOW: {near.name} (4821)")
    assert harness.tick(60 * MINUTE) == []  # every step fired once; nothing is left


def test_the_team_partner_is_paged_with_the_supervisor(harness, team) -> None:
    near, peer, supervisor = team["near"], team["peer"], team["supervisor"]
    harness.feed(f.incident())  # P1: pages near and peer; with backup, both end up on it
    harness.reply(near.phone, "Y 4821")
    harness.reply(peer.phone, "Si 4821")
    harness.reply(near.phone, "ARRIVED 4821")
    out = harness.tick(25 * MINUTE)  # every step of the near clinician's check-in is due by now: all fire, in order
    assert [m.data.step for m in of(out, "checkin.missed")] == STEPS
    [paged] = [m for m in of(out, "checkin.missed") if m.data.step == "supervisor_paged"]
    assert paged.data.notified == [supervisor.responder_id, peer.responder_id]
    alerts = [(to, template) for to, template, _ in texts(out) if template == "checkin_missed_alert"]
    assert alerts == [(supervisor.phone, "checkin_missed_alert"), (peer.phone, "checkin_missed_alert")]


def test_ok_restarts_the_timer_and_is_confirmed_with_the_next_time(harness, team) -> None:
    near = team["near"]
    on_scene(harness, near)
    harness.tick(13 * MINUTE)  # the prompt
    ok = harness.reply(near.phone, "OK 4821")
    [confirmed] = of(ok, "checkin.confirmed")
    assert confirmed.data.next_due_at == T0 + timedelta(minutes=28)
    assert texts(ok) == [(near.phone, "checkin_confirmed", "sms")]
    assert text_of(of(ok, "notification.requested")[0]) == "OK noted for 4821, next check-in by 02:28."
    assert harness.tick(5 * MINUTE) == []  # the old due time passes: nothing
    assert [e.type for e in harness.tick(8 * MINUTE)] == ["checkin.prompted", "notification.requested"]
    harness.reply(near.phone, "ok")  # the code may be left out with one incident
    assert harness.tick(12 * MINUTE) == []


def test_clear_ends_the_check_in(harness, team) -> None:
    near = team["near"]
    on_scene(harness, near)
    out = harness.reply(near.phone, "CLEAR 4821")
    [ended] = of(out, "checkin.ended")
    assert (ended.data.reason, ended.data.channel) == ("clear", "sms")
    assert texts(out) == [(near.phone, "checkin_cleared", "sms")]
    assert harness.tick(60 * MINUTE) == []


def test_done_ends_the_check_in(harness, team) -> None:
    near = team["near"]
    on_scene(harness, near)
    out = harness.reply(near.phone, "DONE 4821")
    assert [e.data.reason for e in of(out, "checkin.ended")] == ["done"]
    assert of(out, "dispatch.completed")
    assert harness.tick(60 * MINUTE) == []


def test_a_cancelled_incident_ends_every_check_in(harness, team) -> None:
    near, peer = team["near"], team["peer"]
    reported = f.incident()
    harness.feed(reported)
    harness.reply(near.phone, "Y 4821")
    harness.reply(peer.phone, "Si 4821")
    harness.reply(near.phone, "ARRIVED")
    harness.reply(peer.phone, "LLEGUE")
    out = harness.feed(cancel(reported.data.incident_id))
    ended = of(out, "checkin.ended")
    assert {(e.data.responder_id, e.data.reason) for e in ended} == {
        (near.responder_id, "cancelled"),
        (peer.responder_id, "cancelled"),
    }
    assert harness.tick(60 * MINUTE) == []


def test_arrived_on_the_incident_page_starts_the_check_in_too(harness, team) -> None:
    near = team["near"]
    reported = f.incident("withdrawal", "P2", ("medical_review",))
    harness.feed(reported)
    harness.reply(near.phone, "Y 4821")
    pressed = new_event(
        ProgressReported,
        ProgressReportedData(
            incident_id=reported.data.incident_id,
            responder_id=near.responder_id,
            stage="arrived",
            reported_by="clinician-user",
        ),
        event_id=uuid4(),
        occurred_at=T0,
        producer="tests",
        incident_id=reported.data.incident_id,
    )
    started = of(harness.feed(pressed), "checkin.started")
    assert [(s.data.responder_id, s.data.channel) for s in started] == [(near.responder_id, "app")]


def test_two_responders_on_one_incident_each_have_their_own_timer(harness, team) -> None:
    near, peer = team["near"], team["peer"]
    harness.feed(f.incident())
    harness.reply(near.phone, "Y 4821")
    harness.reply(peer.phone, "Si 4821")
    harness.reply(near.phone, "ARRIVED")
    harness.tick(5 * MINUTE)
    harness.reply(peer.phone, "LLEGUE")
    harness.reply(near.phone, "CLEAR")
    prompted = harness.tick(14 * MINUTE)  # only the peer's check-in is still running
    assert texts(prompted) == [(peer.phone, "checkin_prompt", "sms")]
    assert text_of(of(prompted, "notification.requested")[0]).startswith(
        "Control de seguridad 4821: responda OK 4821 antes de las 02:20"
    )
    out = harness.tick(10 * MINUTE)
    assert {m.data.responder_id for m in of(out, "checkin.missed")} == {peer.responder_id}


def test_the_steps_fire_once_across_a_restart(settings) -> None:
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        harness = Harness(app, clock)
        near = clinician()
        boss = f.responder("supervisor", skills=())
        near = near.model_copy(update={"supervisor_id": boss.responder_id})
        harness.feed(*(f.registered(p) for p in (near, boss)), *(f.rotation([p.responder_id]) for p in (near, boss)))
        on_scene(harness, near)
        first = harness.tick(16 * MINUTE)  # prompt and reminder
        assert [m.data.step for m in of(first, "checkin.missed")] == ["reminder"]
        pending = harness.sequence
    clock.advance(timedelta(minutes=30))  # down while the other steps pass
    with build(settings, clock) as restarted:
        harness = Harness(restarted, clock)
        harness.sequence, harness.seen = pending, len(harness.published())
        assert restarted.fire_due() == 3
        fired = harness.new()
        assert [m.data.step for m in of(fired, "checkin.missed")] == ["call", "supervisor_paged", "call_911"]
        assert restarted.fire_due() == 0
        assert harness.tick(60 * MINUTE) == []
    with build(settings, clock) as again:  # a third start: nothing fires again
        assert again.fire_due() == 0


def test_two_instances_on_one_store_fire_each_step_once(settings, database_url) -> None:
    settings = settings.model_copy(update={"database_url": database_url})
    clock = ManualClock(T0)
    with build(settings, clock) as one, build(settings, clock) as two:
        harness = Harness(one, clock)
        near = clinician()
        harness.feed(f.registered(near), f.rotation([near.responder_id]))
        reported = on_scene(harness, near)
        clock.advance(timedelta(minutes=13))
        two.catch_up()
        incident_id = reported.data.incident_id
        work = UnitOfWork(two.repository)  # the second instance is mid-way through firing the same deadline...
        stale = work.incident(incident_id)
        assert two.pager.fire_due(work, stale, clock.now()) == 1
        assert one.fire_due() == 1  # ...when the first fires it and saves first
        with pytest.raises(IntegrityError):
            two.save(*work.aggregates())  # so the second's save conflicts and is dropped
        assert two.fire_due() == 0  # and, caught up, it finds nothing left to fire
        prompted = of(harness.new(), "checkin.prompted")
        assert len(prompted) == 1
        clock.advance(timedelta(minutes=30))
        assert two.fire_due() == 4  # prompt already sent: the four steps, by whichever instance gets there
        assert one.fire_due() == 0
        assert [m.data.step for m in of(harness.new(), "checkin.missed")] == STEPS


# ---- pairs only ------------------------------------------------------------------------------------------


def self_harm_risk(risk: str) -> IncidentReported:
    incident_id = uuid4()
    data = IncidentReportedData.model_validate(
        {
            "incident_id": incident_id,
            "short_code": "5150",
            "kind": "self_harm_risk",
            "priority": "P1",
            "needs": ["licensed_clinician"],
            "guidance": [],
            "location": {"lat": f.SCENE[0], "lon": f.SCENE[1]},
            "reporter": {"channel": "hotline"},
            "assessment": {"risk_level": risk, "reasons": []},
            "zone": "central",
        }
    )
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


def test_alone_on_a_pairs_only_incident_the_responder_is_told_to_wait_and_the_supervisor_sees_it(harness, team) -> None:
    near, peer, supervisor = team["near"], team["peer"], team["supervisor"]
    offered = of(harness.feed(self_harm_risk("high")), "dispatch.offered")
    assert {near.responder_id, peer.responder_id} <= {o.data.responder_id for o in offered}  # clinician + peer
    first = harness.reply(near.phone, "Y 5150")
    [wait] = of(first, "field.pair_wait")
    assert (wait.data.responder_id, wait.data.rule, wait.data.supervisor_id) == (
        near.responder_id,
        "self_harm_risk:high",
        supervisor.responder_id,
    )
    sent = {(to, template) for to, template, _ in texts(first)}
    assert {(near.phone, "pair_wait"), (supervisor.phone, "pair_alert")} <= sent
    [told] = [m for m in of(first, "notification.requested") if m.data.template == "pair_wait"]
    assert text_of(told) == ("5150 needs two responders: wait for your partner before going in. Your supervisor knows.")
    second = harness.reply(peer.phone, "Si 5150")  # the partner: now they are two
    assert of(second, "field.pair_wait") == []


def test_a_lower_risk_is_not_pairs_only(harness, team) -> None:
    harness.feed(self_harm_risk("low"))
    assert of(harness.reply(team["near"].phone, "Y 5150"), "field.pair_wait") == []


# ---- ETA overdue, EMS not confirmed --------------------------------------------------------------------------


def note(app, incident_id, method: str, **kwargs) -> None:
    """Record a field report on the incident as F2's reply handlers do (``note_eta``, ``note_ems_called``...)."""
    incident = app.repository.get(incident_id)
    getattr(incident, method)(**kwargs, caused_by=uuid4(), at=app.clock.now())
    app.save(incident)


def test_a_responder_late_against_their_eta_prompts_the_supervisor_once(harness, team) -> None:
    near, supervisor = team["near"], team["supervisor"]
    reported = f.incident("withdrawal", "P2", ("medical_review",))
    harness.feed(reported)
    harness.reply(near.phone, "Y 4821")
    eta = T0 + timedelta(minutes=12)
    note(harness.app, reported.data.incident_id, "note_eta", responder_id=near.responder_id, minutes=12, eta_at=eta,
         message_sid=None)  # fmt: skip
    harness.new()
    assert harness.tick(21 * MINUTE) == []  # ETA + 10 minutes' grace is 22 minutes
    late = harness.tick(1 * MINUTE)
    [overdue] = of(late, "field.eta_overdue")
    assert (overdue.data.responder_id, overdue.data.minutes_late, overdue.data.supervisor_id) == (
        near.responder_id,
        10,
        supervisor.responder_id,
    )
    assert texts(late) == [(supervisor.phone, "eta_overdue", "sms")]
    assert text_of(of(late, "notification.requested")[0]) == (
        f"{near.name} is 10 min past their ETA for 4821 and has not arrived. Please check."
    )
    assert harness.tick(60 * MINUTE) == []


def test_arriving_in_time_prompts_nobody(harness, team) -> None:
    near = team["near"]
    reported = f.incident("withdrawal", "P2", ("medical_review",))
    harness.feed(reported)
    harness.reply(near.phone, "Y 4821")
    note(harness.app, reported.data.incident_id, "note_eta", responder_id=near.responder_id, minutes=5,
         eta_at=T0 + timedelta(minutes=5), message_sid=None)  # fmt: skip
    harness.tick(10 * MINUTE)
    harness.reply(near.phone, "ARRIVED")
    assert of(harness.tick(30 * MINUTE), "field.eta_overdue") == []


def overdose(reporter_called_ems: bool) -> IncidentReported:
    reported = f.incident()
    raw = reported.data.model_dump(mode="json")
    raw["overdose"] = {"responsive": False, "breathing": True, "ems_called": reporter_called_ems}
    data = IncidentReportedData.model_validate(raw)
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=data.incident_id
    )


def test_ems_not_confirmed_after_the_reporter_called_prompts_the_supervisor_once(harness, team) -> None:
    near, supervisor = team["near"], team["supervisor"]
    harness.feed(overdose(reporter_called_ems=True))
    harness.reply(near.phone, "Y 4821")
    out = [e for _ in range(19) for e in harness.tick(MINUTE)]
    assert of(out, "field.ems_overdue") == []
    prompt = harness.tick(MINUTE)
    [overdue] = of(prompt, "field.ems_overdue")
    assert (overdue.data.since, overdue.data.minutes_waited, overdue.data.supervisor_id) == (
        T0,
        20,
        supervisor.responder_id,
    )
    [request] = [m for m in of(prompt, "notification.requested") if m.data.template == "ems_overdue"]
    assert request.data.to == supervisor.phone
    assert text_of(request) == "EMS not confirmed on scene for 4821 20 min after 911 was called. Please check."
    assert of(harness.tick(60 * MINUTE), "field.ems_overdue") == []


def test_ems_wait_starts_when_911_is_called_and_ends_when_ems_arrives(harness, team) -> None:
    near = team["near"]
    reported = overdose(reporter_called_ems=False)  # the reporter had not called: nothing to wait for yet
    harness.feed(reported)
    harness.reply(near.phone, "Y 4821")
    assert of(harness.tick(30 * MINUTE), "field.ems_overdue") == []
    incident_id = reported.data.incident_id
    note(harness.app, incident_id, "note_ems_called", called_at=harness.clock.now(), responder_id=near.responder_id,
         channel="sms", message_sid=None)  # fmt: skip
    assert of(harness.tick(19 * MINUTE), "field.ems_overdue") == []
    note(harness.app, incident_id, "note_ems_arrived", arrived_at=harness.clock.now())
    assert of(harness.tick(30 * MINUTE), "field.ems_overdue") == []


# ---- duress (the full stack's test is test_duress_word.py) -------------------------------------------------


@pytest.fixture
def duress_settings(settings):
    return settings.model_copy(update={"duress_words": "pineapple, blue heron"})


def test_a_duress_word_is_answered_exactly_like_ok_and_pages_the_supervisor(duress_settings) -> None:
    clock = ManualClock(T0)
    with build(duress_settings, clock) as app:
        harness = Harness(app, clock)
        boss = f.responder("supervisor", skills=())
        near = clinician().model_copy(update={"supervisor_id": boss.responder_id})
        harness.feed(*(f.registered(p) for p in (near, boss)), *(f.rotation([p.responder_id]) for p in (near, boss)))
        on_scene(harness, near)
        plain = harness.reply(near.phone, "OK 4821")
        harness.tick(MINUTE)
        duress = harness.reply(near.phone, "ok 4821 pineapple")
        to_responder = [m for m in of(duress, "notification.requested") if m.data.to == near.phone]
        [expected] = of(plain, "notification.requested")
        assert [(m.data.template, m.data.language) for m in to_responder] == [("checkin_confirmed", "en")]
        assert text_of(to_responder[0]) == "OK noted for 4821, next check-in by 02:16."
        assert text_of(expected) == "OK noted for 4821, next check-in by 02:15."
        [signal] = of(duress, "checkin.duress")
        assert signal.data.notified == [boss.responder_id] and signal.data.last_known.source == "scene"
        [alert] = [m for m in of(duress, "notification.requested") if m.data.to == boss.phone]
        assert (alert.data.template, alert.data.priority) == ("duress_alert", "P1")
        assert text_of(alert).startswith(f"SILENT ALERT: {near.name} (4821) may be in danger.")
        for event in duress:
            assert b"pineapple" not in event.to_json().lower()


def test_the_eta_and_911_texted_by_the_responder_start_the_same_prompts(harness, team) -> None:
    near, supervisor = team["near"], team["supervisor"]
    harness.feed(overdose(reporter_called_ems=False))
    assert of(harness.reply(near.phone, "Y 4821 12"), "field.eta_given")
    assert of(harness.tick(21 * MINUTE), "field.eta_overdue") == []
    [late] = of(harness.tick(MINUTE), "field.eta_overdue")
    assert (late.data.minutes_late, late.data.supervisor_id) == (10, supervisor.responder_id)
    assert of(harness.reply(near.phone, "911 4821"), "field.ems_called")
    assert of(harness.tick(19 * MINUTE), "field.ems_overdue") == []
    assert [e.data.minutes_waited for e in of(harness.tick(MINUTE), "field.ems_overdue")] == [20]


def test_on_no_incident_a_duress_word_gets_the_same_answer_as_ok_and_still_pages_the_supervisor(
    duress_settings,
) -> None:
    clock = ManualClock(T0)
    with build(duress_settings, clock) as app:
        harness = Harness(app, clock)
        boss = f.responder("supervisor", skills=())
        near = clinician().model_copy(update={"supervisor_id": boss.responder_id})
        harness.feed(*(f.registered(p) for p in (near, boss)), *(f.rotation([p.responder_id]) for p in (near, boss)))
        plain = harness.reply(near.phone, "OK")
        duress = harness.reply(near.phone, "blue heron")
        assert texts(plain) == [(near.phone, "reply_unknown", "sms")]
        assert [t for t in texts(duress) if t[0] == near.phone] == texts(plain)
        [alert] = [m for m in of(duress, "notification.requested") if m.data.to == boss.phone]
        assert alert.data.template == "duress_alert" and alert.data.params.get("code") is None
        assert text_of(alert) == f"SILENT ALERT: {near.name} may be in danger. Act now, discreetly."
