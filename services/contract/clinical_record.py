"""Events of the clinical record: crisis documentation completed, attested and signed off; follow-up tasks.

Documentation is assembled from the other events; these events add only what no other event says (the
disposition, the hand-off, the safety plan, corrected times, ...) and the two signatures. Follow-up tasks are
created by the projections' rules, then assigned, completed, rescheduled or cancelled by people (through the
gateway or the director workspace), and flagged overdue by a clock.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from services.contract.envelope import Priority, ShortCode, Strict, UtcDatetime, event_type
from services.contract.roster import Role

Disposition = Literal[
    "stabilised_on_scene",
    "transported_to_ed",
    "admitted",
    "referred_to_treatment",
    "refused_care",
    "deceased",
    "false_alarm",
    "unable_to_locate",
]

NaloxoneRoute = Literal["intranasal", "intramuscular", "intravenous", "subcutaneous"]
DoseResponse = Literal["improved", "unchanged", "worse"]


class NaloxoneDoseRecord(Strict):
    """A naloxone dose entered by the clinician (NEMSIS eMedications), e.g. one given before anyone texted it."""

    given_at: UtcDatetime
    product: str = Field(max_length=100, description="e.g. 'naloxone nasal spray 4 mg'")
    dose_mg: StrictFloat | None = Field(default=None, gt=0, le=100)
    route: NaloxoneRoute
    given_by_role: str = Field(max_length=50, description="bystander, peer_coach, clinician, ems, ...")
    response: DoseResponse | None = None


class SafetyPlan(Strict):
    """The Stanley-Brown safety plan: six steps, each in the person's own words."""

    warning_signs: str | None = Field(default=None, max_length=1000)
    internal_coping: str | None = Field(default=None, max_length=1000)
    social_distractions: str | None = Field(default=None, max_length=1000)
    help_contacts: str | None = Field(default=None, max_length=1000)
    professional_contacts: str | None = Field(default=None, max_length=1000)
    means_safety: str | None = Field(default=None, max_length=1000)


class Part2Disclosure(Strict):
    """An emergency disclosure of Part 2 information (42 CFR 2.51), recorded when it happens."""

    recipient_name: str = Field(max_length=100)
    recipient_affiliation: str = Field(max_length=200)
    disclosed_by: str = Field(max_length=100)
    disclosed_at: UtcDatetime
    nature_of_emergency: str = Field(max_length=500)


class DocumentationFields(Strict):
    """What a clinician adds to the documentation. Only the fields given are changed; later values win."""

    disposition: Disposition | None = None
    handoff_organisation: str | None = Field(default=None, max_length=200)
    handoff_receiving_person: str | None = Field(default=None, max_length=100)
    handed_off_at: UtcDatetime | None = None
    cleared_at: UtcDatetime | None = None
    acknowledged_at: UtcDatetime | None = Field(default=None, description="when the page was not answered by SMS")
    en_route_at: UtcDatetime | None = None
    on_scene_at: UtcDatetime | None = None
    ems_activated: StrictBool | None = None
    ems_agency: str | None = Field(default=None, max_length=200)
    supervisor_name: str | None = Field(default=None, max_length=100)
    follow_up_plan: str | None = Field(default=None, max_length=2000)
    safety_plan: SafetyPlan | None = None
    documentation_minutes: StrictInt | None = Field(default=None, ge=0, le=1440)
    language: str | None = Field(default=None, max_length=50, description="language the response was held in")
    interpreter_used: StrictBool | None = None
    naloxone_doses: list[NaloxoneDoseRecord] = Field(default_factory=list, max_length=20)
    part2_disclosure: Part2Disclosure | None = None
    notes: str | None = Field(default=None, max_length=4000)


def hard_call(fields: DocumentationFields) -> str | None:
    """'a death' or 'an overdose reversal' when the documentation records one (a naloxone dose that improved the
    person): the responders rest, and the team debriefs (issue 19). None otherwise."""
    if fields.disposition == "deceased":
        return "a death"
    if any(dose.response == "improved" for dose in fields.naloxone_doses):
        return "an overdose reversal"
    return None


class DocumentationFieldsCompletedData(Strict):
    incident_id: UUID
    fields: DocumentationFields
    completed_by: str = Field(min_length=1, max_length=100, description="the signed-in subject")
    responder_id: UUID | None = None


