"""Follow-up rules (DOMAIN.md: trigger -> task -> due) and the state of one task as its events tell it.

The rules decide which tasks an incident needs; ``fold_task`` decides what a task event changes. The read
models, the timeline, the write audit and the projections' commands use the same check (``command_refusal``),
so a command refused before it is appended is also a command that changes nothing, and is shown as refused,
when one reaches the stream anyway: two completions at once, or an event of the gateway's former unchecked
route (which named whatever incident it was given) replayed from the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from services.contract.events import (
    QUALIFIED_ROLES,
    Envelope,
    FollowUpAssigned,
    FollowUpAttemptRecorded,
    FollowUpCancelled,
    FollowUpCompleted,
    FollowUpCreated,
    FollowUpOverdue,
    FollowUpRescheduled,
    FollowUpRule,
    FollowUpSeriesEnded,
    IncidentReportedData,
    Priority,
    Role,
    derived_id,
)
from services.projections.domain.outreach import OutreachPolicy, attempt_refusal, fold_outreach

_HAS_TASK_ID: dict[type, bool] = {}


def task_id_of(data: object) -> UUID | None:
    """``getattr(data, "task_id", None)``, without pydantic's slow answer for a model that has no such field (it
    raises and catches an exception): event data are models that forbid extra fields, so a model class without a
    ``task_id`` field or attribute never has one."""
    cls = type(data)
    has = _HAS_TASK_ID.get(cls)
    if has is None:
        fields = getattr(cls, "model_fields", None)
        extra = getattr(cls, "model_config", {}).get("extra")
        has = _HAS_TASK_ID[cls] = fields is None or extra == "allow" or "task_id" in fields or hasattr(cls, "task_id")
    return getattr(data, "task_id", None) if has else None


RULE_TITLES: dict[str, str] = {
    "post_overdose_outreach": "Post-overdose outreach visit (naloxone kit, test strips, MOUD referral offer)",
    "ed_follow_up": "Follow-up visit after the emergency-department visit",
    "caring_contact": "Caring contact after the suicidal crisis",
    "follow_up_appointment": "Appointment after the suicidal crisis",
    "medical_review": "Urgent medical review for severe alcohol withdrawal",
    "prescriber_review": "Prescriber evaluation for buprenorphine induction",
    "bridge_appointment": "Outreach the same day if the MOUD bridge appointment is missed",
    "debrief": "Team debrief after a death or an overdose reversal",
}


@dataclass(frozen=True)
class TaskSpec:
    """A task one rule asks for: who owns it, when it is due (and its deadline), why."""

    rule: FollowUpRule
    owner_role: Role
    due_at: datetime
    priority: Priority
    basis: str
    deadline_at: datetime | None = None


@dataclass(frozen=True)
class FollowUpPolicy:
    """Due times and thresholds of the follow-up rules (DOMAIN.md, "Follow-up rules", numbered as there); every
    value is configuration (DOMAIN.md marks them configurable)."""

    outreach_hours: int = 72
    """Rule 1: the peer outreach visit after an overdose is due this long after the report."""
    caring_contact_hours: int = 24
    """Rule 5: the first caring contact after a suicidal crisis."""
    appointment_hours: int = 48
    """Rule 5: the appointment after a suicidal crisis."""
    medical_review_hours: int = 24
    """Rule 6: the urgent medical review for severe (not complicated) alcohol withdrawal."""
    prescriber_review_hours: int = 24
    """Rule 7: the prescriber evaluation for buprenorphine induction."""
    ed_visit_days: int = 7
    """Rule 2: the follow-up visit after an emergency-department visit, target (HEDIS FUA)."""
    ed_deadline_days: int = 30
    """Rule 2: the same visit's deadline."""
    ciwa_severe_threshold: int = 19
    """Rule 6: the lowest CIWA-Ar score that counts as severe (ASAM 2020)."""
    cows_prescriber_threshold: int = 8
    """Rule 7: the lowest COWS score that calls for a prescriber evaluation."""
    debrief_hours: int = 72
    """Issue 19: the team's debrief after a death or an overdose reversal is due this long after it is recorded."""
    bridge_grace_hours: int = 2
    """Issue 19: an MOUD bridge appointment not kept this long after its time is missed: the outreach is due."""
    outreach: OutreachPolicy = field(default_factory=OutreachPolicy)
    """Issue 19: which rules are worked as a series of attempts, how many, how far apart (``domain/outreach.py``)."""


