"""The pure parts of the board and the timeline (issue 14): the dispatch stage an incident's events add up to, the
words of each stage, times told in the organisation's zone, messages folded into one row each, the audit log's
actions in words, and the time-zone setting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.projections.domain.audit import action_words
from services.projections.domain.documentation import StaffInfo
from services.projections.domain.entries import timeline_entries
from services.projections.domain.messages import DeliveryStatus, fold_messages
from services.projections.domain.progress import DispatchStage, RecordedEvent, incident_progress, stage_words
from services.projections.domain.telling import Telling
from services.projections.settings import ProjectionsSettings
from tests.integration.test_projections import T0, team
from tests.support.incident_story import LadderStory, director, nobody_accepted

DENVER = ZoneInfo("America/Denver")


def stage_of(events) -> DispatchStage:
    progress = incident_progress([RecordedEvent(i, e.occurred_at, e) for i, e in enumerate(events, 1)])
    assert progress is not None
    return progress.dispatch_stage


def crew():
    return team() | {"director": director()}


def test_the_dispatch_stage_follows_the_ladder_and_is_unfilled_only_when_it_ran_out() -> None:
    people = crew()
    clinician, coach = people["clinician"], people["coach"]
    story = LadderStory()
    ladder = nobody_accepted(story, people)
    exhausted = next(i for i, e in enumerate(ladder) if e.type == "dispatch.unfilled")
    assert stage_of(ladder[:1]) is DispatchStage.WAITING
    assert stage_of(ladder[:3]) is DispatchStage.PAGING
    before = incident_progress([RecordedEvent(i, e.occurred_at, e) for i, e in enumerate(ladder[:exhausted], 1)])
    assert before.step == 3 and not before.unfilled
    assert stage_of(ladder[: exhausted + 1]) is DispatchStage.UNFILLED
    assert stage_of(ladder) is DispatchStage.UNFILLED
    # an alarm raised (its unfilled event not seen) is unfilled too; one empty step is not
    alarm_only = [e for e in ladder if e.type != "dispatch.unfilled"]
    assert stage_of(alarm_only) is DispatchStage.UNFILLED
    one_empty_step = [story.reported(), story.unfilled(0.1, 1, ["nobody_on_call"], rung="candidates")]
    assert stage_of(one_empty_step) is DispatchStage.WAITING
    peer_given_up = [*ladder[:3], story.unfilled(1.5, 1, ["peer_steps_exhausted"], rung="candidates")]
    assert stage_of(peer_given_up) is DispatchStage.PAGING

    answered = [*ladder, story.acknowledged(clinician, 6), *story.alarm_stopped(6, [people["supervisor"]])]
    assert stage_of(answered) is DispatchStage.ACCEPTED
    assert stage_of([*answered, story.en_route(clinician, 8)]) is DispatchStage.EN_ROUTE
    assert stage_of([*answered, story.en_route(clinician, 8), story.arrived(clinician, 19)]) is DispatchStage.ON_SCENE
    assert stage_of([*answered, story.completed(clinician, 50)]) is DispatchStage.DONE
    assert stage_of([*ladder, story.cancelled(7)]) is DispatchStage.CANCELLED
    disposition = story.alarm_stopped(9, [])[0]
    disposition = disposition.model_copy(
        update={"data": disposition.data.model_copy(update={"reason": "disposition_recorded"})}
    )
    assert stage_of([*ladder, disposition]) is DispatchStage.NOBODY_WENT
    assert stage_of([*ladder, disposition, story.acknowledged(coach, 10)]) is DispatchStage.ACCEPTED


@pytest.mark.parametrize(
    ("stage", "facts", "said"),
    [
        (DispatchStage.UNFILLED, {"alarm_repeats": 3}, "UNFILLED: nobody accepted; alarm sounded 3 times"),
        (DispatchStage.UNFILLED, {}, "UNFILLED: nobody accepted"),
        (DispatchStage.PAGING, {"step": 2}, "paging, step 2"),
        (
            DispatchStage.ACCEPTED,
            {"accepted": ["Cleo Clinician", "Pat Peer"]},
            "accepted by Cleo Clinician and Pat Peer",
        ),
        (DispatchStage.EN_ROUTE, {"en_route": ["Pat Peer"]}, "en route: Pat Peer"),
        (DispatchStage.ON_SCENE, {"on_scene": []}, "on scene"),
        (DispatchStage.WAITING, {}, "not paged yet"),
        (DispatchStage.NOBODY_WENT, {}, "nobody went; disposition recorded"),
    ],
)
def test_each_stage_reads_in_words(stage, facts, said) -> None:
    assert stage_words(stage, **facts) == said


def test_times_are_told_in_the_organisations_zone_with_its_abbreviation() -> None:
    denver = Telling(DENVER)
    assert denver.clock(T0) == "02:00:00 MST"
    assert denver.clock(datetime(2026, 7, 1, 18, 30, tzinfo=UTC)) == "12:30:00 MDT"
    assert Telling(ZoneInfo("Europe/Berlin")).clock(T0) == "10:00:00 CET"
    assert denver.moment(T0 + timedelta(hours=1), T0) == "03:00:00 MST"
    assert denver.moment(T0 + timedelta(days=3), T0) == "Thu 26 Nov 02:00 MST"
    assert denver.brief(T0, T0 + timedelta(hours=2)) == "02:00 MST"
    assert denver.day(T0) == "Monday 23 November 2026"
    # the day is Denver's: 07:00 UTC on the 23rd is its midnight, 06:00 UTC still the 22nd
    assert denver.brief(T0 - timedelta(hours=2), T0) == "00:00 MST"
    assert denver.brief(T0 - timedelta(hours=3), T0) == "Sun 22 Nov 23:00 MST"


def test_people_are_named_by_the_roster_and_never_by_number() -> None:
    someone, unknown = uuid4(), uuid4()
    telling = Telling(DENVER, {someone: StaffInfo("Cleo Clinician", "clinician")}, {"+15550199001": someone})
    assert telling.person(someone) == "Cleo Clinician (clinician)"
    assert telling.person(unknown, "peer_coach") == "a peer coach not on the roster"
    assert telling.recipient("+15550199001") == "Cleo Clinician (clinician)"
    assert telling.recipient("+15550100000") == "a number not on the roster"


def test_a_timeline_has_no_raw_timestamps_and_each_message_names_its_recipient_and_folds_its_reports() -> None:
    people = crew()
    story = LadderStory(relation=None)
    events = [*nobody_accepted(story, people), *story.message(people["coach"], "page_reminder", 5, outcome="dropped")]
    statuses = [
        DeliveryStatus(message_sid, status, T0 + timedelta(minutes=5))
        for message_sid in story.sent.values()
        for status in ("sent", "delivered", "delivered")  # "sent" adds nothing; a repeat is shown once
    ]
    roster = {p.responder_id: StaffInfo(p.name, p.role.value) for p in people.values()}
    telling = Telling(DENVER, roster, {p.phone: p.responder_id for p in people.values()})
    entries = timeline_entries(events, telling, statuses)
    for entry in entries:
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d", entry.summary), entry.summary
        assert "+1555" not in entry.summary and "unknown relation" not in entry.actor
    assert entries[0].actor == "reporter" and entries[0].how == "hotline"
    requests = [(e, entry) for e, entry in zip(events, entries, strict=True) if e.type == "notification.requested"]
    assert all(" to " in entry.summary and "not on the roster" not in entry.summary for _, entry in requests)
    said = [entry.summary for _, entry in requests]
    assert "page text to Cleo Clinician (clinician): sent 02:00:12, delivered 02:05:00" in said
    assert "page call to Cleo Clinician (clinician): call placed 02:01:03" in said
    assert "reminder text to Pat Peer (peer coach): not sent 02:05:03 (the page was accepted)" in said
    assert "NOBODY ACCEPTED alarm call to Dana Director (director): call placed 02:04:33" in said
    fold = fold_messages(events, statuses)
    folded = [e for e in events if e.id in fold.folded_into]
    assert {e.type for e in folded} == {"sms.sent", "call.placed", "notification.dropped"}
    assert all(entry.folded_into is not None for e, entry in zip(events, entries, strict=True) if e in folded)


def test_a_report_without_its_request_keeps_a_row_of_its_own() -> None:
    story = LadderStory()
    *_, sent = story.message(team()["clinician"], "page_offer", 1)
    [entry] = timeline_entries([sent], Telling(DENVER))
    assert entry.folded_into is None and entry.summary == "message sent" and entry.how == "text"


@pytest.mark.parametrize(
    ("action", "said"),
    [
        ("timeline", "read the timeline"),
        ("write:incident.cancelled", "cancelled the incident"),
        ("write:documentation.fields_completed", "saved documentation fields"),
        ("responder_link:expired", "opened the incident page from a text's link (expired)"),
        ("export:pdf", "exported the documentation (PDF)"),
        ("something_new", "something new"),
    ],
)
def test_audit_actions_read_in_words(action, said) -> None:
    assert action_words(action) == said


def test_the_organisations_time_zone_is_a_setting(monkeypatch) -> None:
    assert ProjectionsSettings().time_zone() == DENVER
    monkeypatch.setenv("CRISIS_ORG_TIME_ZONE", "Europe/Berlin")
    assert ProjectionsSettings().time_zone() == ZoneInfo("Europe/Berlin")
    for wrong in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
        monkeypatch.setenv("CRISIS_ORG_TIME_ZONE", wrong)
        with pytest.raises(ValidationError, match="time zone"):
            ProjectionsSettings()
