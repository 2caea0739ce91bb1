"""The projections' use cases: ``ClinicalRecordAccess``, what people ask of the clinical record through the JSON
API or the workspace.

- Reads (``RecordReads``, record_reads.py): each read of a clinical record is written to the audit log before
  it is answered.
- Changes (here): documentation completed, attested and signed off; follow-up tasks assigned, completed and
  rescheduled. Each is checked against the record as the read models know it, then appended to the CRISIS
  stream as an event, and entered in the audit log (who, role, which record, which action, when) when the read
  models apply it (read_models.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from services.contract.events import (
    DocumentationAttested,
    DocumentationAttestedData,
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    DocumentationSignedOff,
    DocumentationSignedOffData,
    Envelope,
    FollowUpAssigned,
    FollowUpAssignedData,
    FollowUpAttemptRecorded,
    FollowUpAttemptRecordedData,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpOutcome,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    FollowUpSeriesEnded,
    FollowUpSeriesEndedData,
    SeriesOutcome,
    new_event,
)
from services.projections.domain.access import may_read_incident
from services.projections.domain.documentation import (
    ATTESTATION_STATEMENT,
    DocumentationRefused,
    StaffInfo,
    check_attestation,
    check_sign_off,
)
from services.projections.domain.followups import (
    TaskNotYours,
    TaskRefused,
    TaskState,
    can_take,
    check_task_command,
    fold_tasks,
)
from services.projections.domain.progress import SlaTargets
from services.projections.errors import (
    NotPermitted,
    OutcomeNotConfirmed,
    Refused,
    StreamUnavailable,
    UnknownIncident,
    UnknownTask,
)
from services.projections.read_models import PRODUCER
from services.projections.record_reads import RecordReads
from services.projections.stores import AuditLog, FhirExport, ReadModelQueries
from services.runtime.clock import Clock
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import FRESH, RequestIds
from services.runtime.stream import STREAM_NAME, NotRecorded, OutcomeUnknown

log = logging.getLogger(__name__)
Publish = Callable[[Envelope], Awaitable[int]]


@dataclass(frozen=True)
class TaskScope:
    """How a task command is given: the incident it names (None: whichever the task is on; another one is
    refused, 409) and the ids it records under (from an Idempotency-Key's seed, or fresh)."""

    incident_id: UUID | None = None
    ids: RequestIds = FRESH


ANY = TaskScope()


class ClinicalRecordAccess(RecordReads):
    """Reads (audited, from ``RecordReads``) and changes (events) of the clinical record, on behalf of a signed-in
    person, each checked against what that person may do."""

    def __init__(
        self,
        store: ReadModelQueries,
        audit: AuditLog,
        publish: Publish,
        clock: Clock,
        targets: SlaTargets,
        export_fhir: FhirExport,
        zone: tzinfo = UTC,
    ) -> None:
        super().__init__(store, audit, clock, targets, export_fhir, zone)
        self.publish = publish

    async def _append(self, event: Envelope) -> int:
        """Append to the stream, then wait (bounded) until the read models have it, so the next read shows it.

        Raises StreamUnavailable when the stream did not take it (nothing was recorded then).
        """
        try:
            sequence = await self.publish(event)
        except NotRecorded as exc:
            raise StreamUnavailable("the change was not recorded, and will not be: try again") from exc
        except OutcomeUnknown as exc:
            raise OutcomeNotConfirmed(
                "the stream did not confirm in time whether the change was recorded: look at the record before "
                "you try again"
            ) from exc
        try:
            await asyncio.to_thread(self.store.wait, STREAM_NAME, sequence, 5.0)
        except Exception:  # recorded on the stream; the read models will show it when they catch up
            log.warning("read models did not reach %s within 5 s", sequence)
        return sequence

    async def _involved_responder(self, who: Principal, incident_id: UUID) -> None:
        involved = await asyncio.to_thread(self.store.involved, incident_id)
        # checked first: to all but directors an unknown incident is one they were not on (no probing of ids)
        if not may_read_incident(who.role.value, who.responder_id, involved):
            raise NotPermitted(f"{who.subject} was not on this incident")
        if not involved and not await asyncio.to_thread(self.store.incident, incident_id):
            raise UnknownIncident(incident_id)

    async def complete_fields(
        self, who: Principal, incident_id: UUID, fields: DocumentationFields, *, ids: RequestIds = FRESH
    ) -> int:
        await self._involved_responder(who, incident_id)
        data = DocumentationFieldsCompletedData(
            incident_id=incident_id, fields=fields, completed_by=who.subject, responder_id=who.responder_id
        )
        return await self._append(self._event(DocumentationFieldsCompleted, data, incident_id, ids))

    async def attest(self, who: Principal, incident_id: UUID, *, ids: RequestIds = FRESH) -> int:
        """A licensed responder who was on the incident attests documentation with no gaps left."""
        if who.role is not AccessRole.RESPONDER or who.responder_id is None:
            raise NotPermitted("documentation is attested by the clinician who responded")
        await self._involved_responder(who, incident_id)
        doc, _ = await self.documentation(who, incident_id, action="documentation:attest")
        staff = await asyncio.to_thread(self.staff)
        role = staff[who.responder_id].role if who.responder_id in staff else "unknown role"
        try:
            check_attestation(doc, role)
        except DocumentationRefused as exc:
            raise Refused(str(exc)) from exc
        data = DocumentationAttestedData(
            incident_id=incident_id,
            attested_by=who.subject,
            attester_role=role,
            responder_id=who.responder_id,
            statement=ATTESTATION_STATEMENT,
        )
        return await self._append(self._event(DocumentationAttested, data, incident_id, ids))

    async def sign_off(
        self,
        who: Principal,
        incident_id: UUID,
        decision: Literal["approved", "returned"],
        comment: str | None,
        *,
        ids: RequestIds = FRESH,
    ) -> int:
        if who.role is not AccessRole.DIRECTOR:
            raise NotPermitted("documentation is signed off by a clinical director")
        doc, _ = await self.documentation(who, incident_id, action="documentation:sign-off")
        try:
            check_sign_off(doc)
        except DocumentationRefused as exc:
            raise Refused(str(exc)) from exc
        data = DocumentationSignedOffData(
            incident_id=incident_id, signed_off_by=who.subject, decision=decision, comment=comment
        )
        return await self._append(self._event(DocumentationSignedOff, data, incident_id, ids))

    async def _task_for_command(
        self, who: Principal, task_id: UUID, kind: str, incident_id: UUID | None = None
    ) -> TaskState:
        """The task, if ``who`` may give it this command now: its incident comes from the task itself, and a
        command that names an incident (``incident_id``) naming another one is refused (Refused, 409)."""
        if who.role not in (AccessRole.DIRECTOR, AccessRole.RESPONDER):
            raise NotPermitted("only directors and responders change tasks")
        if who.role is AccessRole.RESPONDER and who.responder_id is None:
            raise NotPermitted("this responder credential names no responder")
        action = f"write:followup.{kind}"
        row = await asyncio.to_thread(self.store.task, task_id)
        if row is None:  # to anyone but a director, the same answer as someone else's task (audited alike)
            await self._refuse_unknown(who, action, "followup", str(task_id), UnknownTask(task_id))
        events = await asyncio.to_thread(self.store.incident_events, UUID(row["incident_id"]))
        state = fold_tasks([r.event for r in events if getattr(r.event.data, "task_id", None) == task_id]).get(task_id)
        acting_as = None if who.role is AccessRole.DIRECTOR else who.responder_id
        try:
            check_task_command(state, kind, acting_as, incident_id)  # type: ignore[arg-type]
        except TaskNotYours:
            await self._audited(who, action, "followup", str(task_id), False)
        except TaskRefused as exc:
            raise Refused(str(exc)) from exc
        return state  # type: ignore[return-value]

    async def assign_task(self, who: Principal, task_id: UUID, assignee_id: UUID, scope: TaskScope = ANY) -> int:
        task = await self._task_for_command(who, task_id, "assign", scope.incident_id)
        staff = await asyncio.to_thread(self.staff)
        person = staff.get(assignee_id)
        if person is None:
            raise Refused(f"no responder {assignee_id} is known")
        if not can_take(task.owner_role, person.role):
            raise Refused(
                f"a {person.role.replace('_', ' ')} cannot take a task for a {task.owner_role.replace('_', ' ')}"
            )
        data = FollowUpAssignedData(
            task_id=task_id, incident_id=task.incident_id, assignee_id=assignee_id, assigned_by=who.subject
        )
        return await self._append(self._event(FollowUpAssigned, data, task.incident_id, scope.ids))

    async def complete_task(
        self, who: Principal, task_id: UUID, outcome: FollowUpOutcome, note: str | None, scope: TaskScope = ANY
    ) -> int:
        data = partial(FollowUpCompletedData, outcome=outcome, note=note, completed_by=who.subject)
        return await self._task_command(who, task_id, "complete", scope, FollowUpCompleted, data)

    async def reschedule_task(
        self, who: Principal, task_id: UUID, due_at: datetime, reason: str, scope: TaskScope = ANY
    ) -> int:
        data = partial(FollowUpRescheduledData, due_at=due_at, reason=reason, rescheduled_by=who.subject)
        return await self._task_command(who, task_id, "reschedule", scope, FollowUpRescheduled, data)

    async def record_attempt(
        self, who: Principal, task_id: UUID, attempt: Mapping[str, Any], scope: TaskScope = ANY
    ) -> int:
        """An outreach attempt (issue 19): numbered after the task's last one; ``attempt`` has channel, reached,
        offered, accepted, safety_plan_reviewed, further_contact."""
        task = await self._task_for_command(who, task_id, "attempt", scope.incident_id)
        data = partial(FollowUpAttemptRecordedData, number=len(task.attempts) + 1, recorded_by=who.subject, **attempt)
        return await self._task_command(who, task_id, "attempt", scope, FollowUpAttemptRecorded, data)

    async def end_series(self, who: Principal, task_id: UUID, outcome: SeriesOutcome, scope: TaskScope = ANY) -> int:
        task = await self._task_for_command(who, task_id, "end", scope.incident_id)
        data = partial(FollowUpSeriesEndedData, outcome=outcome, attempts=len(task.attempts), ended_by=who.subject)
        return await self._task_command(who, task_id, "end", scope, FollowUpSeriesEnded, data)

    async def _task_command(
        self,
        who: Principal,
        task_id: UUID,
        kind: str,
        scope: TaskScope,
        event_class: type[Envelope],
        data: Callable[..., BaseModel],
    ) -> int:
        """A change to a task by ``who``, once they may give it (``_task_for_command``), appended as
        ``event_class`` with ``data`` completed by the task's own fields: its id, its incident, and the responder
        acting (None for a director)."""
        task = await self._task_for_command(who, task_id, kind, scope.incident_id)
        acting = None if who.role is AccessRole.DIRECTOR else who.responder_id
        event_data = data(task_id=task_id, incident_id=task.incident_id, responder_id=acting)
        return await self._append(self._event(event_class, event_data, task.incident_id, scope.ids))

    def _event(self, event_class: type[Envelope], data: Any, incident_id: UUID, ids: RequestIds) -> Envelope:
        return new_event(
            event_class,
            data,
            event_id=ids.id_for(event_class.TYPE),  # from the Idempotency-Key's seed, or new
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            incident_id=incident_id,
        )


def responders_able(staff: dict[UUID, StaffInfo], owner_role: str) -> Iterable[tuple[UUID, StaffInfo]]:
    return [(rid, info) for rid, info in staff.items() if can_take(owner_role, info.role)]
