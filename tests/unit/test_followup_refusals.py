"""A follow-up command its task refuses when it is applied changes nothing, and the timeline says it was
refused (with why, without its text), from the same fold as the task itself."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    Envelope,
    FollowUpAssigned,
    FollowUpAssignedData,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpCreated,
    FollowUpCreatedData,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    Priority,
    Role,
    new_event,
)
from services.projections.domain.entries import timeline_entries
from services.projections.domain.followups import (
    TaskRefused,
    check_task_command,
    fold_tasks,
    refused_commands,
)
from tests.integration.test_projections import Story

STORY = Story()
ASSIGNEE = uuid4()
TASK = uuid4()


def event(cls: type[Envelope], data, minutes: float, incident_id: UUID = STORY.incident_id) -> Envelope:
    return new_event(cls, data, event_id=uuid4(), occurred_at=STORY.at(minutes), producer="t", incident_id=incident_id)


def created() -> Envelope:
    data = FollowUpCreatedData(
        task_id=TASK,
        incident_id=STORY.incident_id,
        rule="post_overdose_outreach",
        owner_role=Role.PEER_COACH,
        assignee_id=ASSIGNEE,
        due_at=STORY.at(60 * 72),
        priority=Priority.P2,
        task_code="1234",
        basis="test",
    )
    return event(FollowUpCreated, data, 0)


def completed(minutes: float, note: str, responder_id: UUID | None, incident_id: UUID = STORY.incident_id):
    data = FollowUpCompletedData(
        task_id=TASK,
        incident_id=incident_id,
        outcome="contact_made",
        note=note,
        completed_by="someone",
        responder_id=responder_id,
    )
    return event(FollowUpCompleted, data, minutes, incident_id)


def test_a_second_completion_is_refused_on_the_timeline_without_its_note() -> None:
    first, second = completed(10, "kit replaced", ASSIGNEE), completed(11, "second try", None)
    events = [created(), first, second]
    assert refused_commands(events) == {second.id: "the task is already done"}
    entries = timeline_entries(events)
    assert entries[1].summary == "follow-up completed: contact made" and entries[1].details["note"] == "kit replaced"
    assert entries[2].summary == "follow-up completion refused: the task is already done"
    assert "note" not in entries[2].details and entries[2].details["refused"] == "the task is already done"
    task = fold_tasks(events)[TASK]
    assert task.note == "kit replaced" and task.history[-1]["why"] == "the task is already done"


def test_commands_by_a_stranger_or_naming_another_incident_are_refused() -> None:
    stranger, elsewhere = uuid4(), uuid4()
    by_stranger = completed(10, "not mine", stranger)
    # filed under this incident but naming another in its data (nothing checked that before the projections did)
    named_elsewhere = event(
        FollowUpRescheduled,
        FollowUpRescheduledData(
            task_id=TASK, incident_id=elsewhere, due_at=STORY.at(60 * 96), reason="moved", rescheduled_by="x"
        ),
        11,
    )
    assigned_elsewhere = event(
        FollowUpAssigned,
        FollowUpAssignedData(task_id=TASK, incident_id=elsewhere, assignee_id=stranger, assigned_by="dr"),
        12,
        elsewhere,
    )
    events = [created(), by_stranger, named_elsewhere, assigned_elsewhere]
    refused = refused_commands(events)
    assert refused[by_stranger.id] == "only the assignee or a director may change this task"
    assert refused[named_elsewhere.id] == "the task belongs to another incident"
    assert refused[assigned_elsewhere.id] == "the task belongs to another incident"
    summaries = [e.summary for e in timeline_entries(events)]
    assert summaries[1:] == [
        "follow-up completion refused: only the assignee or a director may change this task",
        "follow-up reschedule refused: the task belongs to another incident",
        "follow-up assignment refused: the task belongs to another incident",
    ]
    task = fold_tasks(events)[TASK]
    assert task.status == "open" and task.assignee_id == ASSIGNEE and task.due_at == STORY.at(60 * 72)


def test_a_completion_filed_under_an_incident_without_the_task_is_refused_there() -> None:
    other = Story()
    stray = completed(10, "wrong place", None, incident_id=other.incident_id)
    assert refused_commands([stray]) == {stray.id: "the task is not one of this incident's"}
    [entry] = timeline_entries([stray])
    assert entry.summary == "follow-up completion refused: the task is not one of this incident's"
    assert "wrong place" not in str(entry.details)
    assert fold_tasks([stray]) == {}


def test_a_command_naming_another_incident_is_refused_before_it_is_appended() -> None:
    state = fold_tasks([created()])[TASK]
    check_task_command(state, "complete", ASSIGNEE, STORY.incident_id)
    with pytest.raises(TaskRefused, match="another incident"):
        check_task_command(state, "complete", ASSIGNEE, uuid4())
