"""The follow-up desk's outbox: each stored desk event -> the contract events and the notification requests to
publish. ``FollowUpOutbox.translate`` ends with the list of what is published for which stored event.

Event ids are derived from the stored event, so a publish repeated after a crash is de-duplicated by the stream.
A notice says only a task's opaque code, the incident's short code and the hours until it is due: nothing about
the client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import (
    Envelope,
    FollowUpAssigned,
    FollowUpAssignedData,
    FollowUpCancelled,
    FollowUpCancelledData,
    FollowUpCreated,
    FollowUpCreatedData,
    FollowUpOverdue,
    FollowUpOverdueData,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    FollowUpSeriesEnded,
    FollowUpSeriesEndedData,
    Priority,
    Role,
    derived_id,
    new_event,
    notification_request,
)
from services.projections.domain.followup_aggregates import IncidentCase

PRODUCER = "projections"
RULES = "rules"
"""Who changed a task when no person did: the follow-up rules."""


class FollowUpOutbox:
    """Reads a case as it was when each stored event happened, and says what to publish for it."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @singledispatchmethod
    def translate(self, stored: Any) -> Sequence[Envelope]:
        """The contract events for one stored desk event; other stored events publish nothing."""
        return ()

    def publish_task_created(self, created: IncidentCase.TaskCreated) -> Sequence[Envelope]:
        data = FollowUpCreatedData(
            task_id=created.task_id,
            incident_id=created.originator_id,
            rule=created.rule,
            owner_role=Role(created.owner_role),
            assignee_id=created.assignee_id,
            due_at=created.due_at,
            deadline_at=created.deadline_at,
            priority=Priority(created.priority),
            task_code=created.code,
            basis=created.basis,
        )
        case = self.repository.get(created.originator_id, version=created.originator_version)
        notices = [
            task_notice(created, person, "task_due", created.due_at, created.code, created.priority, _code_of(case))
            for person in created.notify
        ]
        return (contract_event(FollowUpCreated, data, created), *notices)

    def publish_task_assigned(self, assigned: IncidentCase.TaskAssigned) -> Sequence[Envelope]:
        case = self.repository.get(assigned.originator_id, version=assigned.originator_version)
        task = case.task(assigned.task_id)
        events: list[Envelope] = []
        if assigned.announce:
            data = FollowUpAssignedData(
                task_id=assigned.task_id,
                incident_id=assigned.originator_id,
                assignee_id=assigned.assignee_id,
                assigned_by=assigned.by,
            )
            events.append(contract_event(FollowUpAssigned, data, assigned))
        for person in assigned.notify:
            events.append(
                task_notice(
                    assigned, person, "task_due", task["due_at"], task["code"], task["priority"], _code_of(case)
                )
            )
        return events

    def publish_task_cancelled(self, cancelled: IncidentCase.TaskCancelled) -> Sequence[Envelope]:
        data = FollowUpCancelledData(
            task_id=cancelled.task_id, incident_id=cancelled.originator_id, reason=cancelled.reason, cancelled_by=RULES
        )
        return (contract_event(FollowUpCancelled, data, cancelled),)

    def publish_task_overdue(self, overdue: IncidentCase.TaskOverdue) -> Sequence[Envelope]:
        case = self.repository.get(overdue.originator_id, version=overdue.originator_version)
        task = case.task(overdue.task_id)
        data = FollowUpOverdueData(
            task_id=overdue.task_id,
            incident_id=overdue.originator_id,
            due_at=overdue.due_at,
            assignee_id=overdue.assignee_id,
            notified=[UUID(p["responder_id"]) for p in overdue.notify],
        )
        notices = [
            task_notice(overdue, person, "task_overdue", overdue.due_at, task["code"], task["priority"], _code_of(case))
            for person in overdue.notify
        ]
        return (contract_event(FollowUpOverdue, data, overdue), *notices)

    def publish_referral_no_show(self, told: IncidentCase.ReferralNoShowTold) -> Sequence[Envelope]:
        """The referral's code to each person told (the follow-up coach, else the supervisors)."""
        return [
            notification_request(
                notification_id=derived_id("followups", told.originator_id, told.originator_version, p["responder_id"]),
                to=p["phone"],
                language=p["language"],
                template="referral_no_show",
                params={"code": told.code or "0000"},
                priority="P2",
                occurred_at=told.at,
                producer=PRODUCER,
                incident_id=told.originator_id,
            )
            for p in told.notify
        ]

    def publish_attempt_noted(self, noted: IncidentCase.AttemptNoted) -> Sequence[Envelope]:
        """After an outreach attempt (issue 19): the next attempt's due time (``followup.rescheduled`` by rules), or
        the series ended as unreachable (``followup.series_ended`` by rules) and the supervisors told."""
        incident = noted.originator_id
        if noted.next_due_at is not None:
            reason = f"attempt {noted.number + 1} by {noted.channel} (outreach series, {noted.of} attempts)"
            data = FollowUpRescheduledData(
                task_id=noted.task_id,
                incident_id=incident,
                due_at=noted.next_due_at,
                reason=reason,
                rescheduled_by=RULES,
            )
            return (contract_event(FollowUpRescheduled, data, noted),)
        if not noted.unreachable:
            return ()
        ended = FollowUpSeriesEndedData(
            task_id=noted.task_id, incident_id=incident, outcome="unreachable", attempts=noted.number, ended_by=RULES
        )
        case = self.repository.get(incident, version=noted.originator_version)
        params = {"task_code": case.task(noted.task_id)["code"], "attempts": noted.number}
        if code := _code_of(case):
            params["incident_code"] = code
        texts = [
            notification_request(
                notification_id=derived_id("followups", incident, noted.originator_version, p["responder_id"]),
                to=p["phone"],
                language=p["language"],
                template="outreach_unreachable",
                params=params,
                priority="P2",
                occurred_at=noted.at,
                producer=PRODUCER,
                incident_id=incident,
            )
            for p in noted.notify
        ]
        return (contract_event(FollowUpSeriesEnded, ended, noted), *texts)

    translate.register(IncidentCase.TaskCreated, publish_task_created)
    translate.register(IncidentCase.TaskAssigned, publish_task_assigned)
    translate.register(IncidentCase.TaskCancelled, publish_task_cancelled)
    translate.register(IncidentCase.TaskOverdue, publish_task_overdue)
    translate.register(IncidentCase.ReferralNoShowTold, publish_referral_no_show)
    translate.register(IncidentCase.AttemptNoted, publish_attempt_noted)


