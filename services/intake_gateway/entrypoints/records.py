"""Follow-up task commands through the gateway: assign, complete with an outcome, reschedule (202 Accepted).

Each request is appended to the CRISIS stream as a ``followup.*`` event. The gateway holds no tasks, so it
checks roles and shapes only; the projections service (which owns the tasks) applies an event only when the
task is open and the caller may change it (a director, or the assignee for complete/reschedule). A command
that does not apply stays on the stream, is shown in the task's history as refused, and changes nothing. The
director workspace offers the same commands with an immediate answer (409/403), because it can see the task.

Roles: assign is for directors; complete and reschedule for directors and responders (acting as themselves).
With an ``Idempotency-Key`` header a retried request is the same event (stored once by the stream).
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.contract.events import (
    Envelope,
    FollowUpAssigned,
    FollowUpAssignedData,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpOutcome,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    derived_id,
    new_event,
)
from services.intake_gateway.entrypoints.auth import AUTH_RESPONSES, require_role
from services.runtime.credentials import AccessRole, Principal
from services.runtime.problems import PROBLEM_RESPONSES, Problem

log = logging.getLogger(__name__)
router = APIRouter(responses=PROBLEM_RESPONSES | AUTH_RESPONSES, tags=["follow-ups"])
PRODUCER = "intake_gateway"

director_only = require_role(AccessRole.DIRECTOR)
director_or_responder = require_role(AccessRole.DIRECTOR, AccessRole.RESPONDER)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="send the same key when retrying: the retry is the same event and is stored once",
    ),
]


class AssignTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incident_id: UUID = Field(description="the task's incident (GET /v1/followups on the projections service)")
    assignee_id: UUID


class CompleteTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incident_id: UUID
    outcome: FollowUpOutcome
    note: str | None = Field(default=None, max_length=2000)


class RescheduleTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incident_id: UUID
    due_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=300)


class TaskCommandAccepted(BaseModel):
    """On the stream; the projections service applies it if the task is open and the caller may change it."""

    event_type: str
    event_id: UUID
    task_id: UUID


def acting_as(principal: Principal) -> UUID | None:
    """The responder a command speaks for; None for a director (who may change any task)."""
    if principal.role is AccessRole.DIRECTOR:
        return None
    if principal.responder_id is None:
        raise Problem(403, "this responder credential names no responder")
    return principal.responder_id


async def append(request: Request, event_class: type[Envelope], data: BaseModel, key: str | None, who: str) -> Envelope:
    event_id = derived_id(event_class.TYPE, who, key, data.model_dump_json()) if key else uuid4()
    event = new_event(
        event_class,
        data,
        event_id=event_id,
        occurred_at=request.app.state.clock.now(),
        producer=PRODUCER,
        incident_id=data.incident_id,  # type: ignore[attr-defined]
    )
    try:
        await request.app.state.publish(event)
    except Exception as exc:
        log.error("could not append %s: %s", event_class.TYPE, type(exc).__name__)
        raise Problem(503, "the change could not be recorded; retry") from exc
    return event


@router.post("/v1/followups/{task_id}/assign", status_code=202)
async def assign_task(
    request: Request,
    task_id: UUID,
    body: AssignTask,
    principal: Annotated[Principal, Depends(director_only)],
    key: IdempotencyKey = None,
) -> TaskCommandAccepted:
    """Assign a follow-up task (`followup.assigned`). Directors only."""
    data = FollowUpAssignedData(
        task_id=task_id, incident_id=body.incident_id, assignee_id=body.assignee_id, assigned_by=principal.subject
    )
    event = await append(request, FollowUpAssigned, data, key, principal.subject)
    return TaskCommandAccepted(event_type=event.type, event_id=event.id, task_id=task_id)


@router.post("/v1/followups/{task_id}/complete", status_code=202)
async def complete_task(
    request: Request,
    task_id: UUID,
    body: CompleteTask,
    principal: Annotated[Principal, Depends(director_or_responder)],
    key: IdempotencyKey = None,
) -> TaskCommandAccepted:
    """Complete a task with an outcome (`followup.completed`): a director, or the assignee."""
    data = FollowUpCompletedData(
        task_id=task_id,
        incident_id=body.incident_id,
        outcome=body.outcome,
        note=body.note,
        completed_by=principal.subject,
        responder_id=acting_as(principal),
    )
    event = await append(request, FollowUpCompleted, data, key, principal.subject)
    return TaskCommandAccepted(event_type=event.type, event_id=event.id, task_id=task_id)


@router.post("/v1/followups/{task_id}/reschedule", status_code=202)
async def reschedule_task(
    request: Request,
    task_id: UUID,
    body: RescheduleTask,
    principal: Annotated[Principal, Depends(director_or_responder)],
    key: IdempotencyKey = None,
) -> TaskCommandAccepted:
    """Move a task's due time (`followup.rescheduled`): a director, or the assignee."""
    data = FollowUpRescheduledData(
        task_id=task_id,
        incident_id=body.incident_id,
        due_at=body.due_at.astimezone(UTC),
        reason=body.reason,
        rescheduled_by=principal.subject,
        responder_id=acting_as(principal),
    )
    event = await append(request, FollowUpRescheduled, data, key, principal.subject)
    return TaskCommandAccepted(event_type=event.type, event_id=event.id, task_id=task_id)
