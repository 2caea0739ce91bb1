"""The projections' use cases.

- ``ReadModels``: a stream processor whose every event updates the read-model tables and the stream position
  in one transaction (exactly once in effect, like the other services' processors).
- ``Records``: what people ask of them, through the JSON API or the workspace. Every read of a clinical record
  is written to the audit log before it is answered; every change is an event appended to the CRISIS stream,
  entered in the audit log (who, role, which record, which action, when) when the read models apply it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, NoReturn
from uuid import UUID, uuid4

from eventsourcing.persistence import Tracking

from services.contract.events import (
    AccessRefused,
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
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpOutcome,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    MessageDeadLettered,
    ResponderRegistered,
    ResponderRetired,
    ResponderUpdated,
    new_event,
)
from services.projections.adapters.fhir_bundle import fhir_bundle
from services.projections.adapters.sql_audit_log import AuditLog
from services.projections.adapters.sql_read_models import SCHEMA_VERSION, ReadModelStore, Sealer, parse_time
from services.projections.domain.access import may_read_incident, may_see_task
from services.projections.domain.audit import record_written
from services.projections.domain.documentation import (
    ATTESTATION_STATEMENT,
    Documentation,
    DocumentationRefused,
    StaffInfo,
    assemble_documentation,
    check_attestation,
    check_sign_off,
)
from services.projections.domain.entries import timeline_entries
from services.projections.domain.followups import (
    RULE_TITLES,
    TaskNotYours,
    TaskRefused,
    TaskState,
    can_take,
    check_task_command,
    fold_tasks,
    refused_commands,
)
from services.projections.domain.metrics import IncidentRow, TaskRow, follow_up_metrics, response_metrics
from services.projections.domain.progress import (
    Progress,
    RecordedEvent,
    SlaTargets,
    incident_progress,
    known_at,
    sla_marks,
)
from services.runtime.clock import Clock
from services.runtime.credentials import AccessRole, Principal
from services.runtime.processor import StreamProcessor
from services.runtime.stream import STREAM_NAME, NotRecorded, OutcomeUnknown

log = logging.getLogger(__name__)
PRODUCER = "projections"
Publish = Callable[[Envelope], Awaitable[int]]


class ReadModels(StreamProcessor):
    """Read models kept from the stream: timelines, incidents, people involved, tasks, responders."""

    producer = PRODUCER

    def __init__(self, env: dict[str, str] | None = None, *, clock: Clock, prefix: str = "projections") -> None:
        super().__init__(env, clock=clock)
        self.store = ReadModelStore(
            self.recorder.datastore, Sealer(self.mapper.compressor, self.mapper.cipher), prefix=prefix
        )
        self.audit = AuditLog(self.recorder.datastore, prefix=prefix)
        self.audit.create_table()
        self.role_of: Callable[[str], str | None] = lambda subject: None
        """The role of a credential's subject (set by ``Records``), entered with each write; None: 'unknown'."""
        current = self.store.schema_version() == SCHEMA_VERSION
        self.store.create_tables()
        self.needs_replay = not current and self.processed_position() > 0
        """True when the tables are new or of an older schema but the position is not (an upgrade): the stream
        must be replayed into fresh tables."""
        self.stream_times: dict[int, datetime] = {}
        """Stream sequence -> the time the stream stored it, set by the consumer just before delivery."""
        self.listeners: list[Callable[[int], None]] = []
        """Called (from the processing thread) with the new position after each committed change."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        recorded_at = self.stream_times.pop(tracking.notification_id, None) or domain_event.occurred_at
        self.apply_batch([RecordedEvent(tracking.notification_id, recorded_at, domain_event)])

    def apply_batch(self, batch: Sequence[RecordedEvent]) -> None:
        """Apply events (stream order) and record the last one's position, all in one transaction.

        Each incident (and task) the batch touches is folded and saved once, after its last event in the batch.
        Raises IntegrityError when that position is already recorded (the batch was applied before).
        """
        if not batch:
            return
        last = batch[-1].sequence
        try:
            with self.store.transaction(commit=True) as cursor:
                self.recorder._insert_tracking(cursor, Tracking(STREAM_NAME, last))  # first: a repeat stops here
                touched: dict[UUID, RecordedEvent] = {}
                tasks: dict[UUID, tuple[UUID, int]] = {}
                for recorded in batch:
                    if self._apply(cursor, recorded):
                        incident_id = recorded.event.incident_id
                        touched[incident_id] = recorded
                        if (task_id := getattr(recorded.event.data, "task_id", None)) is not None:
                            tasks[task_id] = (incident_id, recorded.sequence)
                for incident_id, latest in touched.items():
                    self._save_incident(cursor, incident_id, latest)
                for task_id, (incident_id, sequence) in tasks.items():
                    self._save_task(cursor, incident_id, task_id, sequence)
        except BaseException:
            self.store.forget()
            raise
        for listener in self.listeners:
            try:
                listener(last)
            except Exception:  # a closed event loop at shutdown: the change is committed, nobody is waiting
                log.debug("change listener failed", exc_info=True)

    def _apply(self, cursor: Any, recorded: RecordedEvent) -> bool:
        """Record one event; True if it belongs to an incident's timeline (and that incident must be saved)."""
        event = recorded.event
        if isinstance(event, ResponderRegistered | ResponderUpdated):
            data = event.data
            self.store.save_responder(
                cursor, data.responder_id, data.name, data.role.value, data.supervisor_id, recorded.sequence
            )
        elif isinstance(event, ResponderRetired):
            self.store.retire_responder(cursor, event.data.responder_id, recorded.sequence)
        elif isinstance(event, MessageDeadLettered):
            self.store.add_dead_letter(cursor, recorded, event.data.original_incident_id())
        elif isinstance(event, AccessRefused):
            self._audit_refusal(cursor, event)
        if event.incident_id is None or self.store.has_event(cursor, event.id):
            return False  # not about an incident, or the same event re-published after the de-duplication window
        self.store.add_event(cursor, recorded)
        self._audit_write(cursor, event)
        return True

    def _audit_write(self, cursor: Any, event: Envelope) -> None:
        """A person's change to a record enters the audit log with the event that records it (same transaction).

        A follow-up command its task refused (folded with the incident's earlier events, as the timeline does)
        is entered as ``refused``, never as ``recorded``.
        """
        written = record_written(event.type, event.data, event.incident_id)
        if written is None:
            return
        refused = False
        if written.record_type == "followup":
            events = [r.event for r in self.store.events_for_update(cursor, event.incident_id)]
            refused = event.id in refused_commands(events)
        self.audit.record_write(
            cursor,
            event_id=event.id,
            at=event.occurred_at,
            subject=written.subject,
            role=self.role_of(written.subject) or "unknown",
            responder_id=written.responder_id,
            action=written.action,
            record_type=written.record_type,
            record_id=written.record_id,
            outcome="refused" if refused else "recorded",
        )

    def _audit_refusal(self, cursor: Any, event: AccessRefused) -> None:
        """A refusal by another service (the gateway's write scopes) enters the audit log as denied."""
        data = event.data
        self.audit.record_write(
            cursor,
            outcome="denied",
            event_id=event.id,
            at=event.occurred_at,
            subject=data.subject,
            role=data.role,
            responder_id=data.responder_id,
            action=data.action,
            record_type=data.record_type,
            record_id=data.record_id,
        )

    def _save_incident(self, cursor: Any, incident_id: UUID, latest: RecordedEvent) -> None:
        events = self.store.events_for_update(cursor, incident_id)
        progress = incident_progress(events)
        if progress is None:
            return
        tasks = fold_tasks([r.event for r in events])
        doc = assemble_documentation(events, progress, {}, [task_summary(t) for t in tasks.values()])
        self.store.save_incident(cursor, progress, doc.status, len(doc.gaps), latest)

    def _save_task(self, cursor: Any, incident_id: UUID, task_id: UUID, sequence: int) -> None:
        events = self.store.events_for_update(cursor, incident_id)
        task = fold_tasks([r.event for r in events if getattr(r.event.data, "task_id", None) == task_id])
        if task_id in task:
            self.store.save_task(cursor, task[task_id], sequence)

    def processed_position(self) -> int:
        return self.recorder.max_tracking_id(STREAM_NAME) or 0

    def reset(self) -> None:
        """Empty read models at position 0, ready for a replay from sequence 1. The audit log is kept."""
        with self.processing_lock:
            self.store.drop_tables()
            tracking = getattr(self.recorder, "tracking_table_name", "tracking")
            with self.store.transaction(commit=True) as cursor:
                self.store.execute(cursor, f"DELETE FROM {tracking} WHERE application_name = %s", (STREAM_NAME,))
            self.store.create_tables()
            self.needs_replay = False

    def timeline(self, incident_id: UUID) -> list[dict[str, Any]]:
        """The incident's entries in stream order (unaudited: for tests and tools, not for people)."""
        events = self.store.incident_events(incident_id)
        if not events:
            raise UnknownIncident(incident_id)
        return entry_dicts(events)