def contract_event(event_class: type[Envelope], data: Any, stored: Any) -> Envelope:
    """The contract event for one stored desk event, its id derived from the stored event's (so a publish
    repeated after a crash is de-duplicated by the stream)."""
    return new_event(
        event_class,
        data,
        event_id=derived_id("followups", stored.originator_id, stored.originator_version),
        occurred_at=stored.at,
        producer=PRODUCER,
        incident_id=stored.originator_id,
    )


def task_notice(
    stored: Any,
    person: dict[str, Any],
    template: str,
    due_at: datetime,
    code: str,
    priority: str,
    incident_code: str | None = None,
) -> Envelope:
    """A PHI-free message about a task: its opaque code, the incident's short code and the hours until due,
    nothing about the client."""
    hours = max(0, math.ceil((due_at - stored.at) / timedelta(hours=1)))
    return notification_request(
        notification_id=derived_id(
            "followups", stored.originator_id, stored.originator_version, person["responder_id"]
        ),
        to=person["phone"],
        language=person["language"],
        template=template,
        params={"task_code": code, "due_in_hours": hours} | ({"incident_code": incident_code} if incident_code else {}),
        priority=priority,
        occurred_at=stored.at,
        producer=PRODUCER,
        incident_id=stored.originator_id,
    )


def _code_of(case: Any) -> str | None:
    """The incident's short code, as the case noted it from the report (None for a case opened before it did)."""
    return getattr(case, "short_code", None)
