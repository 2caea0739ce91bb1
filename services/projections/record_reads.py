"""Reads of the clinical record on behalf of a signed-in person: the incident board, timelines, documentation and
its FHIR export, follow-up tasks, metrics, dead letters and the audit log.

Every read of a clinical record is entered in the audit log (read, denied or not_found) before it is answered;
a caller who may not read a record gets the same answer whether it exists or not. The changes are the
``ClinicalRecordAccess`` subclass in application.py. The tables, the audit log and the FHIR export are ports
(stores.py), wired by bootstrap.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any, NoReturn
from uuid import UUID

from services.contract.events import IncidentReported
from services.projections.answers import (
    board_order,
    board_row,
    dispatch_words,
    entry_dicts,
    sla_breach_entry,
    task_row,
    task_summary,
)
from services.projections.domain.access import (
    STAFF_ONLY_TYPES,
    may_read_incident,
    may_see_task,
    staff_only_events,
)
from services.projections.domain.audit import AuditEntry
from services.projections.domain.documentation import Documentation, StaffInfo, assemble_documentation
from services.projections.domain.followups import fold_tasks
from services.projections.domain.messages import DeliveryStatus, sent_message_sids
from services.projections.domain.metrics import (
    IncidentRow,
    KitsLeftRow,
    TaskRow,
    follow_up_metrics,
    kits_left_behind,
    response_metrics,
)
from services.projections.domain.outcomes import OUTCOME_TYPES, outcome_figures
from services.projections.domain.progress import (
    Progress,
    RecordedEvent,
    SlaTargets,
    incident_progress,
    known_at,
    sla_marks,
)
from services.projections.domain.referral_metrics import referral_to_admission
from services.projections.domain.telling import Telling
from services.projections.errors import NotPermitted, UnknownIncident, UnknownTask, record_refused
from services.projections.stores import AuditLog, FhirExport, ReadModelQueries, parse_time
from services.runtime.clock import Clock
from services.runtime.credentials import AccessRole, Principal


class RecordReads:
    """Audited reads of the read models' tables (``store``), answered at ``clock``'s now, with times told in the
    organisation's time ``zone``."""

    def __init__(
        self,
        store: ReadModelQueries,
        audit: AuditLog,
        clock: Clock,
        targets: SlaTargets,
        export_fhir: FhirExport,
        zone: tzinfo = UTC,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.targets = targets
        self.export_fhir = export_fhir
        self.zone = zone

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
        entry = AuditEntry(
            at=self.clock.now(),
            subject=who.subject,
            role=who.role.value,
            responder_id=who.responder_id,
            action=action,
            record_type=record_type,
            record_id=record_id,
            outcome=outcome,
        )
        await asyncio.to_thread(self.audit.record, entry)

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
        if who.role is AccessRole.DIRECTOR:
            return events
        hidden = await asyncio.to_thread(self._staff_only, who, events)
        return [
            await self._only_readable_duplicates(who, recorded)
            for recorded in events
            if recorded.event.id not in hidden
        ]

    def _staff_only(self, who: Principal, events: list[RecordedEvent]) -> set[UUID]:
        """What of the incident ``who`` (not a director) may not see: a duress signal, unless they are a
        supervisor on the roster and not the one who gave it (``access.staff_only_events``)."""
        if not any(r.event.type in STAFF_ONLY_TYPES for r in events):
            return set()
        me = self.staff().get(who.responder_id) if who.responder_id else None
        supervisor = me is not None and me.role == "supervisor"
        return staff_only_events((r.event for r in events), who.responder_id, supervisor)

    async def _only_readable_duplicates(self, who: Principal, recorded: RecordedEvent) -> RecordedEvent:
        """A report's links to possible duplicates, cut to the incidents ``who`` may read: an id is not handed
        out to someone who could not open it (directors see every link)."""
        event = recorded.event
        linked = getattr(event.data, "possible_duplicate_of", None)
        if not isinstance(event, IncidentReported) or not linked:
            return recorded
        readable = []
        for other in linked:
            involved = await asyncio.to_thread(self.store.involved, other)
            if may_read_incident(who.role.value, who.responder_id, involved):
                readable.append(other)
        data = event.data.model_copy(update={"possible_duplicate_of": readable})
        return replace(recorded, event=event.model_copy(update={"data": data}))

    def staff(self) -> dict[UUID, StaffInfo]:
        return {UUID(r["responder_id"]): StaffInfo(r["name"], r["role"]) for r in self.store.responders()}

    def telling(self) -> Telling:
        """The organisation's zone and the roster's names (and whose each staff phone is, for messages)."""
        rows = self.store.responders()
        people = {UUID(r["responder_id"]): StaffInfo(r["name"], r["role"]) for r in rows}
        phones = {r["phone"]: UUID(r["responder_id"]) for r in rows if r.get("phone")}
        return Telling(self.zone, people, phones)

    def _delivery_statuses(self, events: list[RecordedEvent], as_of: datetime | None) -> list[DeliveryStatus]:
        rows = self.store.delivery_statuses(sent_message_sids(r.event for r in events))
        return [
            DeliveryStatus(row["message_sid"], row["status"], parse_time(row["occurred_at"]), row["error_code"])  # type: ignore[arg-type]
            for row in rows
            if as_of is None or parse_time(row["recorded_at"]) <= as_of  # type: ignore[operator]
        ]

    async def board(self, who: Principal, status: str | None = "open") -> list[dict[str, Any]]:
        """Incidents (newest first) the caller may see, each with its SLA state now. Not a clinical record."""
        if who.role is AccessRole.DIRECTOR:
            rows = await asyncio.to_thread(self.store.incidents, status=status)
        elif who.role is AccessRole.RESPONDER and who.responder_id is not None:
            rows = await asyncio.to_thread(self.store.incidents, status=status, responder_id=who.responder_id)
        else:
            await self._audited(who, "board", "incidents", "all", False, "only directors and responders see incidents")
        now = self.clock.now()
        telling = await asyncio.to_thread(self.telling)
        return board_order([board_row(row, self.targets, now, telling) for row in rows])

    async def timeline(self, who: Principal, incident_id: UUID, as_of: datetime | None = None) -> dict[str, Any]:
        """Every event of the incident in order with actor, channel and time, its durations and SLA state,
        as known at ``as_of`` (now when None). Audited."""
        events = await self._incident_events(who, incident_id, "timeline")
        known = known_at(events, as_of)
        now = as_of or self.clock.now()
        progress = incident_progress(known) or Progress(incident_id=incident_id)
        telling = await asyncio.to_thread(self.telling)
        statuses = await asyncio.to_thread(self._delivery_statuses, known, as_of)
        entries = entry_dicts(known, telling, statuses)
        marks = sla_marks(progress, self.targets, now)
        entries.extend(sla_breach_entry(mark.at, mark.summary, telling) for mark in marks)
        entries.sort(key=lambda e: (e["occurred_at"], e["stream_sequence"] or 0))
        sla = progress.sla(self.targets, now)
        facts = progress.board_facts()
        return {
            "incident_id": incident_id,
            "as_of": as_of,
            "status": progress.status,
            "short_code": progress.short_code,
            "kind": progress.kind,
            "priority": progress.priority,
            "zone": progress.zone,
            "location": progress.location,
            "dispatch": dispatch_words(facts["dispatch"], telling),
            "time_zone": telling.zone_name(now),
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
        return self.export_fhir(doc, progress, events, tasks, names)

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
        incidents = await asyncio.to_thread(self.store.record_labels, [row["incident_id"] for row in rows])
        return [task_row(row, now, staff, incidents.get(row["incident_id"])) for row in rows]

    async def task(self, who: Principal, task_id: UUID) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.task, task_id)
        if row is None:
            await self._refuse_unknown(who, "task", "followup", str(task_id), UnknownTask(task_id))
        assignee = UUID(row["assignee_id"]) if row["assignee_id"] else None
        await self._audited(
            who, "task", "followup", str(task_id), may_see_task(who.role.value, who.responder_id, assignee)
        )
        incident = (await asyncio.to_thread(self.store.record_labels, [row["incident_id"]])).get(row["incident_id"])
        return task_row(row, self.clock.now(), await asyncio.to_thread(self.staff), incident)

    async def metrics(self, who: Principal, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        if who.role is not AccessRole.DIRECTOR:
            await self._audited(who, "metrics", "metrics", "all", False, "metrics are for directors")
        incidents, tasks = await asyncio.to_thread(self.store.metric_rows, since, until)
        kits = await asyncio.to_thread(self.store.kits_left_rows, since, until)
        kit_rows = [KitsLeftRow(k["incident_id"], k["occurred_at"], int(k["count"]), k["zone"]) for k in kits]
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
            "kits_left_behind": kits_left_behind(kit_rows, self.zone),  # naloxone (issue 18)
            "referral_to_admission": referral_to_admission(
                await asyncio.to_thread(self.referral_views), since, until
            ),  # issue 17
        }

    async def outcomes(self, who: Principal) -> dict[str, Any]:
        """The outcome figures (issue 19, ``domain/outcomes.py``), from every incident's events. Directors only;
        audited."""
        if who.role is not AccessRole.DIRECTOR:
            await self._audited(who, "outcomes", "metrics", "outcomes", False, "outcome figures are for directors")
        await self._audited(who, "outcomes", "metrics", "outcomes", True)
        events = await asyncio.to_thread(self.store.events_of_types, OUTCOME_TYPES)
        figures = outcome_figures(events, self.clock.now(), self.zone)
        staff = await asyncio.to_thread(self.staff)
        for row in figures["responder_load"]:
            info = staff.get(UUID(row["responder_id"]))
            row["name"] = info.name if info else None
        return figures

    referral_views: Any = staticmethod(list)
    """Every referral's view (``ReferralTable.referrals``), set by bootstrap; none by default."""

    async def dead_letters(self, who: Principal, limit: int = 200) -> list[dict[str, Any]]:
        """Messages a consumer gave up on, newest first, with the reason and the original message. Directors
        only; the read is audited (a payload can quote a report)."""
        await self._audited(who, "dead_letters", "dead_letters", "all", who.role is AccessRole.DIRECTOR)
        return await asyncio.to_thread(self.store.dead_letters, limit)

    async def audit_trail(
        self, who: Principal, incident_code: str | None = None, **filters: Any
    ) -> list[dict[str, Any]]:
        """The audit log, newest first, filtered by ``filters`` (``AuditLog.query``) and by ``incident_code``: the
        entries of every incident that had that short code and of their follow-up tasks. Each entry says what
        its record is called (``record``: 'incident 4821'). Directors only."""
        await self._directors_only(who)
        if incident_code:
            filters["record_ids"] = await asyncio.to_thread(self._records_with_code, incident_code)
        rows = await asyncio.to_thread(self.audit.query, **filters)
        labels = await asyncio.to_thread(self.store.record_labels, [row["record_id"] for row in rows])
        return [row | {"record": labels.get(row["record_id"])} for row in rows]

    async def audit_people(self, who: Principal) -> list[tuple[str, str]]:
        """Everyone the audit log names: (subject, 'Pat Peer (coach-user)' or the subject alone). Directors only."""
        await self._directors_only(who)
        subjects = await asyncio.to_thread(self.audit.subjects)
        staff = await asyncio.to_thread(self.staff)
        people = []
        for row in subjects:
            info = staff.get(UUID(row["responder_id"])) if row["responder_id"] else None
            people.append((row["subject"], f"{info.name} ({row['subject']})" if info else row["subject"]))
        return people

    async def _directors_only(self, who: Principal) -> None:
        if who.role is not AccessRole.DIRECTOR:
            await self._audited(who, "audit", "audit_log", "all", False, "the audit log is for directors")

    def _records_with_code(self, short_code: str) -> list[str]:
        incidents = self.store.incident_ids_with_code(short_code)
        tasks = [task["task_id"] for i in incidents for task in self.store.tasks(incident_id=UUID(i))]
        return incidents + tasks
