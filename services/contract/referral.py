"""Events of a closed-loop referral (issue 17, sections 2 and 3): the level of care a clinician chose, a referral
sent to up to three programs at once, each program's answer, and what happens after an accept until the person
is admitted (or does not arrive).

The states (documented in the README, tested in ``projections/domain/referral.py``), after HL7's SDOH referral
Task: ``sent`` -> ``received`` -> ``accepted`` | ``declined`` | ``info_needed`` -> ``admitted`` | ``no_show``;
``cancelled`` from any state that is not final. Each program's offer has its own state (``OfferState``); the
referral's state follows from them. Every transition is one event naming its actor (a credential subject, "program
link", "program sms" or "deadline") and the channel it came by.

Producers: the workspace (projections) appends what a person does (``referral.level_of_care_chosen``,
``referral.sent``, the answers a program gives on its signed link, transport, insurance, arrival, cancel); the
projections' referral desk appends what a program answers by SMS and what its clock decides
(``referral.acceptance_overdue``, ``referral.no_show`` with actor "deadline"). The dispatcher pages the on-call
supervisor on ``referral.acceptance_overdue`` and repeats it, wider, until someone takes it or a program accepts
(``referral.escalated``, ``referral.escalation_answered``); the follow-up desk pages the follow-up coach on
``referral.no_show``.

Nothing a program is sent by SMS names the person: a code and a signed link (``templates.py``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from services.contract.dispatch import AlarmRecipient
from services.contract.envelope import ShortCode, Strict, UtcDatetime, event_type
from services.contract.treatment import LanguageCode, LevelOfCare, Medication, Payer, Population

Actor = str
"""Who did it: a credential subject, "program link", "program sms" or "deadline"."""

AnswerChannel = Literal["link", "sms", "app"]
"""How a program's answer came: its signed link, an SMS reply, or staff entering it in the workspace (a phone call)."""


class ReferralState(StrEnum):
    """The referral's state (the README has the diagram)."""

    SENT = "sent"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    INFO_NEEDED = "info_needed"
    ADMITTED = "admitted"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class OfferState(StrEnum):
    """One program's part of a referral."""

    SENT = "sent"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    INFO_NEEDED = "info_needed"
    WITHDRAWN = "withdrawn"
    ADMITTED = "admitted"
    NO_SHOW = "no_show"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    LEVEL_OF_CARE = "level_of_care_not_offered"
    PAYER = "payer_not_accepted"
    POPULATION = "population_not_served"
    MEDICAL = "medical_needs_exceed_program"
    OTHER = "other"


class InfoNeeded(StrEnum):
    INSURANCE = "insurance"
    MEDICAL_HISTORY = "medical_history"
    MEDICATION_LIST = "medication_list"
    IDENTIFICATION = "identification"
    CONTACT = "contact"
    OTHER = "other"


class CancelReason(StrEnum):
    PERSON_DECLINED = "person_declined"
    PERSON_UNREACHABLE = "person_unreachable"
    OTHER_CARE_ARRANGED = "other_care_arranged"
    DECEASED = "deceased"
    ENTERED_IN_ERROR = "entered_in_error"


TransportMode = Literal["responder", "program", "family", "ride_service", "ems", "public_transit", "self"]
InsuranceStatus = Literal["yes", "no", "pending"]


class LevelOfCareChosenData(Strict):
    """A clinician confirmed or changed the level of care triage proposed (ASAM), for an incident."""

    incident_id: UUID
    person_id: UUID | None = None
    proposed: LevelOfCare | None = Field(description="what the known triage proposed; None: nothing to go on")
    proposed_basis: list[str] = Field(default_factory=list, max_length=10, description="the triage facts it used")
    chosen: LevelOfCare
    chosen_by: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None
    reason: str | None = Field(default=None, max_length=300, description="why the proposal was changed, if it was")