def task_id_for(incident_id: UUID, rule: str) -> UUID:
    """One task per incident and rule: the same facts seen twice create it once."""
    return derived_id("followup", incident_id, rule)


def task_code(task_id: UUID) -> str:
    """The opaque 4-digit code an SMS about the task carries (never anything about the client)."""
    return f"{1000 + task_id.int % 9000}"


def tasks_on_report(report: IncidentReportedData, reported_at: datetime, policy: FollowUpPolicy) -> list[TaskSpec]:
    """The follow-ups a report calls for, due relative to the report time."""
    hours = timedelta(hours=1)
    kind = report.kind.value
    specs: list[TaskSpec] = []
    if kind == "overdose":
        specs.append(
            TaskSpec(
                "post_overdose_outreach",
                Role.PEER_COACH,
                reported_at + policy.outreach_hours * hours,
                Priority.P2,
                f"overdose: outreach within {policy.outreach_hours} h",
            )
        )
    elif kind == "self_harm_risk":
        specs.append(
            TaskSpec(
                "caring_contact",
                Role.PEER_COACH,
                reported_at + policy.caring_contact_hours * hours,
                Priority.P2,
                f"suicidal crisis: caring contact within {policy.caring_contact_hours} h",
            )
        )
        specs.append(
            TaskSpec(
                "follow_up_appointment",
                Role.CLINICIAN,
                reported_at + policy.appointment_hours * hours,
                Priority.P2,
                f"suicidal crisis: appointment within {policy.appointment_hours} h",
            )
        )
    elif kind == "withdrawal" and report.withdrawal is not None:
        withdrawal = report.withdrawal
        ciwa, cows = withdrawal.ciwa_ar_score, withdrawal.cows_score
        # complicated withdrawal goes to EMS now (dispatch), not to a next-day review
        complicated = bool(withdrawal.seizure or withdrawal.delirium or withdrawal.hallucinations)
        if ciwa is not None and ciwa >= policy.ciwa_severe_threshold and not complicated:
            specs.append(
                TaskSpec(
                    "medical_review",
                    Role.CLINICIAN,
                    reported_at + policy.medical_review_hours * hours,
                    Priority.P2,
                    f"CIWA-Ar {ciwa} >= {policy.ciwa_severe_threshold}: medical review within "
                    f"{policy.medical_review_hours} h",
                )
            )
        if cows is not None and cows >= policy.cows_prescriber_threshold:
            specs.append(
                TaskSpec(
                    "prescriber_review",
                    Role.PRESCRIBER,
                    reported_at + policy.prescriber_review_hours * hours,
                    Priority.P2,
                    f"COWS {cows} >= {policy.cows_prescriber_threshold}: prescriber evaluation within "
                    f"{policy.prescriber_review_hours} h",
                )
            )
    return specs


def task_on_ed_visit(at: datetime, policy: FollowUpPolicy, basis: str) -> TaskSpec:
    """HEDIS FUA: follow-up visit after an ED visit for substance use, target 7 days, deadline 30 days."""
    return TaskSpec(
        "ed_follow_up",
        Role.CLINICIAN,
        at + timedelta(days=policy.ed_visit_days),
        Priority.P3,
        basis,
        deadline_at=at + timedelta(days=policy.ed_deadline_days),
    )


def task_on_bridge(appointment_at: datetime, policy: FollowUpPolicy) -> TaskSpec:
    """Issue 19: the outreach if an MOUD bridge appointment is missed, due a grace period after it (kept: cancelled)."""
    return TaskSpec(
        "bridge_appointment",
        Role.PEER_COACH,
        appointment_at + timedelta(hours=policy.bridge_grace_hours),
        Priority.P2,
        f"MOUD bridge: the coach is paged if the appointment is not kept within {policy.bridge_grace_hours} h",
    )


