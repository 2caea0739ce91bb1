"""Outreach as a series of attempts (issue 19 section 1), on the follow-up desk (real store, SQLite and PostgreSQL)
with a moved clock and a restart: the post-overdose outreach is worked attempt by attempt; after each the next is
due a day later (``followup.rescheduled`` by rules), a due attempt not made pages the coach and tells the supervisor
(the overdue machinery); after the fourth with nobody reached the series ends as unreachable and the supervisor is
texted once; a series where the person was reached is ended by a person; a repeat or another responder's attempt
changes nothing. The same attempts fold into the task the API and the pages show."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    FollowUpAttemptRecorded,
    FollowUpAttemptRecordedData,
    FollowUpSeriesEnded,
    FollowUpSeriesEndedData,
    new_event,
)
from services.projections.bootstrap import build_desk
from services.projections.domain.followups import fold_tasks, task_id_for
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0
from tests.integration.test_projections import Story, team
from tests.integration.test_referral_desk import Fed

RULE = "post_overdose_outreach"


def attempt(story: Story, person, number: int, at, reached: bool = False, **more):
    data = FollowUpAttemptRecordedData(
        task_id=task_id_for(story.incident_id, RULE),
        incident_id=story.incident_id,
        number=number,
        channel=("call", "text", "visit")[(number - 1) % 3],
        reached=reached,
        recorded_by="coach-user",
        responder_id=person.responder_id,
        **more,
    )
    return new_event(FollowUpAttemptRecorded, data, event_id=uuid4(), occurred_at=at, producer="projections")


def fed_desk(tmp_path, database_url, clock):
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url)
    return settings, Fed(build_desk(settings, clock))


def test_four_unanswered_attempts_end_the_series_as_unreachable_across_a_restart(tmp_path, database_url) -> None:
    clock = ManualClock(T0)
    settings, fed = fed_desk(tmp_path, database_url, clock)
    people, story = team(), Story()
    coach, supervisor = people["coach"], people["supervisor"]
    history = [*(p.registered() for p in people.values()), *story.full_response(coach, 1, 2, 20, 40)]
    published = fed.feed(*history)
    try:
        day = timedelta(days=1)
        published += fed.feed(attempt(story, coach, 1, T0 + day))
        rescheduled = [e for e in published if e.type == "followup.rescheduled"]
        assert [(e.data.due_at, e.data.rescheduled_by) for e in rescheduled] == [(T0 + 2 * day, "rules")]
        assert "attempt 2 by text" in rescheduled[0].data.reason
        assert fed.feed(attempt(story, coach, 1, T0 + day)) == []  # the same attempt again: nothing
        assert fed.feed(attempt(story, people["nurse"], 2, T0 + day)) == []  # not the assignee: nothing

        clock.advance(T0 + 2 * day + timedelta(minutes=1) - clock.now())  # attempt 2 due, not made: paged
        fed.desk.flag_overdue(clock.now())
        chased = [(e.data.to, e.data.template) for e in fed.new() if e.type == "notification.requested"]
        assert (coach.phone, "task_overdue") in chased and (supervisor.phone, "task_overdue") in chased

        sequence = fed.sequence
        fed.desk.close()
        fed = Fed(build_desk(settings, clock), sequence)  # a restart: the series goes on from the store
        for number in (2, 3):
            published += fed.feed(attempt(story, coach, number, T0 + (number + 1) * day))
        last = fed.feed(attempt(story, coach, 4, T0 + 5 * day))
        (ended,) = [e for e in last if e.type == "followup.series_ended"]
        assert (ended.data.outcome, ended.data.attempts, ended.data.ended_by) == ("unreachable", 4, "rules")
        told = [(e.data.to, e.data.template, e.data.params) for e in last if e.type == "notification.requested"]
        assert told == [
            (
                supervisor.phone,
                "outreach_unreachable",
                {"task_code": told[0][2]["task_code"], "attempts": 4, "incident_code": story.code},
            )
        ]
        assert fed.feed(ended) == []  # its own end coming back from the stream: nothing more
        clock.advance(T0 + 30 * day - clock.now())
        assert fed.desk.flag_overdue(clock.now()) == 0  # ended: never overdue again

        created = [e for e in published if e.type in ("followup.created", "followup.assigned")]
        events = [*created, *[attempt(story, coach, n, T0 + (n + 1) * day) for n in (1, 2, 3, 4)], ended]
        task = fold_tasks(events)[task_id_for(story.incident_id, RULE)]  # what the read models and pages show
        assert (task.status, task.outcome, len(task.attempts)) == ("done", "unreachable", 4)
        assert [a["channel"] for a in task.attempts] == ["call", "text", "visit", "call"]
    finally:
        fed.desk.close()


def test_a_reached_person_keeps_the_series_open_until_a_person_ends_it(tmp_path, database_url) -> None:
    clock = ManualClock(T0)
    _, fed = fed_desk(tmp_path, database_url, clock)
    people, story = team(), Story()
    coach = people["coach"]
    created = fed.feed(*(p.registered() for p in people.values()), *story.full_response(coach, 1, 2, 20, 40))
    try:
        day = timedelta(days=1)
        reached = attempt(
            story, coach, 1, T0 + day, reached=True, offered=["naloxone_kit", "referral"], accepted=["naloxone_kit"],
            further_contact=True,
        )  # fmt: skip
        fed.feed(reached)
        for number in (2, 3, 4):
            after = fed.feed(attempt(story, coach, number, T0 + (number + 1) * day))
            assert not [e for e in after if e.type == "followup.series_ended"]  # reached once: not "unreachable"
        data = FollowUpSeriesEndedData(
            task_id=task_id_for(story.incident_id, RULE),
            incident_id=story.incident_id,
            outcome="engaged_in_care",
            attempts=4,
            ended_by="coach-user",
            responder_id=coach.responder_id,
        )
        ended = new_event(FollowUpSeriesEnded, data, event_id=uuid4(), occurred_at=T0 + 6 * day, producer="t")
        assert fed.feed(ended) == []
        clock.advance(T0 + 30 * day - clock.now())
        assert fed.desk.flag_overdue(clock.now()) == 0
        task = fold_tasks([*created, reached, ended])[task_id_for(story.incident_id, RULE)]
        assert (task.status, task.outcome, task.completed_by) == ("done", "engaged_in_care", "coach-user")
        assert task.attempts[0]["accepted"] == ["naloxone_kit"] and task.attempts[0]["further_contact"] is True
    finally:
        fed.desk.close()
