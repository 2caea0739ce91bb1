"""Outreach as a series of attempts (issue 19 section 1): a follow-up task of a rule with an outreach policy
(post-overdose outreach, the caring contact and the appointment after a suicidal crisis, the visit after an ED
visit) is worked attempt by attempt, each one an event, until the series ends with an outcome.

``followup.attempt_recorded`` (by the assignee or a director): the channel, whether the person was reached, what
was offered and accepted (naloxone kit, test strips, an MOUD start or bridge prescription, a referral), whether the
safety plan was reviewed, and whether the person consents to further contact. The follow-up desk then sets the
next attempt's due time by the rule's policy (``followup.rescheduled`` by "rules"), so the overdue machinery pages
the assignee when it passes; after the policy's last attempt with nobody reached it ends the series itself as
``unreachable`` and pages the supervisors to decide the next step.

``followup.series_ended``: engaged in care, declined, unreachable, moved, deceased; by a person (the assignee or a
director), or by "rules" (unreachable after the last attempt).
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from services.contract.envelope import ShortCode, Strict, event_type

OutreachChannel = Literal["call", "text", "visit"]
OutreachOffer = Literal["naloxone_kit", "test_strips", "moud_start", "bridge_prescription", "referral"]
SeriesOutcome = Literal["engaged_in_care", "declined", "unreachable", "moved", "deceased"]


class FollowUpAttemptRecordedData(Strict):
    task_id: UUID
    incident_id: UUID
    number: int = Field(ge=1, le=20, description="the attempt's number in the series, from 1")
    channel: OutreachChannel
    reached: bool
    offered: list[OutreachOffer] = Field(default_factory=list, max_length=5)
    accepted: list[OutreachOffer] = Field(default_factory=list, max_length=5)
    safety_plan_reviewed: bool | None = Field(default=None, description="None: not a safety-plan rule")
    further_contact: bool | None = Field(default=None, description="the person consents to further contact")
    recorded_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FollowUpAttemptRecordedData:
        if problem := attempt_problem(self.reached, self.offered, self.accepted, self.further_contact):
            raise ValueError(problem)
        return self


def attempt_problem(reached: bool, offered: list[str], accepted: list[str], further_contact: bool | None) -> str | None:
    """Why an attempt's answers contradict each other (None: they do not)."""
    if not set(accepted) <= set(offered):
        return "what was accepted must be among what was offered"
    if not reached and (accepted or further_contact):
        return "nothing is accepted and no consent given when the person was not reached"
    return None


class FollowUpSeriesEndedData(Strict):
    task_id: UUID
    incident_id: UUID
    outcome: SeriesOutcome
    attempts: int = Field(ge=0, le=20)
    ended_by: str = Field(min_length=1, max_length=100, description="a subject, or 'rules' (unreachable)")
    responder_id: UUID | None = None


class FollowUpAttemptRecorded(event_type("followup.attempt_recorded", FollowUpAttemptRecordedData)):
    pass


class FollowUpSeriesEnded(event_type("followup.series_ended", FollowUpSeriesEndedData)):
    pass


class OutreachUnreachable(Strict):
    """Template ``outreach_unreachable``: to the supervisors: task ``task_code`` (incident ``code``) reached nobody
    in ``attempts`` attempts; decide the next step."""

    task_code: ShortCode
    incident_code: ShortCode | None = None
    attempts: int = Field(ge=1, le=20)


EVENTS = (FollowUpAttemptRecorded, FollowUpSeriesEnded)
UPCASTERS: dict = {}
