"""A referral nobody accepted by its deadline pages the on-call supervisor once, then again, wider, until someone
takes it or a program accepts; a missed admission tells the follow-up coach once (issue 17): the dispatcher on a
real store, fed by hand, its clock moved, restarted in between; the same ``referral.acceptance_overdue`` again (a
re-publish after the stream's duplicate window) and another copy after the restart page nobody again."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    ReferralAcceptanceOverdue,
    ReferralAcceptanceOverdueData,
    ReferralAccepted,
    ReferralAcceptedData,
    ReferralNoShow,
    ReferralNoShowData,
    new_event,
)
from services.dispatcher.bootstrap import build
from services.projections.bootstrap import build_desk
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0
from tests.integration.test_projections import Story
from tests.integration.test_projections import team as team_of_projections
from tests.support.dispatch_harness import harness, messages, of, settings, team  # noqa: F401 - fixtures


def overdue(referral_id, incident_id):
    data = ReferralAcceptanceOverdueData(
        referral_id=referral_id,
        incident_id=incident_id,
        code="5150",
        accept_by=T0 + timedelta(hours=1),
        declined=2,
        unanswered=1,
    )
    return new_event(ReferralAcceptanceOverdue, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def test_the_on_call_supervisor_is_paged_once_per_referral(harness, team, settings) -> None:  # noqa: F811
    referral, incident = uuid4(), uuid4()
    first = harness.feed(overdue(referral, incident))
    paged = of(first, "notification.requested")
    assert messages(first) == [(team["supervisor"].phone, "referral_overdue")]
    assert paged[0].data.params == {"code": "5150", "declined": 2, "unanswered": 1, "repeat": 1}
    assert paged[0].data.priority.value == "P2"
    (escalated,) = of(first, "referral.escalated")
    assert (escalated.data.referral_id, escalated.data.repeat) == (referral, 1)
    assert [(p.responder_id, p.role) for p in escalated.data.notified] == [
        (team["supervisor"].responder_id, "supervisor")
    ]
    assert escalated.data.next_at == harness.clock.now() + timedelta(minutes=15)
    assert messages(harness.feed(overdue(referral, incident))) == []  # re-published with a new id: not again

    sequence = harness.sequence
    harness.app.close()
    with build(settings, harness.clock) as again:
        resumed = harness.resume(again, sequence)
        assert messages(resumed.feed(overdue(referral, incident))) == []
        other = resumed.feed(overdue(uuid4(), incident))  # another referral: its own page
        assert messages(other) == [(team["supervisor"].phone, "referral_overdue")]


MINUTE = 60


def test_unanswered_it_repeats_wider_across_a_restart_then_stops(harness, team, settings) -> None:  # noqa: F811
    referral, incident = uuid4(), uuid4()
    supervisor, director = team["supervisor"].phone, team["director"].phone
    assert messages(harness.feed(overdue(referral, incident))) == [(supervisor, "referral_overdue")]
    assert harness.tick(14 * MINUTE) == []  # not yet
    second = harness.tick(1 * MINUTE)
    assert messages(second) == [(supervisor, "referral_overdue"), (director, "referral_overdue")]
    assert {e.data.params["repeat"] for e in of(second, "notification.requested")} == {2}
    assert [e.data.repeat for e in of(second, "referral.escalated")] == [2]

    sequence = harness.sequence
    harness.app.close()
    with build(settings, harness.clock) as again:  # the next sounding is a deadline in the store
        resumed = harness.resume(again, sequence)
        third = resumed.tick(15 * MINUTE)
        assert messages(third) == [(supervisor, "referral_overdue"), (director, "referral_overdue")]
        fourth = resumed.tick(15 * MINUTE)
        (last,) = of(fourth, "referral.escalated")
        assert (last.data.repeat, last.data.next_at) == (4, None)  # CRISIS_REFERRAL_ALARM_SOUNDINGS, default 4
        assert resumed.tick(120 * MINUTE) == []  # nothing after the last
        assert again.next_deadline() is None


def test_y_code_from_someone_paged_takes_it_and_the_others_are_told(harness, team) -> None:  # noqa: F811
    referral, incident = uuid4(), uuid4()
    harness.feed(overdue(referral, incident))
    harness.tick(15 * MINUTE)  # the director is paged too now
    assert of(harness.reply(team["near"].phone, "Y 5150"), "referral.escalation_answered") == []  # not paged

    taken = harness.reply(team["director"].phone, "y 5150")
    (answered,) = of(taken, "referral.escalation_answered")
    assert (answered.data.reason, answered.data.responder_id, answered.data.soundings) == (
        "taken",
        team["director"].responder_id,
        2,
    )
    told = {(e.data.to, e.data.params["reason"]) for e in of(taken, "notification.requested")}
    assert told == {(team["director"].phone, "taken_by_you"), (team["supervisor"].phone, "taken")}
    assert harness.tick(60 * MINUTE) == []  # taken: no more soundings
    assert harness.reply(team["supervisor"].phone, "Y 5150")  # answered as any unknown code, not taken again
    assert of(harness.new(), "referral.escalation_answered") == []


def test_a_director_may_take_it_before_a_sounding_reaches_them(harness, team) -> None:  # noqa: F811
    harness.feed(overdue(uuid4(), uuid4()))  # sounding 1: the supervisor only
    taken = harness.reply(team["director"].phone, "Y 5150")
    (answered,) = of(taken, "referral.escalation_answered")
    assert (answered.data.responder_id, answered.data.role) == (team["director"].responder_id, "director")
    told = {(e.data.to, e.data.params["reason"]) for e in of(taken, "notification.requested")}
    assert told == {(team["supervisor"].phone, "taken"), (team["director"].phone, "taken_by_you")}


def test_a_program_accepting_stops_the_alarm(harness, team) -> None:  # noqa: F811
    referral, incident = uuid4(), uuid4()
    harness.feed(overdue(referral, incident))
    now = harness.clock.now()
    accepted = ReferralAcceptedData(
        referral_id=referral,
        incident_id=incident,
        program_id=uuid4(),
        actor="program sms",
        channel="sms",
        admission_from=now,
        admission_until=now + timedelta(hours=24),
    )
    stopped = harness.feed(new_event(ReferralAccepted, accepted, event_id=uuid4(), occurred_at=now, producer="t"))
    (answered,) = of(stopped, "referral.escalation_answered")
    assert (answered.data.reason, answered.data.responder_id) == ("accepted", None)
    assert [(e.data.to, e.data.template, e.data.params["reason"]) for e in of(stopped, "notification.requested")] == [
        (team["supervisor"].phone, "referral_alarm_answered", "accepted")
    ]
    assert harness.tick(60 * MINUTE) == []
    other = uuid4()  # a referral that never sounded: its accept pages and tells nobody
    accepted_other = accepted.model_copy(update={"referral_id": other})
    assert (
        harness.feed(new_event(ReferralAccepted, accepted_other, event_id=uuid4(), occurred_at=now, producer="t")) == []
    )


def test_a_missed_admission_tells_the_follow_up_coach_once(tmp_path, database_url) -> None:
    """The follow-up desk (projections): the coach assigned to the incident's post-overdose outreach is told the
    referral's code when an accepted admission window closed without an arrival; a repeat tells nobody."""
    people, story = team_of_projections(), Story()
    projections = ProjectionsSettings(var_dir=tmp_path, database_url=database_url)
    coach = people["coach"]
    with build_desk(projections, ManualClock(T0)) as desk:
        events = [*(p.registered() for p in people.values()), *story.full_response(coach, 1, 2, 20, 40)]
        for sequence, event in enumerate(events, start=1):
            desk.handle(event, sequence)
        before = desk_published(desk)
        referral = uuid4()
        no_show = ReferralNoShowData(
            referral_id=referral,
            incident_id=story.incident_id,
            program_id=uuid4(),
            code="4417",
            window_closed_at=T0 + timedelta(hours=30),
            actor="deadline",
            channel="deadline",
        )
        for sequence in (len(events) + 1, len(events) + 2):  # the same event twice (a re-publish)
            missed = new_event(
                ReferralNoShow, no_show, event_id=uuid4(), occurred_at=T0 + timedelta(hours=30), producer="t"
            )
            desk.handle(missed, sequence)
        told = [e for e in desk_published(desk)[len(before) :] if e.type == "notification.requested"]
    assert [(e.data.to, e.data.template, e.data.params) for e in told] == [
        (coach.phone, "referral_no_show", {"code": "4417"})
    ]


def desk_published(desk) -> list:
    notifications = desk.recorder.select_notifications(start=1, limit=10_000)
    return [e for n in notifications for e in desk.outbox(desk.mapper.to_domain_event(n))]
