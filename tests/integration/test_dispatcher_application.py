"""The dispatcher's use cases on a real store: who is paged and why, replies, the ladder, deadlines, restarts.

Time is a ManualClock: deadlines are reached by moving it, never by waiting.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from services.contract.events import Envelope, IncidentCancelled, IncidentCancelledData, new_event
from services.dispatcher.application import page_notification_id
from services.dispatcher.bootstrap import build
from services.dispatcher.settings import DispatcherSettings
from services.notifier.domain.templates import render
from services.runtime.clock import ManualClock
from services.runtime.consumer import dead_letter_event
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401


def test_p1_pages_the_best_two_at_once_with_a_90_second_deadline_and_says_why(harness, team) -> None:
    reported = f.incident()
    out = harness.feed(reported)
    offered = of(out, "dispatch.offered")
    assert [o.data.responder_id for o in offered] == [team["near"].responder_id, team["peer"].responder_id]
    for o in offered:
        assert (o.data.ack_deadline - T0).total_seconds() == 90
        assert o.data.reason.on_call and o.data.reason.skills_matched == ["naloxone_carrier"]
        assert o.data.reason.rule == "P1: best 2 on call" and o.data.reason.rung == "candidates"
        assert o.data.reason.location_source == "home_base"
    assert offered[0].data.reason.distance_km < offered[1].data.reason.distance_km
    pages = of(out, "notification.requested")
    assert [(p.data.to, p.data.template) for p in pages] == [
        (team["near"].phone, "page_offer"),
        (team["peer"].phone, "page_offer"),
    ]
    assert pages[0].data.params["call_911"] is True and pages[0].data.params["code"] == "4821"
    assert pages[1].data.language == "es"
    assert pages[0].data.notification_id == page_notification_id(offered[0].data.page_id, "offer")


def test_p2_pages_one_at_a_time(harness, team) -> None:
    out = harness.feed(f.incident("withdrawal", "P2", ("nurse_or_prescriber",)))
    offered = of(out, "dispatch.offered")
    assert [o.data.responder_id for o in offered] == [team["far"].responder_id]
    assert offered[0].data.reason.skills_matched == ["nurse"]
    assert (offered[0].data.ack_deadline - T0).total_seconds() == 300


def test_self_harm_risk_pages_a_clinician_and_peer_team(harness, team) -> None:
    out = harness.feed(f.incident("self_harm_risk", "P1", ("licensed_clinician", "safety_precautions")))
    offered = of(out, "dispatch.offered")
    roles = [(o.data.responder_role, o.data.reason.team_role) for o in offered]
    assert roles == [("clinician", "primary"), ("clinician", "primary"), ("peer_coach", "peer")]


def test_accept_confirms_tells_the_others_it_is_covered_and_a_second_accept_becomes_backup(harness, team) -> None:
    harness.feed(f.incident())
    out = harness.reply(team["near"].phone, "yes 4821")
    assert [e.type for e in out if e.type.startswith("dispatch.")] == ["dispatch.acknowledged", "dispatch.withdrawn"]
    assert messages(out) == [(team["near"].phone, "ack_confirmed"), (team["peer"].phone, "page_covered")]
    late = harness.reply(team["peer"].phone, "Y 4821")
    extra = of(late, "dispatch.extra_acceptance")
    assert len(extra) == 1 and extra[0].data.outcome == "backup"
    assert messages(late) == [(team["peer"].phone, "already_taken")]
    assert harness.tick(600) == []  # accepted: no deadline fires any more


def test_bare_y_accepts_the_only_open_page_and_is_ambiguous_with_two(harness, team) -> None:
    harness.feed(f.incident(short_code="1111"))
    out = harness.reply(team["near"].phone, "  y ")
    assert len(of(out, "dispatch.acknowledged")) == 1
    harness.feed(f.incident(short_code="2222"), f.incident(short_code="3333"))
    ambiguous = harness.reply(team["second"].phone, "Y")
    assert of(ambiguous, "dispatch.acknowledged") == []
    answer = of(ambiguous, "notification.requested")[0]
    assert answer.data.template == "reply_ambiguous" and answer.data.params["codes"] == ["2222", "3333"]


def test_codes_are_unique_among_open_pages_and_not_reused_soon_after(harness, team) -> None:
    first = of(harness.feed(f.incident(short_code="5000")), "dispatch.offered")
    second = of(harness.feed(f.incident(short_code="5000")), "dispatch.offered")
    assert first[0].data.responder_id == second[0].data.responder_id
    assert first[0].data.code == "5000" and second[0].data.code == "5001"
    harness.reply(team["near"].phone, "N 5000")
    harness.reply(team["near"].phone, "N 5001")
    third = of(harness.feed(f.incident(short_code="5000")), "dispatch.offered")
    assert third[0].data.responder_id == team["near"].responder_id
    assert third[0].data.code == "5002"


def test_decline_pages_a_replacement_at_once(harness, team) -> None:
    harness.feed(f.incident())
    out = harness.reply(team["peer"].phone, "no 4821")
    assert len(of(out, "dispatch.declined")) == 1
    replacement = of(out, "dispatch.offered")
    assert [o.data.responder_id for o in replacement] == [team["second"].responder_id]
    assert messages(out)[0] == (team["peer"].phone, "decline_confirmed")


def test_p1_reminds_then_calls_then_escalates_up_the_ladder(harness, team) -> None:
    harness.feed(f.incident())
    assert messages(harness.tick(30)) == [(team["near"].phone, "page_reminder"), (team["peer"].phone, "page_reminder")]
    calls = of(harness.tick(30), "notification.requested")
    assert [(c.data.template, c.data.channel) for c in calls] == [("voice_page", "voice")] * 2
    step2 = harness.tick(30)
    assert len(of(step2, "dispatch.timed_out")) == 2
    escalated = of(step2, "dispatch.escalated")
    assert [(e.data.from_step, e.data.to_step, e.data.rung, e.data.reason) for e in escalated] == [
        (1, 2, "candidates", "timed_out")
    ]
    assert {o.data.responder_id for o in of(step2, "dispatch.offered")} == {
        team["second"].responder_id,
        team["far"].responder_id,
    }
    step3 = harness.tick(90)
    assert [o.data.reason.rung for o in of(step3, "dispatch.offered")] == ["supervisor"]
    assert of(step3, "dispatch.offered")[0].data.responder_id == team["supervisor"].responder_id
    step4 = harness.tick(90)
    assert [o.data.responder_id for o in of(step4, "dispatch.offered")] == [team["director"].responder_id]
    top = harness.tick(90)
    assert of(top, "dispatch.unfilled")[0].data.shortfalls == ["ladder_exhausted"]
    assert [a.data.repeat for a in of(top, "dispatch.alarm_raised")] == [1]
    later = harness.tick(900)  # nothing is paged any more: only NOBODY ACCEPTED goes on
    assert {e.type for e in later} == {"dispatch.alarm_raised", "notification.requested"}
    assert {m.data.template for m in of(later, "notification.requested")} == {"nobody_accepted", "nobody_accepted_call"}


def test_nobody_qualified_on_call_pages_the_supervisor_at_once(harness, team) -> None:
    out = harness.feed(f.incident("withdrawal", "P2", ("prescriber",)))
    unfilled = of(out, "dispatch.unfilled")
    assert unfilled[0].data.shortfalls == ["nobody_with_skill"]
    assert of(out, "dispatch.escalated")[0].data.reason == "nobody_qualified"
    assert [o.data.responder_id for o in of(out, "dispatch.offered")] == [team["supervisor"].responder_id]


def test_an_empty_step_moves_on_at_once(harness) -> None:
    director = f.responder("director", skills=())
    harness.feed(f.registered(director), f.rotation([director.responder_id]))
    out = harness.feed(f.incident())
    assert [u.data.shortfalls for u in of(out, "dispatch.unfilled")] == [
        ["nobody_on_call"],
        ["nobody_on_call"],
        ["nobody_on_call"],
    ]
    assert [o.data.reason.rung for o in of(out, "dispatch.offered")] == ["director"]


def test_a_failed_sms_pages_the_next_candidate_at_once(harness, team) -> None:
    reported = f.incident("withdrawal", "P2", ("medical_review",))
    offered = of(harness.feed(reported), "dispatch.offered")[0]
    notification = page_notification_id(offered.data.page_id, "offer")
    out = harness.feed(f.sms_failed(reported.data.incident_id, notification, team["near"].phone))
    assert of(out, "dispatch.unreachable")[0].data.responder_id == offered.data.responder_id
    assert len(of(out, "dispatch.offered")) == 1
    assert of(out, "dispatch.offered")[0].data.responder_id != offered.data.responder_id


def test_stop_makes_a_responder_unreachable_and_tells_their_supervisor(harness, team) -> None:
    harness.feed(f.incident())
    out = harness.feed(f.opt_out(team["near"].phone))
    assert of(out, "dispatch.unreachable")[0].data.error_code == 21610
    assert (team["supervisor"].phone, "responder_unreachable") in messages(out)
    assert of(out, "dispatch.offered")[0].data.responder_id == team["second"].responder_id
    harness.feed(f.opt_out(team["near"].phone, opted_out=False))
    again = of(harness.feed(f.incident(short_code="7777")), "dispatch.offered")
    assert team["near"].responder_id in {o.data.responder_id for o in again}


def test_en_route_arrived_and_done_are_recorded_and_done_closes(harness, team) -> None:
    harness.feed(f.incident("withdrawal", "P2", ("medical_review",)))
    harness.reply(team["near"].phone, "Y 4821")
    assert of(harness.reply(team["near"].phone, "OTW"), "dispatch.en_route")
    assert of(harness.reply(team["near"].phone, "on scene"), "dispatch.arrived")
    done = of(harness.reply(team["near"].phone, "done 4821"), "dispatch.completed")
    assert done[0].data.closes_incident is True


def test_status_help_and_unknown_replies_are_answered_and_capped(harness, team) -> None:
    harness.feed(f.incident())
    status = of(harness.reply(team["near"].phone, "STATUS"), "notification.requested")[0]
    assert status.data.template == "status_summary" and status.data.params["codes"] == ["4821"]
    assert messages(harness.reply(team["near"].phone, "help")) == [(team["near"].phone, "reply_help")]
    answered = [harness.reply(team["near"].phone, "auto-reply: I am away") for _ in range(6)]
    assert [len(a) for a in answered] == [1, 1, 1, 0, 0, 0]  # the cap of 5 no-op answers per window


def test_replies_from_unknown_numbers_change_nothing(harness, team) -> None:
    harness.feed(f.incident())
    assert harness.reply("+15559990000", "Y 4821") == []


def test_deadlines_survive_a_restart_and_fire_exactly_once(settings, database_url) -> None:
    settings = settings.model_copy(update={"database_url": database_url})
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        harness = Harness(app, clock)
        people = [f.responder(), f.responder(), f.responder("supervisor", skills=())]
        harness.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
        for code in ("1001", "1002", "1003"):
            harness.feed(f.incident("withdrawal", "P2", ("naloxone_carrier",), short_code=code))
        pending = harness.sequence
    clock.advance(f.later(3600))  # the dispatcher is down while the deadlines pass
    with build(settings, clock) as restarted:
        harness = Harness(restarted, clock)
        harness.sequence = pending
        harness.seen = len(harness.published())
        assert restarted.fire_due() == 3
        fired = harness.new()
        assert len(of(fired, "dispatch.timed_out")) == 3
        assert len(of(fired, "dispatch.escalated")) == 3
        assert len(of(fired, "dispatch.offered")) == 3  # the next candidate, with a fresh deadline
        assert restarted.fire_due() == 0
        assert harness.new() == []


PAGE_FIELDS_AS_STORED = {
    "slot", "responder_id", "phone", "language", "code", "step", "status", "deadline", "reminder_at", "voice_at"
}  # fmt: skip


def test_a_snapshotted_store_restores_and_carries_on(settings) -> None:
    """Snapshots keep pages and slots as the store always has, so a dispatcher restarted on a store whose
    every aggregate was snapshotted (by this version or an earlier one) carries on where it was."""
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        harness = Harness(app, clock)
        near, far = f.responder(home=(39.744, -104.988)), f.responder(home=(39.80, -104.90))
        harness.feed(*(f.registered(p) for p in (near, far)), *(f.rotation([p.responder_id]) for p in (near, far)))
        reported = f.incident()
        assert len(of(harness.feed(reported), "dispatch.offered")) == 2
        stored = app.recorder.select_notifications(start=1, limit=10_000)
        for aggregate_id in {n.originator_id for n in stored}:
            app.take_snapshot(aggregate_id)
        [snapshot] = app.snapshots.get(reported.data.incident_id)
        # the layout snapshots were written in before pages became typed values: a change to it needs an upcast
        assert all(set(page) == PAGE_FIELDS_AS_STORED for page in snapshot.state["pages"].values())
        pending = harness.sequence
    with build(settings, clock) as restarted:
        harness = Harness(restarted, clock)
        harness.sequence, harness.seen = pending, len(harness.published())
        assert set(restarted.known.roster) == {near.responder_id, far.responder_id}
        assert messages(harness.tick(30)) == [(near.phone, "page_reminder"), (far.phone, "page_reminder")]
        accepted = harness.reply(near.phone, "Y 4821")
        assert [e.type for e in accepted if e.type.startswith("dispatch.")] == [
            "dispatch.acknowledged",
            "dispatch.withdrawn",
        ]
        assert harness.tick(900) == []


def test_cancelled_incident_withdraws_its_pages(harness, team) -> None:
    reported = f.incident()
    harness.feed(reported)
    incident_id = reported.data.incident_id
    cancelled = new_event(
        IncidentCancelled,
        IncidentCancelledData(incident_id=incident_id, reason="false alarm"),
        event_id=uuid4(),
        occurred_at=T0,
        producer="tests",
        incident_id=incident_id,
    )
    out = harness.feed(cancelled)
    assert {w.data.reason for w in of(out, "dispatch.withdrawn")} == {"cancelled"}
    assert len(of(out, "dispatch.withdrawn")) == 2
    assert harness.tick(900) == []


def test_at_place_by_sms_updates_the_location_routing_uses(settings) -> None:
    places = {"union station": (39.7527, -105.0001)}
    clock = ManualClock(T0)
    with build(settings, clock, locate=lambda text: places.get(text.lower())) as app:
        harness = Harness(app, clock)
        near_home, far_home = f.responder(home=(39.744, -104.988)), f.responder(home=(39.90, -104.80))
        harness.feed(
            *(f.registered(p) for p in (near_home, far_home)),
            *(f.rotation([p.responder_id]) for p in (near_home, far_home)),
        )
        assert messages(harness.reply(far_home.phone, "AT Union Station")) == [(far_home.phone, "location_noted")]
        assert messages(harness.reply(far_home.phone, "AT nowhere known")) == [(far_home.phone, "location_unknown")]
        out = harness.feed(f.incident("withdrawal", "P2", ("naloxone_carrier",), at=(39.7530, -105.0000)))
        offered = of(out, "dispatch.offered")[0]
        assert offered.data.responder_id == far_home.responder_id
        assert offered.data.reason.location_source == "reported"
        clock.advance(f.later(3600))  # an hour later the reported location is stale: back to home bases
        later = of(
            harness.feed(
                f.incident("withdrawal", "P2", ("naloxone_carrier",), at=(39.7530, -105.0000), short_code="6000")
            ),
            "dispatch.offered",
        )[0]
        assert later.data.responder_id == near_home.responder_id


def test_the_demo_gazetteer_resolves_places_texted_with_at(tmp_path: Path) -> None:
    gazetteer = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "gazetteer.json"
    settings = DispatcherSettings(var_dir=tmp_path, roster_seed_file=None, gazetteer_file=gazetteer)
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        harness = Harness(app, clock)
        person = f.responder()
        harness.feed(f.registered(person))
        assert messages(harness.reply(person.phone, "at union station")) == [(person.phone, "location_noted")]
        assert app.repository.get(app.known.record_ids[person.responder_id]).location["label"] == "union station"


def test_an_empty_seed_file_setting_switches_the_demo_roster_off(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRISIS_ROSTER_SEED_FILE", "")
    monkeypatch.setenv("CRISIS_GAZETTEER_FILE", "")
    settings = DispatcherSettings(var_dir=tmp_path)
    assert settings.roster_seed_file is None and settings.gazetteer_file is None


async def test_the_deadline_ticker_fires_what_is_due_and_stops_when_cancelled(harness, team) -> None:
    import asyncio

    from services.dispatcher.entrypoints.deadlines import DeadlineTicker

    harness.feed(f.incident("withdrawal", "P2", ("medical_review",)))
    ticker = DeadlineTicker(harness.app, harness.clock)
    assert await ticker.tick() == 0
    assert harness.app.next_deadline() == T0 + f.later(300)
    harness.clock.advance(f.later(300))
    assert await ticker.tick() == 1
    assert len(of(harness.new(), "dispatch.timed_out")) == 1
    running = asyncio.create_task(ticker.run())
    ticker.wake()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


# ---- dead letters reach a person ------------------------------------------------------------------------------


def dead_letter(payload: bytes, subject: str = "crisis.incident.reported", sequence: int = 42) -> Envelope:
    return dead_letter_event("dispatcher", "ValueError: cannot route", sequence, subject, payload, T0)


def test_a_dead_letter_sends_the_on_call_supervisor_a_phi_free_system_alert(harness, team) -> None:
    reported = f.incident()
    out = harness.feed(dead_letter(reported.to_json()))
    alerts = of(out, "notification.requested")
    assert [(a.data.to, a.data.template, a.data.priority) for a in alerts] == [
        (team["supervisor"].phone, "system_alert", "P1")
    ]
    assert alerts[0].data.params == {"reference": "DL-42", "service": "dispatcher"}
    assert alerts[0].data.incident_id == reported.data.incident_id  # on that incident's timeline
    body = render("system_alert", alerts[0].data.params).text
    assert "DL-42" in body and "dispatcher" in body
    assert reported.data.location.address not in body


def test_with_no_supervisor_on_call_every_clinical_director_is_alerted(harness) -> None:
    directors = [f.responder("director", skills=()) for _ in range(2)]
    harness.feed(*(f.registered(d) for d in directors), f.rotation([directors[0].responder_id]))
    harness.new()
    out = harness.feed(dead_letter(b"not json at all"))
    alerts = of(out, "notification.requested")
    assert sorted(a.data.to for a in alerts) == sorted(d.phone for d in directors)
    assert {a.data.incident_id for a in alerts} == {None}


def test_a_dead_letter_about_a_dead_letter_alerts_nobody(harness, team) -> None:
    assert harness.feed(dead_letter(b"{}", subject="crisis.message.dead_lettered")) == []


def test_one_message_given_up_by_several_consumers_pages_once(harness, team) -> None:
    payload = b"not json"
    first = harness.feed(dead_letter_event("notifier", "unreadable", 7, "crisis.incident.reported", payload, T0))
    others = harness.feed(
        *(dead_letter_event(c, "unreadable", 7, "crisis.incident.reported", payload, T0) for c in ("projections", "x"))
    )
    assert [m[1] for m in messages(first)] == ["system_alert"]
    assert others == []
    # another message is another alert
    assert messages(harness.feed(dead_letter(payload, sequence=8))) == [(team["supervisor"].phone, "system_alert")]
