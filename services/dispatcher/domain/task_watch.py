"""A follow-up task as the dispatcher follows it (issue 19): whose it is and whether it is still open, so that an
overdue task whose assignee is off call goes to someone on call who can take it (the dispatcher knows the schedule).
One small aggregate per task, folded from ``followup.*`` events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.dispatcher.domain.roster import ResponderView

_NAMESPACE = UUID("3b9d6a1e-2f4c-4e8b-9a71-6c0d5e2f8a44")


class TaskWatch(Aggregate):
    @staticmethod
    def create_id(task_id: UUID) -> UUID:
        return uuid5(_NAMESPACE, f"task/{task_id}")

    @event("Created")
    def __init__(self, task_id: UUID, incident_id: UUID, owner_role: str, assignee_id: UUID | None) -> None:
        self.task_id = task_id
        self.incident_id = incident_id
        self.owner_role = owner_role
        self.assignee_id = assignee_id
        self.open = True

    @event("Assigned")
    def assign(self, assignee_id: UUID) -> None:
        self.assignee_id = assignee_id

    @event("Closed")
    def close(self) -> None:
        self.open = False

    @event("Reassigned")
    def reassign(self, assignee_id: UUID, previous_id: UUID | None, caused_by: UUID, at: datetime) -> None:
        """The task was overdue and ``previous_id`` off call (or nobody had it): ``assignee_id`` is on call."""
        self.assignee_id = assignee_id


def on_call_taker(
    qualified: frozenset[str], on_duty: Iterable[ResponderView], current: UUID | None
) -> ResponderView | None:
    """Who takes an overdue task whose assignee is off call: the first active person on duty whose role may take it
    (the schedule's order), never the current assignee; None when the current one is on duty or nobody can."""
    people = [v for v in on_duty if v.active and v.role in qualified]
    if current is not None and any(v.responder_id == current for v in people):
        return None  # on call: the overdue notice reached them; nothing to change
    return next((v for v in people if v.responder_id != current), None)
