"""The follow-up desk's aggregates: what it must remember to create, assign and chase follow-up tasks.

- ``IncidentCase``: per incident, who was paged and who accepted, and the incident's tasks with their state.
- ``DueIndex``: one aggregate listing every open task's due time, so a clock-driven check finds overdue
  tasks without scanning every incident; it is in the store, so a restart loses no deadline.
- ``StaffDirectory``: one aggregate with each responder's role, phone, language and supervisor (staff data,
  not client data), kept from the roster events, so a notification can name a phone.

Recipients of a notification are written into the event that causes it, so the outbox turns a stored event
into the same messages however late it runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

DESK_NAMESPACE = UUID("0c6f6f0e-7a52-4d0c-9a8e-2c1b7f1d9e31")
DUE_INDEX_ID = uuid5(DESK_NAMESPACE, "due-index")
STAFF_DIRECTORY_ID = uuid5(DESK_NAMESPACE, "staff-directory")


class IncidentCase(Aggregate):
    @event("Opened")
    def __init__(self, id: UUID) -> None:  # noqa: A002 - the incident id
        self.kind: str | None = None
        self.reported_at: datetime | None = None
        self.pages: dict[str, dict[str, Any]] = {}
        self.accepted: list[str] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.ed_visit_noted = False
        self.cancelled = False

    @event("Reported")
    def note_report(self, kind: str, reported_at: datetime, short_code: str | None = None) -> None:
        self.kind, self.reported_at = kind, reported_at
        self.short_code = short_code  # the incident's code, which a task's SMS names (None: noted before it was kept)

    @event("PageNoted")
    def note_page(self, page_id: UUID, responder_id: UUID, role: str) -> None:
        self.pages[str(page_id)] = {"responder_id": str(responder_id), "role": role}

    @event("AcceptanceNoted")
    def note_acceptance(self, responder_id: UUID) -> None:
        self.accepted.append(str(responder_id))

    def accepted_roles(self) -> list[tuple[UUID, str]]:
        """Responders who accepted, with the role they were paged in, in the order they accepted."""
        roles = {p["responder_id"]: p["role"] for p in self.pages.values()}
        return [(UUID(r), roles.get(r, "")) for r in self.accepted]

    @event("EdVisitNoted")
    def note_ed_visit(self, at: datetime) -> None:
        self.ed_visit_noted = True

    @event("CaseCancelled")
    def cancel(self, at: datetime) -> None:
        self.cancelled = True

    def has_task(self, task_id: UUID) -> bool:
        return str(task_id) in self.tasks

    def task(self, task_id: UUID) -> dict[str, Any] | None:
        return self.tasks.get(str(task_id))

    def open_tasks(self) -> list[tuple[UUID, dict[str, Any]]]:
        return [(UUID(k), t) for k, t in self.tasks.items() if t["status"] == "open"]

    @event("TaskCreated")
    def create_task(
        self,
        task_id: UUID,
        rule: str,
        owner_role: str,
        due_at: datetime,
        deadline_at: datetime | None,
        priority: str,
        basis: str,
        code: str,
        assignee_id: UUID | None,
        at: datetime,
        notify: list[dict[str, Any]],
    ) -> None:
        self.tasks[str(task_id)] = {
            "rule": rule,
            "owner_role": owner_role,
            "due_at": due_at,
            "assignee_id": str(assignee_id) if assignee_id else None,
            "status": "open",
            "code": code,
            "priority": priority,
        }

    @event("TaskAssigned")
    def assign_task(
        self, task_id: UUID, assignee_id: UUID, by: str, at: datetime, announce: bool, notify: list[dict[str, Any]]
    ) -> None:
        """``announce``: the desk decided it (publish followup.assigned); else someone else's decision was noted."""
        self.tasks[str(task_id)]["assignee_id"] = str(assignee_id)

    @event("TaskRescheduled")
    def reschedule_task(self, task_id: UUID, due_at: datetime) -> None:
        self.tasks[str(task_id)]["due_at"] = due_at

    @event("TaskDone")
    def finish_task(self, task_id: UUID, at: datetime) -> None:
        self.tasks[str(task_id)]["status"] = "done"

    @event("TaskCancelled")
    def cancel_task(self, task_id: UUID, reason: str, at: datetime) -> None:
        self.tasks[str(task_id)]["status"] = "cancelled"

    @event("AttemptNoted")
    def note_attempt(
        self,
        task_id: UUID,
        number: int,
        reached: bool,
        at: datetime,
        next_due_at: datetime | None,
        channel: str | None,
        of: int,
        unreachable: bool,
        notify: list[dict[str, Any]],
    ) -> None:
        """An outreach attempt (issue 19): the next due at ``next_due_at`` by ``channel`` (published as
        followup.rescheduled), or ``unreachable`` after the last (followup.series_ended, ``notify`` told)."""
        task = self.tasks[str(task_id)]
        task["attempts"] = number
        task["reached"] = task.get("reached", False) or reached
        if next_due_at is not None:
            task["due_at"] = next_due_at
        if unreachable:
            task["status"] = "done"

    @event("TaskOverdue")
    def flag_overdue(
        self, task_id: UUID, due_at: datetime, at: datetime, assignee_id: UUID | None, notify: list[dict[str, Any]]
    ) -> None:
        self.tasks[str(task_id)]["overdue_for"] = due_at

    @event("ReferralNoShowTold")
    def tell_referral_no_show(
        self, referral_id: UUID, code: str | None, at: datetime, notify: list[dict[str, Any]]
    ) -> None:
        """An accepted admission was missed (issue 17): the follow-up coach (else the supervisors) told, once."""
        told = getattr(self, "no_shows_told", [])
        self.no_shows_told = [*told, str(referral_id)]

    def no_show_told(self, referral_id: UUID) -> bool:
        return str(referral_id) in getattr(self, "no_shows_told", [])


