"""The follow-up desk: creates follow-up tasks by the rules, assigns them, and chases overdue ones.

It is a stream processor of its own (store "followups", durable consumer "followups"): what it decides is
saved with the stream position in one transaction and published by its outbox relay (followup.created,
followup.assigned, followup.cancelled, followup.overdue, and notification.requested for the people told).
People's changes to tasks arrive from the stream (the projections' commands appended them; older streams also
hold the gateway's former unchecked ones) and are folded into its state, so it knows which tasks are still open
and when they are due.

Overdue tasks are found by ``flag_overdue(now)``, which an ``OverdueWatch`` calls on a timer and once at start:
due times live in the store (``DueIndex``), so a task that fell due while the service was down is flagged
when it comes back.

What is published for each stored desk event is in followup_outbox.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.utils import register_topic

from services.contract.events import (
    DispatchAcknowledged,
    DispatchOffered,
    DocumentationFieldsCompleted,
    Envelope,
    FollowUpAssigned,
    FollowUpAttemptRecorded,
    FollowUpCompleted,
    FollowUpRescheduled,
    FollowUpSeriesEnded,
    IncidentCancelled,
    IncidentReported,
    MoudAppointmentKept,
    MoudBridgeRecorded,
    ReferralNoShow,
    ResponderRegistered,
    ResponderRetired,
    ResponderUpdated,
    Role,
    hard_call,
)
from services.projections.domain import followup_aggregates
from services.projections.domain.followup_aggregates import DueIndex, IncidentCase, StaffDirectory
from services.projections.domain.followups import (
    FollowUpPolicy,
    TaskSpec,
    can_take,
    task_code,
    task_id_for,
    task_on_bridge,
    task_on_ed_visit,
    task_on_hard_call,
    tasks_on_report,
)
from services.projections.domain.outreach import after_attempt
from services.projections.followup_outbox import PRODUCER, RULES, FollowUpOutbox
from services.runtime.background import ClockWatch
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

log = logging.getLogger(__name__)

# stores written before the module was renamed (issue 15) name the aggregates' events by their old topic
register_topic("services.projections.domain.desk", followup_aggregates)

ED_DISPOSITIONS = frozenset({"transported_to_ed", "admitted"})
ENDS_SUPPORT = {"deceased": "deceased", "false_alarm": "false_alarm"}


class FollowUpDesk(StreamProcessor):
    """The follow-up tasks' own state (incident cases, the due index, the staff directory), kept from the stream.
    ``policy`` at the end of the class is the list of what it handles."""

    producer = PRODUCER
    snapshotting_intervals = {DueIndex: 50, StaffDirectory: 50}  # noqa: RUF012 - eventsourcing's class attribute

    def __init__(self, env: dict[str, str] | None = None, *, clock: Clock, rules: FollowUpPolicy) -> None:
        super().__init__(env, clock=clock)
        self.rules = rules

    # ---- reading our own aggregates ----------------------------------------------------------------------

    def _get(self, aggregate_id: UUID, factory: Callable[[], Any]) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return factory()

    def _index(self) -> DueIndex:
        return self._get(DueIndex.create_id(), DueIndex)

    def _directory(self) -> StaffDirectory:
        return self._get(StaffDirectory.create_id(), StaffDirectory)

    def _case(self, incident_id: UUID) -> IncidentCase | None:
        try:
            return self.repository.get(incident_id)
        except AggregateNotFoundError:
            return None

    # ---- what the stream tells the desk (registered in ``policy`` below) ------------------------------------

    def on_incident_cancelled(self, event: IncidentCancelled, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if case is None or case.cancelled:
            return
        index = self._index()
        case.cancel(at=event.occurred_at)
        for task_id, _ in case.open_tasks():
            case.cancel_task(task_id=task_id, reason="incident_cancelled", at=event.occurred_at)
            index.settle(task_id=task_id)
        processing_event.collect_events(case, index)

    def on_responder_profile(
        self, event: ResponderRegistered | ResponderUpdated, processing_event: ProcessingEvent
    ) -> None:
        data = event.data
        directory = self._directory()
        directory.record(
            responder_id=data.responder_id,
            name=data.name,
            role=data.role.value,
            phone=data.phone,
            language=data.languages[0],
            supervisor_id=data.supervisor_id,
        )
        processing_event.collect_events(directory)

    def on_responder_retired(self, event: ResponderRetired, processing_event: ProcessingEvent) -> None:
        directory = self._directory()
        directory.retire(responder_id=event.data.responder_id)
        processing_event.collect_events(directory)

    def on_incident_reported(self, event: IncidentReported, processing_event: ProcessingEvent) -> None:
        data = event.data
        if self._case(data.incident_id) is not None:
            return  # re-published after the de-duplication window
        case = IncidentCase(id=data.incident_id)
        case.note_report(kind=data.kind.value, reported_at=event.occurred_at, short_code=data.short_code)
        index = self._index()
        for spec in tasks_on_report(data, event.occurred_at, self.rules):
            self._create(case, index, spec, event.occurred_at)
        processing_event.collect_events(case, index)

    def _create(self, case: IncidentCase, index: DueIndex, spec: TaskSpec, at: datetime) -> None:
        task_id = task_id_for(case.id, spec.rule)
        if case.has_task(task_id):
            return
        directory = self._directory()
        assignee = self._suitable(case, spec.owner_role, directory)
        contact = directory.contact(assignee)
        case.create_task(
            task_id=task_id,
            rule=spec.rule,
            owner_role=spec.owner_role.value,
            due_at=spec.due_at,
            deadline_at=spec.deadline_at,
            priority=spec.priority.value,
            basis=spec.basis,
            code=task_code(task_id),
            assignee_id=assignee,
            at=at,
            notify=[contact | {"as": "assignee"}] if contact else [],
        )
        index.schedule(task_id=task_id, incident_id=case.id, due_at=spec.due_at)

    def _suitable(self, case: IncidentCase, owner_role: Role | str, directory: StaffDirectory) -> UUID | None:
        """The first responder who accepted this incident and can own the task, if any."""
        for responder_id, paged_role in case.accepted_roles():
            role = directory.role_of(responder_id) or paged_role
            if can_take(owner_role, role):
                return responder_id
        return None

    def on_page_offered(self, event: DispatchOffered, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if case is None or str(event.data.page_id) in case.pages:
            return
        case.note_page(page_id=event.data.page_id, responder_id=event.data.responder_id, role=event.data.responder_role)
        processing_event.collect_events(case)

    def on_page_accepted(self, event: DispatchAcknowledged, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if case is None or str(event.data.responder_id) in case.accepted:
            return
        case.note_acceptance(responder_id=event.data.responder_id)
        directory = self._directory()
        for task_id, task in case.open_tasks():
            if task["assignee_id"] is None and (assignee := self._suitable(case, task["owner_role"], directory)):
                contact = directory.contact(assignee)
                case.assign_task(
                    task_id=task_id,
                    assignee_id=assignee,
                    by=RULES,
                    at=event.occurred_at,
                    announce=True,
                    notify=[contact | {"as": "assignee"}] if contact else [],
                )
        processing_event.collect_events(case)

    def on_task_assigned(self, event: FollowUpAssigned, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        task = case.task(event.data.task_id) if case else None
        if case is None or task is None or task["status"] != "open":
            return
        if task["assignee_id"] == str(event.data.assignee_id):
            return  # our own assignment coming back from the stream, or a repeat
        contact = self._directory().contact(event.data.assignee_id)
        case.assign_task(
            task_id=event.data.task_id,
            assignee_id=event.data.assignee_id,
            by=event.data.assigned_by,
            at=event.occurred_at,
            announce=False,
            notify=[contact | {"as": "assignee"}] if contact else [],
        )
        processing_event.collect_events(case)

    def _changeable(self, case: IncidentCase | None, task_id: UUID, responder_id: UUID | None) -> bool:
        """The same rule as the read models: the assignee or a director (no responder id) changes an open task."""
        task = case.task(task_id) if case else None
        if task is None or task["status"] != "open":
            return False
        return responder_id is None or task["assignee_id"] == str(responder_id)

    def on_task_completed(self, event: FollowUpCompleted, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if not self._changeable(case, event.data.task_id, event.data.responder_id):
            return
        index = self._index()
        case.finish_task(task_id=event.data.task_id, at=event.occurred_at)
        index.settle(task_id=event.data.task_id)
        processing_event.collect_events(case, index)

    def on_task_rescheduled(self, event: FollowUpRescheduled, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if not self._changeable(case, event.data.task_id, event.data.responder_id):
            return
        index = self._index()
        case.reschedule_task(task_id=event.data.task_id, due_at=event.data.due_at)
        index.schedule(task_id=event.data.task_id, incident_id=case.id, due_at=event.data.due_at)
        processing_event.collect_events(case, index)

    def on_attempt_recorded(self, event: FollowUpAttemptRecorded, processing_event: ProcessingEvent) -> None:
        """An outreach attempt (issue 19): the next one due by the rule's policy, or, after the last with nobody
        reached, the series ends as unreachable and the supervisors are told (``domain/outreach.py``)."""
        data = event.data
        case = self._case(data.incident_id)
        if not self._changeable(case, data.task_id, data.responder_id):
            return
        task = case.task(data.task_id)  # type: ignore[union-attr]
        policy = self.rules.outreach
        if data.number != task.get("attempts", 0) + 1 or not policy.is_series(task["rule"]):
            return  # a repeat, out of order, or not a series: the read models show it refused or as a note
        step = after_attempt(
            policy, task["rule"], data.number, task.get("reached", False) or data.reached, event.occurred_at
        )
        index = self._index()
        assignee = UUID(task["assignee_id"]) if task["assignee_id"] else None
        chasers = self._chasers(case, assignee, self._directory())  # type: ignore[arg-type]
        case.note_attempt(  # type: ignore[union-attr]
            task_id=data.task_id,
            number=data.number,
            reached=data.reached,
            at=event.occurred_at,
            next_due_at=step.next_due_at,
            channel=step.channel,
            of=policy.attempts[task["rule"]],
            unreachable=step.unreachable,
            notify=[p for p in chasers if p["as"] == "supervisor"] if step.unreachable else [],
        )
        unreachable, next_due = step.unreachable, step.next_due_at
        if unreachable:
            index.settle(task_id=data.task_id)
        else:
            index.schedule(task_id=data.task_id, incident_id=data.incident_id, due_at=next_due)
        processing_event.collect_events(case, index)

    def on_series_ended(self, event: FollowUpSeriesEnded, processing_event: ProcessingEvent) -> None:
        case = self._case(event.data.incident_id)
        if not self._changeable(case, event.data.task_id, event.data.responder_id):
            return  # ended already (the desk's own 'unreachable' coming back), or not theirs
        index = self._index()
        case.finish_task(task_id=event.data.task_id, at=event.occurred_at)  # type: ignore[union-attr]
        index.settle(task_id=event.data.task_id)
        processing_event.collect_events(case, index)

    def on_bridge_recorded(self, event: MoudBridgeRecorded, processing_event: ProcessingEvent) -> None:
        """An MOUD bridge (issue 19): the outreach if its appointment is missed, due a grace period after it."""
        case = self._case(event.data.incident_id)
        if case is None or case.cancelled:
            return
        index = self._index()
        self._create(case, index, task_on_bridge(event.data.appointment_at, self.rules), event.occurred_at)
        processing_event.collect_events(case, index)

    def on_appointment_kept(self, event: MoudAppointmentKept, processing_event: ProcessingEvent) -> None:
        """The bridge appointment was kept: its outreach is not needed (cancelled, never overdue)."""
        case = self._case(event.data.incident_id)
        task_id = task_id_for(event.data.incident_id, "bridge_appointment")
        task = case.task(task_id) if case else None
        if case is None or task is None or task["status"] != "open":
            return
        index = self._index()
        case.cancel_task(task_id=task_id, reason="not_applicable", at=event.occurred_at)
        index.settle(task_id=task_id)
        processing_event.collect_events(case, index)

    def on_documentation_completed(
        self, event: DocumentationFieldsCompleted, processing_event: ProcessingEvent
    ) -> None:
        disposition = event.data.fields.disposition
        case = self._case(event.data.incident_id)
        if case is None:
            return
        index = self._index()
        if disposition in ENDS_SUPPORT:
            for task_id, _ in case.open_tasks():
                case.cancel_task(task_id=task_id, reason=ENDS_SUPPORT[disposition], at=event.occurred_at)
                index.settle(task_id=task_id)
        elif disposition in ED_DISPOSITIONS and not case.ed_visit_noted and not case.cancelled:
            case.note_ed_visit(at=event.occurred_at)
            basis = f"disposition {disposition.replace('_', ' ')}: follow-up visit (HEDIS FUA)"
            self._create(case, index, task_on_ed_visit(event.occurred_at, self.rules, basis), event.occurred_at)
        if (what := hard_call(event.data.fields)) and not case.cancelled:  # a death or a reversal (issue 19)
            self._debrief(case, index, what, event.occurred_at)
        processing_event.collect_events(case, index)

    def _debrief(self, case: IncidentCase, index: DueIndex, what: str, at: datetime) -> None:
        """The team's debrief: a task for the supervisor of the responders on the incident, once per incident."""
        task_id = task_id_for(case.id, "debrief")
        if case.has_task(task_id):
            return
        self._create(case, index, task_on_hard_call(at, self.rules, what), at)
        directory = self._directory()
        task = case.task(task_id)
        supervisors = [p for p in self._chasers(case, None, directory) if p["as"] == "supervisor"]
        if task is not None and task["assignee_id"] is None and supervisors:
            chosen = supervisors[0]
            case.assign_task(
                task_id=task_id, assignee_id=UUID(chosen["responder_id"]), by=RULES, at=at, announce=True,
                notify=[chosen | {"as": "assignee"}],
            )  # fmt: skip

    def on_referral_no_show(self, event: ReferralNoShow, processing_event: ProcessingEvent) -> None:
        """An accepted admission was missed (issue 17): the coach assigned to the incident's follow-up is told
        (the post-overdose outreach task's assignee first, else any open task's), else the supervisors; once."""
        case = self._case(event.data.incident_id)
        if case is None or case.no_show_told(event.data.referral_id):
            return
        open_tasks = sorted(case.open_tasks(), key=lambda item: item[1]["rule"] != "post_overdose_outreach")
        coach = next((UUID(t["assignee_id"]) for _, t in open_tasks if t["assignee_id"]), None)
        notify = self._chasers(case, coach, self._directory())
        if coach is not None:
            notify = [p for p in notify if p["as"] == "assignee"] or notify
        case.tell_referral_no_show(
            referral_id=event.data.referral_id, code=event.data.code, at=event.occurred_at, notify=notify
        )
        processing_event.collect_events(case)

    # ---- the clock ------------------------------------------------------------------------------------------

    def flag_overdue(self, now: datetime) -> int:
        """Flag every open task due by ``now`` (once per due time) and tell its assignee and supervisor.

        Returns how many tasks were flagged. Safe to call at any time and repeatedly.
        """
        with self.processing_lock:
            index = self._index()
            due = index.due_by(now)
            if not due:
                return 0
            directory = self._directory()
            cases: dict[UUID, IncidentCase] = {}
            flagged = 0
            for task_id, incident_id, due_at in due:
                index.settle(task_id=task_id)
                case = cases.get(incident_id) or self._case(incident_id)
                task = case.task(task_id) if case else None
                if case is None or task is None or task["status"] != "open" or task.get("overdue_for") == due_at:
                    continue
                assignee = UUID(task["assignee_id"]) if task["assignee_id"] else None
                case.flag_overdue(
                    task_id=task_id,
                    due_at=due_at,
                    at=now,
                    assignee_id=assignee,
                    notify=self._chasers(case, assignee, directory),
                )
                cases[incident_id] = case
                flagged += 1
            self.save(index, *cases.values())
            return flagged

    def _chasers(self, case: IncidentCase, assignee: UUID | None, directory: StaffDirectory) -> list[dict[str, Any]]:
        """Who hears about an overdue task: its assignee and their supervisor; with nobody assigned, the
        supervisors of the responders on the incident, or every supervisor."""
        people: list[dict[str, Any]] = []
        if assignee is not None:
            if contact := directory.contact(assignee):
                people.append(contact | {"as": "assignee"})
            supervisors = [directory.supervisor_of(assignee)]
        else:
            supervisors = [directory.supervisor_of(r) for r, _ in case.accepted_roles()]
            if not any(supervisors):
                supervisors = list(directory.supervisors())
        seen = {p["responder_id"] for p in people}
        for supervisor in supervisors:
            contact = directory.contact(supervisor)
            if contact and contact["responder_id"] not in seen:
                people.append(contact | {"as": "supervisor"})
                seen.add(contact["responder_id"])
        return people

    # ---- outbox: stored desk events -> contract events (followup_outbox.py) ---------------------------------

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return FollowUpOutbox(self.repository).translate(domain_event)

    # ---- what the desk handles: one list -----------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events change no follow-up (they only advance the tracking position)."""

    policy.register(IncidentReported, on_incident_reported)
    policy.register(IncidentCancelled, on_incident_cancelled)
    policy.register(DispatchOffered, on_page_offered)
    policy.register(DispatchAcknowledged, on_page_accepted)
    policy.register(FollowUpAssigned, on_task_assigned)
    policy.register(FollowUpCompleted, on_task_completed)
    policy.register(FollowUpRescheduled, on_task_rescheduled)
    policy.register(FollowUpAttemptRecorded, on_attempt_recorded)  # the outreach series (issue 19)
    policy.register(FollowUpSeriesEnded, on_series_ended)
    policy.register(MoudBridgeRecorded, on_bridge_recorded)  # MOUD continuity (issue 19)
    policy.register(MoudAppointmentKept, on_appointment_kept)
    policy.register(DocumentationFieldsCompleted, on_documentation_completed)
    policy.register(ResponderRegistered, on_responder_profile)
    policy.register(ResponderUpdated, on_responder_profile)
    policy.register(ResponderRetired, on_responder_retired)
    policy.register(ReferralNoShow, on_referral_no_show)


class OverdueWatch(ClockWatch):
    """Runs ``desk.flag_overdue`` at start and then every ``interval`` seconds; wakes the outbox after a flag."""

    name = "followup-overdue-watch"
    did = "overdue follow-up task(s) flagged"

    def __init__(self, desk: FollowUpDesk, clock: Clock, interval: float, after: Callable[[], None]) -> None:
        super().__init__(desk.flag_overdue, clock, interval, after)
        self.desk = desk
