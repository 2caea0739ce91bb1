"""Reassignment of overdue follow-up tasks by the on-call schedule (issue 19 section 1: "reassignment when a coach
is off is automatic, following the on-call schedule").

The follow-up desk (projections) owns tasks and flags them overdue; the dispatcher owns the schedule. So the
dispatcher follows each task (``domain/task_watch.py``) and, on ``followup.overdue`` for an open task whose assignee
is not on call now (or that nobody has), gives it to the first person on duty whose role may take it
(``QUALIFIED_ROLES``), publishing ``followup.assigned`` by "rules: on call". The follow-up desk then texts the new
assignee, as for any assignment. An assignee who is on call keeps the task (the overdue notice reached them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError

from services.contract.events import (
    QUALIFIED_ROLES,
    Envelope,
    FollowUpAssigned,
    FollowUpAssignedData,
    FollowUpCancelled,
    FollowUpCompleted,
    FollowUpCreated,
    FollowUpOverdue,
    FollowUpSeriesEnded,
    Role,
)
from services.dispatcher.domain.task_watch import TaskWatch, on_call_taker
from services.dispatcher.outbox_events import contract_event
from services.dispatcher.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from services.dispatcher.application import Dispatcher

BY_SCHEDULE = "rules: on call"


def _watch(work: UnitOfWork, task_id: Any) -> TaskWatch | None:
    try:
        return work.get(TaskWatch.create_id(task_id))
    except AggregateNotFoundError:
        return None


def on_created(dispatcher: Dispatcher, work: UnitOfWork, created: FollowUpCreated) -> None:
    data = created.data
    if _watch(work, data.task_id) is None:
        work.add(TaskWatch(data.task_id, data.incident_id, data.owner_role.value, data.assignee_id))


def on_assigned(dispatcher: Dispatcher, work: UnitOfWork, assigned: FollowUpAssigned) -> None:
    watch = _watch(work, assigned.data.task_id)
    if watch is not None and watch.open and watch.assignee_id != assigned.data.assignee_id:
        watch.assign(assigned.data.assignee_id)


def on_closed(dispatcher: Dispatcher, work: UnitOfWork, event: Any) -> None:
    watch = _watch(work, event.data.task_id)
    if watch is not None and watch.open:
        watch.close()


def on_overdue(dispatcher: Dispatcher, work: UnitOfWork, overdue: FollowUpOverdue) -> None:
    watch = _watch(work, overdue.data.task_id)
    if watch is None or not watch.open:
        return
    now = dispatcher.clock.now()
    qualified = QUALIFIED_ROLES.get(Role(watch.owner_role), frozenset({watch.owner_role}))
    taker = on_call_taker(qualified, dispatcher.known.on_duty(now), watch.assignee_id)
    if taker is not None:
        watch.reassign(taker.responder_id, watch.assignee_id, overdue.id, now)


TASK_HANDLERS: dict[type, Callable[[Dispatcher, UnitOfWork, Any], None]] = {
    FollowUpCreated: on_created,
    FollowUpAssigned: on_assigned,
    FollowUpCompleted: on_closed,
    FollowUpCancelled: on_closed,
    FollowUpSeriesEnded: on_closed,
    FollowUpOverdue: on_overdue,
}


def publish_reassigned(outbox: Any, stored: TaskWatch.Reassigned) -> Sequence[Envelope]:
    watch: TaskWatch = outbox.repository.get(stored.originator_id, version=stored.originator_version)
    data = FollowUpAssignedData(
        task_id=watch.task_id, incident_id=watch.incident_id, assignee_id=stored.assignee_id, assigned_by=BY_SCHEDULE
    )
    return (contract_event(FollowUpAssigned, data, stored, watch.incident_id),)