class DocumentationAttestedData(Strict):
    """The clinician attests that the documentation is complete and accurate."""

    incident_id: UUID
    attested_by: str = Field(min_length=1, max_length=100)
    attester_role: str = Field(max_length=50, description="roster role, e.g. clinician, or director")
    responder_id: UUID | None = None
    statement: str = Field(max_length=500)


class DocumentationSignedOffData(Strict):
    """A clinical director reviewed the attested documentation: approved, or returned for changes."""

    incident_id: UUID
    signed_off_by: str = Field(min_length=1, max_length=100)
    decision: Literal["approved", "returned"] = "approved"
    comment: str | None = Field(default=None, max_length=1000)


FollowUpRule = Literal[
    "post_overdose_outreach",
    "ed_follow_up",
    "caring_contact",
    "follow_up_appointment",
    "medical_review",
    "prescriber_review",
    "bridge_appointment",  # issue 19: outreach if an MOUD bridge appointment is missed (moud.py)
    "debrief",  # issue 19: the team's debrief after a death or an overdose reversal
]
QUALIFIED_ROLES: dict[Role, frozenset[str]] = {
    Role.PEER_COACH: frozenset({"peer_coach"}),
    Role.CLINICIAN: frozenset({"clinician", "nurse", "prescriber"}),
    Role.NURSE: frozenset({"nurse", "clinician", "prescriber"}),
    Role.PRESCRIBER: frozenset({"prescriber"}),
    Role.SUPERVISOR: frozenset({"supervisor"}),
    Role.DIRECTOR: frozenset({"director"}),
}
"""A task's owner role -> the roster roles that may take it (the follow-up desk's and the dispatcher's rule)."""

FollowUpOutcome = Literal["contact_made", "no_contact", "declined", "referred", "other"]


class FollowUpCreatedData(Strict):
    task_id: UUID
    incident_id: UUID
    rule: FollowUpRule
    owner_role: Role
    assignee_id: UUID | None = None
    due_at: UtcDatetime
    deadline_at: UtcDatetime | None = Field(default=None, description="the latest acceptable time, if any")
    priority: Priority
    task_code: ShortCode = Field(description="opaque code the SMS about this task carries")
    basis: str = Field(max_length=200, description="why the rule fired, for the director")


class FollowUpAssignedData(Strict):
    task_id: UUID
    incident_id: UUID
    assignee_id: UUID
    assigned_by: str = Field(min_length=1, max_length=100, description="a subject, or 'rules'")


class FollowUpCompletedData(Strict):
    task_id: UUID
    incident_id: UUID
    outcome: FollowUpOutcome
    note: str | None = Field(default=None, max_length=2000)
    completed_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class FollowUpRescheduledData(Strict):
    task_id: UUID
    incident_id: UUID
    due_at: UtcDatetime
    reason: str = Field(min_length=1, max_length=300)
    rescheduled_by: str = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class FollowUpOverdueData(Strict):
    task_id: UUID
    incident_id: UUID
    due_at: UtcDatetime
    assignee_id: UUID | None
    notified: list[UUID] = Field(description="responders paged or told: the assignee and their supervisor")


class FollowUpCancelledData(Strict):
    task_id: UUID
    incident_id: UUID
    reason: Literal["incident_cancelled", "deceased", "false_alarm", "not_applicable"]
    cancelled_by: str = Field(min_length=1, max_length=100)


class DocumentationFieldsCompleted(event_type("documentation.fields_completed", DocumentationFieldsCompletedData)):
    pass


class DocumentationAttested(event_type("documentation.attested", DocumentationAttestedData)):
    pass


class DocumentationSignedOff(event_type("documentation.signed_off", DocumentationSignedOffData)):
    pass


class FollowUpCreated(event_type("followup.created", FollowUpCreatedData)):
    pass


class FollowUpAssigned(event_type("followup.assigned", FollowUpAssignedData)):
    pass


class FollowUpCompleted(event_type("followup.completed", FollowUpCompletedData)):
    pass


class FollowUpRescheduled(event_type("followup.rescheduled", FollowUpRescheduledData)):
    pass


class FollowUpOverdue(event_type("followup.overdue", FollowUpOverdueData)):
    pass


class FollowUpCancelled(event_type("followup.cancelled", FollowUpCancelledData)):
    pass


EVENTS = (
    DocumentationFieldsCompleted,
    DocumentationAttested,
    DocumentationSignedOff,
    FollowUpCreated,
    FollowUpAssigned,
    FollowUpCompleted,
    FollowUpRescheduled,
    FollowUpOverdue,
    FollowUpCancelled,
)
UPCASTERS: dict = {}
