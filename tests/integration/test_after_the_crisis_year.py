"""Issue 19's must-show: a moved-clock run over a simulated year for a set of incidents, with the follow-up desk and
the caring desk on real stores (SQLite and PostgreSQL), restarted every month, their outboxes read as the stream
would carry them. Three overdoses whose post-overdose outreach is attempted by its coach at each due time and never
reaches the person end as unreachable after the fourth attempt, their supervisor texted once each; one overdose
reached at the second attempt is ended by the coach as engaged in care; two people after a suicidal crisis get
their eleven caring texts each. Nothing is sent twice (every notification id once), nothing is skipped."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    CaringEnrolled,
    CaringEnrolledData,
    FollowUpSeriesEnded,
    FollowUpSeriesEndedData,
    new_event,
)
from services.projections.bootstrap import build_caring_desk, build_desk
from services.projections.domain.caring import DEFAULT_SCHEDULE
from services.projections.domain.followups import task_id_for
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0
from tests.integration.test_outreach_series import RULE, attempt
from tests.integration.test_projections import Story, team
from tests.integration.test_referral_desk import Fed


def test_a_year_of_outreach_series_and_caring_contacts(tmp_path, database_url) -> None:
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url, org_time_zone="America/Denver")
    clock = ManualClock(T0)
    people = team()
    coach, supervisor = people["coach"], people["supervisor"]
    unreached = [Story(code=f"70{i}0") for i in range(3)]
    reached = Story(code="7090")
    history = [*(p.registered() for p in people.values())]
    for story in (*unreached, reached):
        history += story.full_response(coach, 1, 2, 20, 40)
    enrolments = []
    for phone in ("+15550107011", "+15550107012"):
        data = CaringEnrolledData(
            enrolment_id=uuid4(), person_id=uuid4(), phone=phone, schedule_days=list(DEFAULT_SCHEDULE),
            consent_how="written", consented_at=T0, actor="clinician-user",
        )  # fmt: skip
        enrolments.append(new_event(CaringEnrolled, data, event_id=uuid4(), occurred_at=T0, producer="projections"))

    desks = {"followups": Fed(build_desk(settings, clock)), "caring": Fed(build_caring_desk(settings, clock))}
    published: list = []
    sequence = 0

    def feed(*events) -> None:  # the stream: every desk sees every event, in order
        nonlocal sequence
        for event in events:
            sequence += 1
            for fed in desks.values():
                fed.sequence = sequence - 1
                published.extend(fed.feed(event))

    try:
        feed(*history, *enrolments)
        made = Counter()
        step, month = timedelta(hours=6), None
        while clock.now() < T0 + timedelta(days=370):
            clock.advance(step)
            now = clock.now()
            flagged = desks["followups"].desk.flag_overdue(now)
            sent = desks["caring"].desk.fire_due(now)
            fresh = [e for name, n in (("followups", flagged), ("caring", sent)) if n for e in desks[name].new()]
            published.extend(fresh)
            feed(*[e for e in fresh if e.type.startswith(("followup.", "caring."))])  # our own events come back
            for story in (*unreached, reached):  # the coach tries whenever the next attempt is due
                due = [
                    e for e in fresh
                    if e.type == "followup.overdue" and e.data.task_id == task_id_for(story.incident_id, RULE)
                ]  # fmt: skip
                if due and made[story.code] < 4:
                    made[story.code] += 1
                    feed(
                        attempt(story, coach, made[story.code], now, reached=story is reached and made[story.code] == 2)
                    )
                    if story is reached and made[story.code] == 2:
                        data = FollowUpSeriesEndedData(
                            task_id=task_id_for(story.incident_id, RULE), incident_id=story.incident_id,
                            outcome="engaged_in_care", attempts=2, ended_by="coach-user",
                            responder_id=coach.responder_id,
                        )  # fmt: skip
                        ended_by_coach = new_event(
                            FollowUpSeriesEnded, data, event_id=uuid4(), occurred_at=now, producer="t"
                        )
                        published.append(ended_by_coach)  # a person's command: on the stream, not a desk's output
                        feed(ended_by_coach)
            if now.month != month:  # a restart a month, on the same stores
                month = now.month
                for name, build in (("followups", build_desk), ("caring", build_caring_desk)):
                    desks[name].desk.close()
                    desks[name] = Fed(build(settings, clock), sequence)
    finally:
        for fed in desks.values():
            fed.desk.close()

    texts = [e for e in published if e.type == "notification.requested"]
    ids = Counter(e.data.notification_id for e in texts)
    assert [i for i, n in ids.items() if n > 1] == []  # nothing sent twice
    ended = {
        e.data.incident_id: (e.data.outcome, e.data.attempts) for e in published if e.type == "followup.series_ended"
    }
    for story in unreached:
        assert ended[story.incident_id] == ("unreachable", 4) and made[story.code] == 4
    assert ended[reached.incident_id] == ("engaged_in_care", 2) and made[reached.code] == 2
    told = [e.data.params for e in texts if e.data.template == "outreach_unreachable"]
    assert len(told) == 3 and {e.data.to for e in texts if e.data.template == "outreach_unreachable"} == {
        supervisor.phone
    }
    caring = Counter(e.data.to for e in texts if e.data.template == "caring_contact")
    assert caring == {"+15550107011": 11, "+15550107012": 11}  # nothing skipped
    numbers = [
        e.data.params["number"] for e in texts if e.data.template == "caring_contact" and e.data.to.endswith("11")
    ]
    assert numbers == list(range(1, 12))
    chased = [e for e in texts if e.data.template == "task_overdue" and e.data.to == coach.phone]
    assert len(chased) == 3 * 4 + 2  # each attempt was due, and the coach was told each time
