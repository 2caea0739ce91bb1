"""Overdue follow-up tasks follow the on-call schedule (issue 19 section 1), on the dispatcher (real store, fed by
hand): an overdue task whose assignee is off call goes to the first person on duty whose role may take it
(``followup.assigned`` by "rules: on call"); one whose assignee is on call stays; a closed task is left alone; an
unassigned overdue task gets someone on call."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpCreated,
    FollowUpCreatedData,
    FollowUpOverdue,
    FollowUpOverdueData,
    Priority,
    Role,
    new_event,
)
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import harness, of, settings, team  # noqa: F401 - fixtures


def created(task_id, incident_id, owner: Role, assignee=None):
    data = FollowUpCreatedData(
        task_id=task_id, incident_id=incident_id, rule="post_overdose_outreach", owner_role=owner, assignee_id=assignee,
        due_at=T0 + timedelta(hours=72), priority=Priority.P2, task_code="7400", basis="overdose",
    )  # fmt: skip
    return new_event(FollowUpCreated, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def overdue(task_id, incident_id, assignee=None):
    data = FollowUpOverdueData(
        task_id=task_id, incident_id=incident_id, due_at=T0 + timedelta(hours=72), assignee_id=assignee, notified=[]
    )
    return new_event(FollowUpOverdue, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def test_an_overdue_task_goes_to_someone_on_call_when_its_assignee_is_off(harness, team) -> None:  # noqa: F811
    peer, clinician = team["peer"], team["near"]
    off_call = f.responder("peer_coach", skills=("naloxone_carrier",), home=(39.74, -104.99))
    harness.feed(f.registered(off_call))  # on the roster, in no rotation: off call
    incident = uuid4()
    away, here, unassigned, done = uuid4(), uuid4(), uuid4(), uuid4()
    harness.feed(
        created(away, incident, Role.PEER_COACH, off_call.responder_id),
        created(here, incident, Role.PEER_COACH, peer.responder_id),
        created(unassigned, incident, Role.CLINICIAN),
        created(done, incident, Role.PEER_COACH, off_call.responder_id),
    )
    completed = FollowUpCompletedData(task_id=done, incident_id=incident, outcome="contact_made", completed_by="pat")
    harness.feed(new_event(FollowUpCompleted, completed, event_id=uuid4(), occurred_at=T0, producer="projections"))
    moved = harness.feed(
        overdue(away, incident, off_call.responder_id),
        overdue(here, incident, peer.responder_id),
        overdue(unassigned, incident),
        overdue(done, incident, off_call.responder_id),
    )
    assigned = {e.data.task_id: (e.data.assignee_id, e.data.assigned_by) for e in of(moved, "followup.assigned")}
    assert assigned[away] == (peer.responder_id, "rules: on call")
    assert here not in assigned and done not in assigned
    assert assigned[unassigned][0] in {clinician.responder_id, team["second"].responder_id, team["far"].responder_id}
    again = harness.feed(overdue(away, incident, peer.responder_id))  # overdue again: the new assignee is on call
    assert of(again, "followup.assigned") == []