class ReferralNeeds(Strict):
    """What the programs were matched on; shown to the programs on their link (nothing that names the person)."""

    medication: Medication | None = None
    payer: Payer | None = None
    populations: list[Population] = Field(default_factory=list, max_length=5)
    language: LanguageCode = "en"


class ReferralSentData(Strict):
    referral_id: UUID
    incident_id: UUID
    person_id: UUID | None = None
    code: ShortCode = Field(description="the code a program replies with (ACCEPT <code>)")
    level_of_care: LevelOfCare
    needs: ReferralNeeds
    program_ids: list[UUID] = Field(min_length=1, max_length=3)
    accept_by: UtcDatetime = Field(description="if no program has accepted by then, the supervisor is paged")
    sent_by: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None

    @model_validator(mode="after")
    def _distinct(self) -> ReferralSentData:
        if len(set(self.program_ids)) != len(self.program_ids):
            raise ValueError("program_ids must be distinct")
        return self


class ProgramAnswer(Strict):
    referral_id: UUID
    incident_id: UUID
    program_id: UUID
    program_name: str | None = Field(
        default=None, max_length=150, description="the program's name in the directory then (for the record)"
    )
    actor: Actor = Field(min_length=1, max_length=100)
    channel: AnswerChannel


class ReferralReceivedData(ProgramAnswer):
    """The program opened its link or replied: it has the referral."""


class ReferralAcceptedData(ProgramAnswer):
    admission_from: UtcDatetime
    admission_until: UtcDatetime = Field(description="if the person has not arrived by then, the coach is paged")

    @model_validator(mode="after")
    def _window(self) -> ReferralAcceptedData:
        if self.admission_until <= self.admission_from:
            raise ValueError("admission_until must be after admission_from")
        return self


class ReferralDeclinedData(ProgramAnswer):
    reason: DeclineReason


class ReferralInfoRequestedData(ProgramAnswer):
    needed: list[InfoNeeded] = Field(min_length=1, max_length=6)


class ReferralInfoProvidedData(Strict):
    """Staff sent the program what it asked for (by phone or fax; the system records that it was done, not what)."""

    referral_id: UUID
    incident_id: UUID
    program_id: UUID
    provided: list[InfoNeeded] = Field(min_length=1, max_length=6)
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class ReferralWithdrawnData(Strict):
    """An offer closed because another program accepted, or the referral was cancelled: the program is told."""

    referral_id: UUID
    incident_id: UUID
    program_id: UUID
    reason: Literal["another_program_accepted", "referral_cancelled"]


class ReferralTransportArrangedData(Strict):
    referral_id: UUID
    incident_id: UUID
    mode: TransportMode
    pickup_at: UtcDatetime | None = None
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class ReferralInsuranceVerifiedData(Strict):
    referral_id: UUID
    incident_id: UUID
    status: InsuranceStatus
    payer: Payer | None = None
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class ReferralAdmittedData(ProgramAnswer):
    """Arrival confirmed, by the program (link or SMS) or by staff (channel app)."""

    admitted_at: UtcDatetime
    responder_id: UUID | None = None


class ReferralNoShowData(Strict):
    """The admission window closed without an arrival (actor "deadline"), or the program said the person did not
    come."""

    referral_id: UUID
    incident_id: UUID
    program_id: UUID
    code: ShortCode | None = Field(default=None, description="the referral's code, for the coach's text")
    window_closed_at: UtcDatetime
    actor: Actor = Field(min_length=1, max_length=100)
    channel: Literal["deadline", "link", "sms", "app"]


class ReferralCancelledData(Strict):
    referral_id: UUID
    incident_id: UUID
    reason: CancelReason
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class ReferralAcceptanceOverdueData(Strict):
    """No program accepted by ``accept_by``: the on-call supervisor is paged (once per referral)."""

    referral_id: UUID
    incident_id: UUID
    code: ShortCode
    accept_by: UtcDatetime
    declined: int = Field(ge=0, le=3)
    unanswered: int = Field(ge=0, le=3)