def task_on_hard_call(at: datetime, policy: FollowUpPolicy, what: str) -> TaskSpec:
    """Issue 19: a death or an overdose reversal on the incident: the team's debrief, for a supervisor."""
    return TaskSpec(
        "debrief", Role.SUPERVISOR, at + timedelta(hours=policy.debrief_hours), Priority.P3, f"{what}: team debrief"
    )


def can_take(owner_role: Role | str, responder_role: str) -> bool:
    """Whether a responder with roster role ``responder_role`` can own a task meant for ``owner_role``."""
    return responder_role in QUALIFIED_ROLES.get(Role(owner_role), frozenset({str(owner_role)}))


TaskStatus = Literal["open", "done", "cancelled"]


@dataclass(frozen=True)
class TaskState:
    task_id: UUID
    incident_id: UUID
    rule: str
    owner_role: str
    priority: str
    task_code: str
    basis: str
    created_at: datetime
    due_at: datetime
    deadline_at: datetime | None = None
    assignee_id: UUID | None = None
    status: TaskStatus = "open"
    completed_at: datetime | None = None
    completed_by: str | None = None
    outcome: str | None = None
    note: str | None = None
    overdue_since: datetime | None = None
    overdue_count: int = 0
    cancel_reason: str | None = None
    attempts: tuple[dict[str, Any], ...] = ()  # the outreach series' attempts (domain/outreach.py)
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def title(self) -> str:
        return RULE_TITLES.get(self.rule, self.rule.replace("_", " "))

    def on_time(self) -> bool | None:
        """Done by its due time? None while it is open or if it was cancelled."""
        if self.status != "done" or self.completed_at is None:
            return None
        return self.completed_at <= self.due_at

    def is_overdue(self, now: datetime) -> bool:
        return self.status == "open" and now > self.due_at


class TaskRefused(Exception):
    """A task command the task's state does not allow; the message says why."""


class TaskNotYours(TaskRefused):
    """A task command from someone who may not change this task (not a director, not the assignee)."""


def check_task_command(
    state: TaskState | None,
    kind: Literal["assign", "complete", "reschedule", "attempt", "end"],
    responder_id: UUID | None,
    incident_id: UUID | None = None,
) -> None:
    """Raises TaskRefused unless the command may change the task. ``responder_id`` None means a director;
    ``incident_id``, when the command names one, must be the task's own incident."""
    if state is None:
        raise TaskRefused("no such follow-up task")
    if state.status != "open":
        raise TaskRefused(f"the task is already {state.status}")
    if kind == "assign" and responder_id is not None:
        raise TaskNotYours("only a director assigns tasks")
    if kind != "assign" and responder_id is not None and state.assignee_id != responder_id:
        raise TaskNotYours("only the assignee or a director may change this task")
    if incident_id is not None and incident_id != state.incident_id:
        raise TaskRefused("the task belongs to another incident")


def command_refusal(state: TaskState | None, event: Envelope) -> str | None:
    """Why a person's task command (``followup.assigned``, ``.completed``, ``.rescheduled``) changes nothing
    to ``state``, the task as the incident's earlier events left it; None when it applies, or for other events.

    ``state`` None: the incident whose events are folded has no such task (the command names another incident).
    """
    kind: Literal["assign", "complete", "reschedule", "attempt", "end"]
    if isinstance(event, FollowUpAssigned):
        kind, responder_id = "assign", None
    elif isinstance(event, FollowUpCompleted):
        kind, responder_id = "complete", event.data.responder_id
    elif isinstance(event, FollowUpRescheduled):
        kind, responder_id = "reschedule", event.data.responder_id
    elif isinstance(event, FollowUpAttemptRecorded):
        kind, responder_id = "attempt", event.data.responder_id
    elif isinstance(event, FollowUpSeriesEnded):
        kind, responder_id = "end", event.data.responder_id
    else:
        return None
    if state is None:
        return "the task is not one of this incident's"
    # the incident the event is filed under (its envelope) and the one its data names must both be the task's
    named = next((i for i in (event.incident_id, event.data.incident_id) if i not in (None, state.incident_id)), None)
    try:
        check_task_command(state, kind, responder_id, named)
    except TaskRefused as exc:
        return str(exc)
    return attempt_refusal(state, event.data) if kind == "attempt" else None