class DueIndex(Aggregate):
    """Open tasks by due time. A task leaves it when done, cancelled, or flagged overdue for its due time."""

    @staticmethod
    def create_id() -> UUID:
        return DUE_INDEX_ID

    @event("Started")
    def __init__(self) -> None:
        self.due: dict[str, dict[str, Any]] = {}

    @event("Scheduled")
    def schedule(self, task_id: UUID, incident_id: UUID, due_at: datetime) -> None:
        self.due[str(task_id)] = {"incident_id": str(incident_id), "due_at": due_at}

    @event("Settled")
    def settle(self, task_id: UUID) -> None:
        self.due.pop(str(task_id), None)

    def is_scheduled(self, task_id: UUID, due_at: datetime) -> bool:
        entry = self.due.get(str(task_id))
        return entry is not None and entry["due_at"] == due_at

    def due_by(self, now: datetime) -> list[tuple[UUID, UUID, datetime]]:
        """(task id, incident id, due time) of every task past its due time at ``now``, earliest first."""
        found = [(UUID(k), UUID(v["incident_id"]), v["due_at"]) for k, v in self.due.items() if v["due_at"] < now]
        return sorted(found, key=lambda item: item[2])


class StaffDirectory(Aggregate):
    @staticmethod
    def create_id() -> UUID:
        return STAFF_DIRECTORY_ID

    @event("Started")
    def __init__(self) -> None:
        self.staff: dict[str, dict[str, Any]] = {}

    @event("Recorded")
    def record(
        self, responder_id: UUID, name: str, role: str, phone: str, language: str, supervisor_id: UUID | None
    ) -> None:
        self.staff[str(responder_id)] = {
            "name": name,
            "role": role,
            "phone": phone,
            "language": language,
            "supervisor_id": str(supervisor_id) if supervisor_id else None,
            "retired": False,
        }

    @event("Retired")
    def retire(self, responder_id: UUID) -> None:
        if str(responder_id) in self.staff:
            self.staff[str(responder_id)]["retired"] = True

    def contact(self, responder_id: UUID | None) -> dict[str, Any] | None:
        """``{"responder_id", "phone", "language"}`` for an active responder, else None."""
        if responder_id is None:
            return None
        person = self.staff.get(str(responder_id))
        if person is None or person["retired"]:
            return None
        return {"responder_id": str(responder_id), "phone": person["phone"], "language": person["language"]}

    def role_of(self, responder_id: UUID) -> str | None:
        person = self.staff.get(str(responder_id))
        return person["role"] if person else None

    def supervisor_of(self, responder_id: UUID | None) -> UUID | None:
        person = self.staff.get(str(responder_id)) if responder_id else None
        return UUID(person["supervisor_id"]) if person and person["supervisor_id"] else None

    def supervisors(self) -> list[UUID]:
        return [UUID(k) for k, v in self.staff.items() if v["role"] == "supervisor" and not v["retired"]]
