"""Caring contacts for a year after a suicidal crisis (issue 19 section 2; DOMAIN.md follow-up rule 5).

A clinician enrols a person (their record, issue 17) with the person's consent to receive brief, PHI-free texts
on a schedule (``caring.enrolled``: the schedule in days, recorded so a later change of configuration does not
change it). The projections' caring desk sends each due text once (``caring.contact_sent`` with the notifier's
request), in the person's language, and reads the person's texts back: STOP (or any opt-out keyword) ends the
series for this channel (``caring.withdrawn``, reason stop); anything else is a reply that may be a call for help
(``caring.reply_received``, with a code): the person is thanked and told where help is now, and the dispatcher
pages the on-call clinician until someone takes it. Staff may end it too (``caring.withdrawn``, reason staff).
After the last text the series is ``caring.completed``.

Nothing in a text names the person, the crisis or the organisation's kind of work: the templates carry a number.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from services.contract.envelope import E164, MessageSid, ShortCode, Strict, UtcDatetime, event_type
from services.contract.outreach import OutreachUnreachable

Actor = str


class CaringEnrolledData(Strict):
    enrolment_id: UUID
    person_id: UUID
    incident_id: UUID | None = None
    phone: E164
    language: Literal["en", "es"] = "en"
    schedule_days: list[int] = Field(
        min_length=1, max_length=24, description="days after consented_at each text is due, increasing (1-400)"
    )
    consent_how: Literal["verbal", "written"] = Field(description="how the person agreed to these texts")
    consented_at: UtcDatetime
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None

    @model_validator(mode="after")
    def _increasing(self) -> CaringEnrolledData:
        days = self.schedule_days
        if any(d < 1 or d > 400 for d in days) or any(b <= a for a, b in zip(days, days[1:], strict=False)):
            raise ValueError("schedule_days must be increasing days between 1 and 400")
        return self


class CaringContactSentData(Strict):
    enrolment_id: UUID
    person_id: UUID
    number: int = Field(ge=1, le=24)
    of: int = Field(ge=1, le=24)
    due_at: UtcDatetime
    notification_id: UUID


class CaringWithdrawnData(Strict):
    enrolment_id: UUID
    person_id: UUID
    reason: Literal["stop", "staff"]
    channel: Literal["sms", "app"]
    message_sid: MessageSid | None = None
    actor: Actor = Field(min_length=1, max_length=100)
    responder_id: UUID | None = None


class CaringReplyReceivedData(Strict):
    """The person texted back (not an opt-out keyword): the dispatcher pages the on-call clinician. The text itself
    is in ``sms.received`` (message_sid); it is never repeated in a page."""

    enrolment_id: UUID
    person_id: UUID
    code: ShortCode = Field(description="what the clinician replies Y <code> with, and finds on the person's page")
    message_sid: MessageSid
    received_at: UtcDatetime


class CaringCompletedData(Strict):
    enrolment_id: UUID
    person_id: UUID
    sent: int = Field(ge=0, le=24)


class CaringEnrolled(event_type("caring.enrolled", CaringEnrolledData)):
    pass


class CaringContactSent(event_type("caring.contact_sent", CaringContactSentData)):
    pass


class CaringWithdrawn(event_type("caring.withdrawn", CaringWithdrawnData)):
    pass


class CaringReplyReceived(event_type("caring.reply_received", CaringReplyReceivedData)):
    pass


class CaringCompleted(event_type("caring.completed", CaringCompletedData)):
    pass


# ---- what the texts may carry (templates.py merges these) ------------------------------------------------------


class CaringContact(Strict):
    """Template ``caring_contact``: the n-th text of the series (the wording varies with it); nothing else."""

    number: int = Field(ge=1, le=24)


class CaringReplyAck(Strict):
    """Template ``caring_reply_ack``: to the person who replied: thanks, someone will call, 988 and 911 now."""


class CaringReplyAlert(Strict):
    """Template ``caring_reply_alert``: to the clinicians paged: a person in caring contacts replied (code)."""

    code: ShortCode
    repeat: int = Field(default=1, ge=1, le=99)


class CaringAlarmAnswered(Strict):
    code: ShortCode
    reason: Literal["taken_by_you", "taken"]


CARING_TEMPLATES: dict[str, type[Strict]] = {
    "caring_contact": CaringContact,
    "caring_reply_ack": CaringReplyAck,
    "caring_reply_alert": CaringReplyAlert,
    "caring_alarm_answered": CaringAlarmAnswered,
    "outreach_unreachable": OutreachUnreachable,  # outreach.py
}

EVENTS = (CaringEnrolled, CaringContactSent, CaringWithdrawn, CaringReplyReceived, CaringCompleted)
UPCASTERS: dict = {}