def fold_task(state: TaskState | None, event: Envelope) -> TaskState | None:
    """The task after ``event``. Events the state does not allow (a completion by someone else) change nothing."""
    if isinstance(event, FollowUpCreated):
        if state is not None:
            return state
        data = event.data
        return TaskState(
            task_id=data.task_id,
            incident_id=data.incident_id,
            rule=data.rule,
            owner_role=data.owner_role.value,
            priority=data.priority.value,
            task_code=data.task_code,
            basis=data.basis,
            created_at=event.occurred_at,
            due_at=data.due_at,
            deadline_at=data.deadline_at,
            assignee_id=data.assignee_id,
            history=({"at": event.occurred_at, "what": "created", "by": "rules"},),
        )
    if state is None:
        return None
    note: dict[str, Any] = {"at": event.occurred_at}
    refused = command_refusal(state, event)
    if isinstance(event, FollowUpAssigned):
        if refused:
            return state
        return replace(
            state,
            assignee_id=event.data.assignee_id,
            history=(
                *state.history,
                note | {"what": f"assigned to {event.data.assignee_id}", "by": event.data.assigned_by},
            ),
        )
    if isinstance(event, FollowUpCompleted):
        data = event.data
        if refused:
            what = {"what": "completion refused", "why": refused, "by": data.completed_by}
            return replace(state, history=(*state.history, note | what))
        return replace(
            state,
            status="done",
            completed_at=event.occurred_at,
            completed_by=data.completed_by,
            outcome=data.outcome,
            note=data.note,
            history=(*state.history, note | {"what": f"completed: {data.outcome}", "by": data.completed_by}),
        )
    if isinstance(event, FollowUpRescheduled):
        data = event.data
        if refused:
            what = {"what": "reschedule refused", "why": refused, "by": data.rescheduled_by}
            return replace(state, history=(*state.history, note | what))
        return replace(
            state,
            due_at=data.due_at,
            overdue_since=None,
            history=(
                *state.history,
                note | {"what": f"rescheduled to {data.due_at.isoformat()}: {data.reason}", "by": data.rescheduled_by},
            ),
        )
    if isinstance(event, FollowUpAttemptRecorded | FollowUpSeriesEnded):
        if refused:
            what = {"what": f"{event.type.removeprefix('followup.').replace('_', ' ')} refused", "why": refused}
            return replace(state, history=(*state.history, note | what))
        return fold_outreach(state, event, note)
    if isinstance(event, FollowUpOverdue):
        if state.status != "open":
            return state
        return replace(
            state,
            overdue_since=state.overdue_since or event.data.due_at,
            overdue_count=state.overdue_count + 1,
            history=(*state.history, note | {"what": "overdue; assignee and supervisor told", "by": "rules"}),
        )
    if isinstance(event, FollowUpCancelled):
        if state.status != "open":
            return state
        return replace(
            state,
            status="cancelled",
            cancel_reason=event.data.reason,
            history=(*state.history, note | {"what": f"cancelled: {event.data.reason}", "by": event.data.cancelled_by}),
        )
    return state


def fold_tasks(events: Sequence[Envelope]) -> dict[UUID, TaskState]:
    """Every task the events mention, in the order given."""
    tasks: dict[UUID, TaskState] = {}
    for event in events:
        task_id = task_id_of(event.data)
        if task_id is None:
            continue
        folded = fold_task(tasks.get(task_id), event)
        if folded is not None:
            tasks[task_id] = folded
    return tasks


def refused_commands(events: Sequence[Envelope]) -> dict[UUID, str]:
    """Event id -> why, for each task command among ``events`` (one incident's, in stream order) that its task
    refused when it was applied: the same fold as ``fold_tasks``, so what the task shows and what the timeline
    and the audit log say of a command never disagree."""
    tasks: dict[UUID, TaskState] = {}
    refused: dict[UUID, str] = {}
    for event in events:
        task_id = task_id_of(event.data)
        if task_id is None:
            continue
        state = tasks.get(task_id)
        if (why := command_refusal(state, event)) is not None:
            refused[event.id] = why
        folded = fold_task(state, event)
        if folded is not None:
            tasks[task_id] = folded
    return refused