class ReferralEscalatedData(Strict):
    """The dispatcher paged about a referral nobody accepted in time: sounding ``repeat`` (1: the on-duty supervisor;
    later ones also every active director), whom it told, and when it sounds again unless someone takes it."""

    referral_id: UUID
    incident_id: UUID
    code: ShortCode
    repeat: int = Field(ge=1)
    notified: list[AlarmRecipient]
    next_at: UtcDatetime | None = Field(description="None: the last sounding (CRISIS_REFERRAL_ALARM_SOUNDINGS)")


EscalationAnswer = Literal["taken", "accepted", "cancelled", "admitted"]
"""What ended the paging: someone paged replied Y <code> (taken), or a program accepted, or the referral was
cancelled or the person admitted."""


class ReferralEscalationAnsweredData(Strict):
    referral_id: UUID
    incident_id: UUID
    code: ShortCode
    reason: EscalationAnswer
    responder_id: UUID | None = Field(default=None, description="who took it (reason taken)")
    role: Literal["supervisor", "director"] | None = Field(default=None, description="their role (reason taken)")
    soundings: int = Field(ge=1)


class ReferralAlarmAnswered(Strict):
    """Template ``referral_alarm_answered``: to the people paged about a referral, that it needs none of them now
    (a program accepted, it was cancelled, the person arrived), or that it is theirs (taken_by_you) or a
    colleague's (taken)."""

    code: ShortCode
    reason: Literal["taken_by_you", "taken", "accepted", "cancelled", "admitted"]


class LevelOfCareChosen(event_type("referral.level_of_care_chosen", LevelOfCareChosenData)):
    pass


class ReferralSent(event_type("referral.sent", ReferralSentData)):
    pass


class ReferralReceived(event_type("referral.received", ReferralReceivedData)):
    pass


class ReferralAccepted(event_type("referral.accepted", ReferralAcceptedData)):
    pass


class ReferralDeclined(event_type("referral.declined", ReferralDeclinedData)):
    pass


class ReferralInfoRequested(event_type("referral.info_requested", ReferralInfoRequestedData)):
    pass


class ReferralInfoProvided(event_type("referral.info_provided", ReferralInfoProvidedData)):
    pass


class ReferralWithdrawn(event_type("referral.withdrawn", ReferralWithdrawnData)):
    pass


class ReferralTransportArranged(event_type("referral.transport_arranged", ReferralTransportArrangedData)):
    pass


class ReferralInsuranceVerified(event_type("referral.insurance_verified", ReferralInsuranceVerifiedData)):
    pass


class ReferralAdmitted(event_type("referral.admitted", ReferralAdmittedData)):
    pass


class ReferralNoShow(event_type("referral.no_show", ReferralNoShowData)):
    pass


class ReferralCancelled(event_type("referral.cancelled", ReferralCancelledData)):
    pass


class ReferralAcceptanceOverdue(event_type("referral.acceptance_overdue", ReferralAcceptanceOverdueData)):
    pass


class ReferralEscalated(event_type("referral.escalated", ReferralEscalatedData)):
    pass


class ReferralEscalationAnswered(event_type("referral.escalation_answered", ReferralEscalationAnsweredData)):
    pass


EVENTS = (
    LevelOfCareChosen,
    ReferralSent,
    ReferralReceived,
    ReferralAccepted,
    ReferralDeclined,
    ReferralInfoRequested,
    ReferralInfoProvided,
    ReferralWithdrawn,
    ReferralTransportArranged,
    ReferralInsuranceVerified,
    ReferralAdmitted,
    ReferralNoShow,
    ReferralCancelled,
    ReferralAcceptanceOverdue,
    ReferralEscalated,
    ReferralEscalationAnswered,
)
REFERRAL_TRANSITIONS = EVENTS[1:]
"""Every event that changes a referral (``referral.level_of_care_chosen`` belongs to the incident)."""
UPCASTERS: dict = {}