def task_summary(task: TaskState) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "rule": task.rule,
        "title": task.title,
        "owner_role": task.owner_role,
        "assignee_id": task.assignee_id,
        "due_at": task.due_at,
        "status": task.status,
        "outcome": task.outcome,
    }


def entry_dicts(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """One incident's timeline entries, in stream order (a follow-up command its task refused shows as refused)."""
    entries = timeline_entries([r.event for r in events])
    return [
        {
            "event_id": recorded.event.id,
            "type": recorded.event.type,
            "occurred_at": recorded.event.occurred_at,
            "recorded_at": recorded.recorded_at,
            "stream_sequence": recorded.sequence,
            "actor": entry.actor,
            "channel": entry.channel,
            "summary": entry.summary,
            "details": entry.details,
            "sla_breach": False,
        }
        for recorded, entry in zip(events, entries, strict=True)
    ]


class UnknownIncident(LookupError):
    pass


class UnknownTask(LookupError):
    pass


class NotPermitted(PermissionError):
    """The caller's role or involvement does not admit this."""


def record_refused(who: Principal) -> NotPermitted:
    """The one answer to a refused read of a record, whether it exists or not."""
    return NotPermitted(f"{who.subject} may not read this record")


class Refused(Exception):
    """The record's state does not allow this change now (answered 409)."""


class OutcomeNotConfirmed(Exception):
    """The change was sent to the stream but not confirmed before the deadline: it may or may not be recorded
    (answered 504)."""


class StreamUnavailable(Exception):
    """The CRISIS stream did not accept an event, and never will (answered 503)."""


class Records:
    """Reads (audited) and changes (events) of the clinical record, on behalf of a signed-in person."""

    def __init__(
        self,
        read_models: ReadModels,
        audit: AuditLog,
        publish: Publish,
        clock: Clock,
        targets: SlaTargets,
        role_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.read_models = read_models
        self.store = read_models.store
        self.audit = audit
        if role_of is not None:
            read_models.role_of = role_of
        self.publish = publish
        self.clock = clock
        self.targets = targets

    # -- reading --------------------------------------------------------------------------------------------

    async def _audited(
        self,
        who: Principal,
        action: str,
        record_type: str,
        record_id: str,
        allowed: bool,
        refusal: str | None = None,
    ) -> None:
        """Enter the read in the audit log (read or denied); when not ``allowed``, then raise NotPermitted with
        ``refusal`` (default: the answer every refused record read gets)."""
        await self._audit(who, action, record_type, record_id, "read" if allowed else "denied")
        if not allowed:
            raise NotPermitted(refusal) if refusal else record_refused(who)

    async def _audit(self, who: Principal, action: str, record_type: str, record_id: str, outcome: str) -> None:
        await asyncio.to_thread(
            self.audit.record,
            at=self.clock.now(),
            subject=who.subject,
            role=who.role.value,
            responder_id=who.responder_id,
            action=action,
            record_type=record_type,
            record_id=record_id,
            outcome=outcome,
        )

    async def _refuse_unknown(
        self, who: Principal, action: str, record_type: str, record_id: str, unknown: LookupError
    ) -> NoReturn:
        """A read of a record that does not exist. A director is told so (``unknown``: 404), audited as
        not_found; anyone else gets exactly the answer of a record they may not read (403), audited as denied,
        so that nobody can probe which ids exist."""
        director = who.role is AccessRole.DIRECTOR
        await self._audit(who, action, record_type, record_id, "not_found" if director else "denied")
        raise unknown if director else record_refused(who)

    async def _incident_events(self, who: Principal, incident_id: UUID, action: str) -> list[RecordedEvent]:
        events = await asyncio.to_thread(self.store.incident_events, incident_id)
        if not events:
            await self._refuse_unknown(who, action, "incident", str(incident_id), UnknownIncident(incident_id))
        involved = await asyncio.to_thread(self.store.involved, incident_id)
        await self._audited(
            who, action, "incident", str(incident_id), may_read_incident(who.role.value, who.responder_id, involved)
        )
        return events

    def staff(self) -> dict[UUID, StaffInfo]:
        return {UUID(r["responder_id"]): StaffInfo(r["name"], r["role"]) for r in self.store.responders()}

    async def board(self, who: Principal, status: str | None = "open") -> list[dict[str, Any]]:
        """Incidents (newest first) the caller may see, each with its SLA state now. Not a clinical record."""
        if who.role is AccessRole.DIRECTOR:
            rows = await asyncio.to_thread(self.store.incidents, status=status)
        elif who.role is AccessRole.RESPONDER and who.responder_id is not None:
            rows = await asyncio.to_thread(self.store.incidents, status=status, responder_id=who.responder_id)
        else:
            await self._audited(who, "board", "incidents", "all", False, "only directors and responders see incidents")
        now = self.clock.now()
        return [board_row(row, self.targets, now) for row in rows]

    async def timeline(self, who: Principal, incident_id: UUID, as_of: datetime | None = None) -> dict[str, Any]:
        """Every event of the incident in order with actor, channel and time, its durations and SLA state,
        as known at ``as_of`` (now when None). Audited."""
        events = await self._incident_events(who, incident_id, "timeline")
        known = known_at(events, as_of)
        now = as_of or self.clock.now()
        progress = incident_progress(known) or Progress(incident_id=incident_id)
        entries = entry_dicts(known)
        for mark in sla_marks(progress, self.targets, now):
            entries.append(
                {
                    "event_id": None,
                    "type": "sla.breached",
                    "occurred_at": mark.at,
                    "recorded_at": None,
                    "stream_sequence": None,
                    "actor": "projections",
                    "channel": "system",
                    "summary": mark.summary,
                    "details": {},
                    "sla_breach": True,
                }
            )
        entries.sort(key=lambda e: (e["occurred_at"], e["stream_sequence"] or 0))
        staff = await asyncio.to_thread(self.staff)
        for entry in entries:
            entry["actor"] = name_actor(entry["actor"], staff)
            entry["summary"] = name_actor(entry["summary"], staff)
        sla = progress.sla(self.targets, now)
        return {
            "incident_id": incident_id,
            "as_of": as_of,
            "status": progress.status,
            "short_code": progress.short_code,
            "kind": progress.kind,
            "priority": progress.priority,
            "zone": progress.zone,
            "milestones": {
                "reported_at": progress.reported_at,
                "first_page_at": progress.first_page_at,
                "acknowledged_at": progress.acknowledged_at,
                "en_route_at": progress.en_route_at,
                "on_scene_at": progress.on_scene_at,
                "closed_at": progress.closed_at,
            },
            "durations_seconds": progress.durations(),
            "escalations": progress.escalations,
            "sla": None
            if sla is None
            else {
                "target_minutes": sla.target_minutes,
                "due_at": sla.due_at,
                "state": sla.state,
                "minutes_late": sla.minutes_late,
            },
            "entries": entries,
        }

    async def documentation(
        self, who: Principal, incident_id: UUID, as_of: datetime | None = None, action: str = "documentation"
    ) -> tuple[Documentation, Progress]:
        """The crisis documentation with its gaps, as known at ``as_of``. Audited under ``action``."""
        events = await self._incident_events(who, incident_id, action)
        return await asyncio.to_thread(self._document, incident_id, known_at(events, as_of))

    def _document(self, incident_id: UUID, events: list[RecordedEvent]) -> tuple[Documentation, Progress]:
        progress = incident_progress(events) or Progress(incident_id=incident_id)
        tasks = fold_tasks([r.event for r in events])
        staff = self.staff()
        summaries = []
        for task in tasks.values():
            summary = task_summary(task)
            assignee = staff.get(task.assignee_id) if task.assignee_id else None
            summary["assignee_name"] = assignee.name if assignee else None
            summaries.append(summary)
        return assemble_documentation(events, progress, staff, summaries), progress

    async def fhir_bundle(self, who: Principal, incident_id: UUID) -> dict[str, Any]:
        """The documentation as a FHIR R4 Bundle. Audited as an export."""
        events = await self._incident_events(who, incident_id, "export:fhir")
        return await asyncio.to_thread(self._fhir, incident_id, events)

    def _fhir(self, incident_id: UUID, events: list[RecordedEvent]) -> dict[str, Any]:
        doc, progress = self._document(incident_id, events)
        tasks = list(fold_tasks([r.event for r in events]).values())
        names = {rid: info.name for rid, info in self.staff().items()}
        return fhir_bundle(doc, progress, events, tasks, names)

    async def tasks(self, who: Principal, *, mine: bool = False, status: str | None = None) -> list[dict[str, Any]]:
        """Directors: every task (or only theirs, never); responders: the tasks assigned to them."""
        if who.role not in (AccessRole.DIRECTOR, AccessRole.RESPONDER):
            await self._audited(who, "tasks", "followups", "all", False, "only directors and responders have tasks")
        await self._audited(
            who, "tasks", "followups", "all" if who.role is AccessRole.DIRECTOR and not mine else "mine", True
        )
        if who.role is AccessRole.DIRECTOR and not mine:
            rows = await asyncio.to_thread(self.store.tasks, status=status)
        elif who.responder_id is not None:
            rows = await asyncio.to_thread(self.store.tasks, assignee_id=who.responder_id, status=status)
        else:
            rows = []
        now = self.clock.now()
        staff = await asyncio.to_thread(self.staff)
        return [task_row(row, now, staff) for row in rows]

    async def task(self, who: Principal, task_id: UUID) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.task, task_id)
        if row is None:
            await self._refuse_unknown(who, "task", "followup", str(task_id), UnknownTask(task_id))
        assignee = UUID(row["assignee_id"]) if row["assignee_id"] else None
        await self._audited(
            who, "task", "followup", str(task_id), may_see_task(who.role.value, who.responder_id, assignee)
        )
        return task_row(row, self.clock.now(), await asyncio.to_thread(self.staff))

    async def metrics(self, who: Principal, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        if who.role is not AccessRole.DIRECTOR:
            await self._audited(who, "metrics", "metrics", "all", False, "metrics are for directors")
        incidents, tasks = await asyncio.to_thread(self.store.metric_rows, since, until)
        now = self.clock.now()
        rows = [
            IncidentRow(
                incident_id=r["incident_id"],
                priority=r["priority"] or "?",
                zone=r["zone"],
                status=r["status"],
                reported_at=parse_time(r["reported_at"]),  # type: ignore[arg-type]
                acknowledged_at=parse_time(r["acknowledged_at"]),
                on_scene_at=parse_time(r["on_scene_at"]),
                closed_at=parse_time(r["closed_at"]),
                escalations=int(r["escalations"]),
            )
            for r in incidents
        ]
        task_rows = [
            TaskRow(parse_time(t["due_at"]), t["status"], parse_time(t["completed_at"]))  # type: ignore[arg-type]
            for t in tasks
        ]
        return {
            "since": since,
            "until": until,
            "computed_at": now,
            "sla_on_scene_minutes": dict(self.targets.on_scene_minutes),
            "by_priority": response_metrics(rows, self.targets, now, "priority"),
            "by_zone": response_metrics(rows, self.targets, now, "zone"),
            "by_week": response_metrics(rows, self.targets, now, "week"),
            "follow_ups": follow_up_metrics(task_rows, now),
        }

    async def dead_letters(self, who: Principal, limit: int = 200) -> list[dict[str, Any]]:
        """Messages a consumer gave up on, newest first, with the reason and the original message. Directors
        only; the read is audited (a payload can quote a report)."""
        await self._audited(who, "dead_letters", "dead_letters", "all", who.role is AccessRole.DIRECTOR)
        return await asyncio.to_thread(self.store.dead_letters, limit)

    async def audit_trail(self, who: Principal, **filters: Any) -> list[dict[str, Any]]:
        if who.role is not AccessRole.DIRECTOR:
            await self._audited(who, "audit", "audit_log", "all", False, "the audit log is for directors")
        return await asyncio.to_thread(self.audit.query, **filters)

    # -- changing -------------------------------------------------------------------------------------------

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
            await asyncio.to_thread(self.read_models.recorder.wait, STREAM_NAME, sequence, 5.0)
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

    async def complete_fields(self, who: Principal, incident_id: UUID, fields: DocumentationFields) -> int:
        await self._involved_responder(who, incident_id)
        data = DocumentationFieldsCompletedData(
            incident_id=incident_id, fields=fields, completed_by=who.subject, responder_id=who.responder_id
        )
        return await self._append(self._event(DocumentationFieldsCompleted, data, incident_id))

    async def attest(self, who: Principal, incident_id: UUID) -> int:
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
        return await self._append(self._event(DocumentationAttested, data, incident_id))

    async def sign_off(
        self, who: Principal, incident_id: UUID, decision: Literal["approved", "returned"], comment: str | None
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
        return await self._append(self._event(DocumentationSignedOff, data, incident_id))

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

    async def assign_task(
        self, who: Principal, task_id: UUID, assignee_id: UUID, incident_id: UUID | None = None
    ) -> int:
        task = await self._task_for_command(who, task_id, "assign", incident_id)
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
        return await self._append(self._event(FollowUpAssigned, data, task.incident_id))

    async def complete_task(
        self,
        who: Principal,
        task_id: UUID,
        outcome: FollowUpOutcome,
        note: str | None,
        incident_id: UUID | None = None,
    ) -> int:
        task = await self._task_for_command(who, task_id, "complete", incident_id)
        data = FollowUpCompletedData(
            task_id=task_id,
            incident_id=task.incident_id,
            outcome=outcome,
            note=note,
            completed_by=who.subject,
            responder_id=None if who.role is AccessRole.DIRECTOR else who.responder_id,
        )
        return await self._append(self._event(FollowUpCompleted, data, task.incident_id))

    async def reschedule_task(
        self, who: Principal, task_id: UUID, due_at: datetime, reason: str, incident_id: UUID | None = None
    ) -> int:
        task = await self._task_for_command(who, task_id, "reschedule", incident_id)
        data = FollowUpRescheduledData(
            task_id=task_id,
            incident_id=task.incident_id,
            due_at=due_at,
            reason=reason,
            rescheduled_by=who.subject,
            responder_id=None if who.role is AccessRole.DIRECTOR else who.responder_id,
        )
        return await self._append(self._event(FollowUpRescheduled, data, task.incident_id))

    def _event(self, event_class: type[Envelope], data: Any, incident_id: UUID) -> Envelope:
        return new_event(
            event_class,
            data,
            event_id=uuid4(),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            incident_id=incident_id,
        )


RESPONDER_MENTION = re.compile(r"responder ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def name_actor(text: str, staff: dict[UUID, StaffInfo]) -> str:
    """Every 'responder <uuid>' in ``text`` -> 'Name (role)' when the roster knows them."""

    def named(match: re.Match[str]) -> str:
        info = staff.get(UUID(match[1]))
        return f"{info.name} ({info.role.replace('_', ' ')})" if info else match[0]

    return RESPONDER_MENTION.sub(named, text)


def board_row(row: dict[str, Any], targets: SlaTargets, now: datetime) -> dict[str, Any]:
    reported = parse_time(row["reported_at"])
    on_scene = parse_time(row["on_scene_at"])
    sla_state = None
    if reported is not None and row["priority"]:
        due = reported + targets.on_scene(row["priority"])
        if on_scene is not None:
            sla_state = "met" if on_scene <= due else "breached"
        elif row["status"] == "cancelled":
            sla_state = "not_applicable"
        else:
            ended = parse_time(row["closed_at"]) or now
            sla_state = "breached" if ended > due else ("pending" if row["status"] == "open" else "not_applicable")
    return {
        "incident_id": row["incident_id"],
        "short_code": row["short_code"],
        "kind": row["kind"],
        "priority": row["priority"],
        "zone": row["zone"],
        "status": row["status"],
        "reported_at": reported,
        "acknowledged_at": parse_time(row["acknowledged_at"]),
        "on_scene_at": on_scene,
        "closed_at": parse_time(row["closed_at"]),
        "escalations": row["escalations"],
        "unfilled": bool(row["unfilled"]),
        "documentation": row["doc_status"],
        "gaps": row["gaps"],
        "sla": sla_state,
    }


def task_row(row: dict[str, Any], now: datetime, staff: dict[UUID, StaffInfo]) -> dict[str, Any]:
    due = parse_time(row["due_at"])
    assignee = UUID(row["assignee_id"]) if row["assignee_id"] else None
    info = staff.get(assignee) if assignee else None
    return {
        "task_id": row["task_id"],
        "incident_id": row["incident_id"],
        "rule": row["rule"],
        "title": RULE_TITLES.get(row["rule"], row["rule"]),
        "owner_role": row["owner_role"],
        "assignee_id": row["assignee_id"],
        "assignee_name": info.name if info else None,
        "priority": row["priority"],
        "task_code": row["task_code"],
        "status": row["status"],
        "created_at": parse_time(row["created_at"]),
        "due_at": due,
        "deadline_at": parse_time(row["deadline_at"]),
        "completed_at": parse_time(row["completed_at"]),
        "overdue": row["status"] == "open" and due is not None and now > due,
        "overdue_notices": row["overdue_count"],
        "outcome": row["outcome"],
        "note": row.get("note"),
        "basis": row.get("basis"),
        "history": row.get("history", []),
    }


def responders_able(staff: dict[UUID, StaffInfo], owner_role: str) -> Iterable[tuple[UUID, StaffInfo]]:
    return [(rid, info) for rid, info in staff.items() if can_take(owner_role, info.role)]
