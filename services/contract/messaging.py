"""Events of messaging: SMS requested, sent, failed, dropped and received."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import Field, model_validator

from services.contract.envelope import (
    E164,
    MessageSid,
    Priority,
    ShortCode,
    Strict,
    UtcDatetime,
    event_type,
    new_event,
    subject_for,
)
from services.contract.templates import TEMPLATES, Language, without_retired_free_text


class NotificationRequestedData(Strict):
    """Send one message. The notifier renders ``template`` with ``params`` in ``language``.

    v3: a page's place is a reference to a place the system resolved (``place``, ``zone``), no longer the
    free-text ``area``; v2 requests are read without their ``area``.
    """

    notification_id: UUID
    incident_id: UUID | None
    page_id: UUID | None
    to: E164
    channel: Literal["sms", "voice"] = "sms"
    template: str
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="the template's parameters (services/contract/templates.py): codes, counts, distances, and "
        "places as PlaceRef references (16 hex digits), never free text",
    )
    language: Language = "en"
    priority: Priority

    @model_validator(mode="after")
    def _known_template(self) -> NotificationRequestedData:
        params_model = TEMPLATES.get(self.template)
        if params_model is None:
            raise ValueError(f"unknown template {self.template!r}")
        params_model.model_validate(self.params)
        return self


class SmsSentData(Strict):
    """The provider accepted the SMS. One per notification; a bundle's SMS is reported for each member."""

    notification_id: UUID
    message_sid: MessageSid
    to: E164
    status: str
    segments: int = Field(ge=1)
    body: str | None = Field(
        default=None, max_length=1600, description="the text sent, rendered from a PHI-free template"
    )


class SmsFailedData(Strict):
    """The notification will not reach the person: refused, undelivered, or out of retries.

    Also used for a voice call that could not be placed (``channel`` "voice"), so that one event means
    "this person cannot be reached by this notification" whichever channel it used. ``permanent`` is true
    when the provider says the number cannot take it (e.g. 21211, 21610, 21614, 30003-30008), false when
    the notifier ran out of retries for a transient error.
    """

    notification_id: UUID
    to: E164
    error_code: int | None
    error_message: str
    permanent: bool
    channel: Literal["sms", "voice"] = "sms"
    message_sid: MessageSid | None = Field(
        default=None, description="set when a status callback reported the accepted message undelivered"
    )


CallSid = Annotated[str, Field(pattern=r"^CA[0-9a-fA-F]{32}$", description="Twilio call SID")]


class CallPlacedData(Strict):
    """A voice call was handed to the provider (channel "voice"); it speaks the rendered template."""

    notification_id: UUID
    call_sid: CallSid
    to: E164
    status: str = Field(max_length=32)


DropReason = Literal[
    "page_accepted",
    "page_covered",
    "page_declined",
    "page_timed_out",
    "page_unreachable",
    "incident_cancelled",
    "incident_closed",
    "alarm_stopped",
    "nothing_to_withdraw",
]
"""Why a requested message was dropped: its page was accepted, covered by another's accept or withdrawn as covered,
declined, timed out or unreachable; its incident cancelled or closed; its NOBODY ACCEPTED alarm stopped; or it was a
"page withdrawn" notice for a page none of whose messages reached the phone."""


class NotificationDroppedData(Strict):
    """A requested message was never sent and never will be: what it was for no longer needs it. Only page messages
    (offer, reminder, voice call), the NOBODY ACCEPTED alarm's and "page withdrawn" notices are ever dropped, and only
    while they wait in the send queue (behind a rate or flood limit); one whose provider call had begun goes. A
    bundle's drop is reported for each page it stood for."""

    notification_id: UUID
    page_id: UUID | None
    to: E164
    channel: Literal["sms", "voice"] = "sms"
    template: str = Field(max_length=40)
    reason: DropReason


class SmsReceivedData(Strict):
    message_sid: MessageSid
    from_number: E164
    to_number: E164
    body: str = Field(max_length=1600)


class SmsStatusUpdatedData(Strict):
    """A Twilio status callback: queued, sending, sent, delivered, undelivered, failed, ..."""

    message_sid: MessageSid
    status: str = Field(max_length=32)
    to: E164 | None = None
    error_code: int | None = None


class SmsOptOutChangedData(Strict):
    """A phone texted STOP (opted out) or START (opted back in); HELP is recorded without a change."""

    phone: E164
    opted_out: bool
    keyword: str = Field(max_length=32)
    message_sid: MessageSid
    received_at: UtcDatetime


KeypadPrompt = Literal["page", "check_in", "field"]
"""What a voice call asked the person to press keys for: a page (accept or decline), a safety check-in, or (on a
call the responder makes to the organisation's number) an incident code and a field command."""

KEYPAD_COMMANDS: dict[str, dict[str, str]] = {
    "page": {"1": "accept", "2": "decline"},
    "check_in": {"1": "ok", "2": "clear"},
    "field": {"1": "arrived", "2": "ok", "3": "clear", "4": "done"},
}
"""prompt -> key pressed -> the reply command it means, the same commands as a text (``Reply.command``). The
notifier's call (or the gateway's answer to a call in) says these keys, the gateway answers "thank you" for them,
the dispatcher acts on them. On a "field" call the command key follows the incident's 4-digit code."""

FIELD_CODE_DIGITS = 4
"""A "field" call's keys: the incident's code (these many digits), then one command key."""


def field_code(prompt: str | None, digits: str) -> str | None:
    """The incident code typed before the command key on a "field" call (``1234`` of ``12341``); None otherwise."""
    code, key = digits[:FIELD_CODE_DIGITS], digits[FIELD_CODE_DIGITS:]
    if prompt != "field" or len(key) != 1 or not (code.isascii() and code.isdigit() and len(code) == FIELD_CODE_DIGITS):
        return None
    return code


def keypad_command(prompt: str | None, digits: str) -> str | None:
    """The reply command ``digits`` pressed on a call asking ``prompt`` mean; None when they mean nothing. On a
    "field" call they are the incident's code and one command key."""
    if prompt == "field":
        return KEYPAD_COMMANDS["field"].get(digits[FIELD_CODE_DIGITS:]) if field_code(prompt, digits) else None
    return KEYPAD_COMMANDS.get(prompt or "", {}).get(digits)


class CallKeypadPressedData(Strict):
    """A person pressed keys on a voice call that asked for them (Twilio's <Gather> answered), as Twilio reported
    it to the gateway's ``/twilio/voice/keypad``. ``prompt``, ``code`` and ``notification_id`` are what the call
    itself carried in its action URL (signed by Twilio with the rest); ``KEYPAD_COMMANDS`` says what the keys
    mean. It is no text: ``message_sid`` is None, and ``from_number`` is the phone that pressed the keys. On a
    call the responder made (prompt "field") the phone is the caller's and ``code`` the first four keys pressed:
    up to 5 keys (a code and a command key)."""

    call_sid: CallSid
    phone: E164 = Field(description="the phone that pressed the keys: the one called (Twilio's To), or the caller")
    digits: str = Field(pattern=r"^[0-9*#]{1,5}$")
    prompt: KeypadPrompt | None = None
    code: ShortCode | None = None
    notification_id: UUID | None = None

    @property
    def message_sid(self) -> None:
        """A key press has no message SID (the code that answers texts reads one)."""
        return None

    @property
    def from_number(self) -> str:
        return self.phone


class NotificationRequested(event_type("notification.requested", NotificationRequestedData, version=3)):
    pass


FAILED_DELIVERY_STATUSES = frozenset({"failed", "undelivered"})
"""Status callbacks that say a message will never arrive."""


class SmsStatusUpdated(event_type("sms.status_updated", SmsStatusUpdatedData)):
    """Published on ``crisis.sms.status_updated.failed`` (failed, undelivered) or ``...progress`` (the rest: sent,
    delivered, ...), so that the services that act only on failures (the notifier) are not sent the rest, about two
    status callbacks per SMS (issue 16). Events stored before this split are on ``crisis.sms.status_updated``."""

    SUBJECT_SUFFIXES = ("failed", "progress")

    @property
    def subject(self) -> str:
        outcome = "failed" if self.data.status in FAILED_DELIVERY_STATUSES else "progress"
        return f"{subject_for(self.TYPE, self.partition())}.{outcome}"


class SmsOptOutChanged(event_type("sms.opt_out_changed", SmsOptOutChangedData)):
    pass


class SmsSent(event_type("sms.sent", SmsSentData)):
    pass


class SmsFailed(event_type("sms.failed", SmsFailedData)):
    pass


class SmsReceived(event_type("sms.received", SmsReceivedData)):
    pass


class NotificationDropped(event_type("notification.dropped", NotificationDroppedData)):
    pass


class CallPlaced(event_type("call.placed", CallPlacedData)):
    pass


class CallKeypadPressed(event_type("call.keypad_pressed", CallKeypadPressedData)):
    pass


def notification_request(
    *,
    notification_id: UUID,
    to: str,
    language: str,
    template: str,
    params: dict[str, Any],
    priority: str,
    occurred_at: datetime,
    producer: str,
    incident_id: UUID | None,
    page_id: UUID | None = None,
    channel: Literal["sms", "voice"] = "sms",
    causation_id: UUID | None = None,
) -> NotificationRequested:
    """The one way a service asks the notifier to send a message.

    The event's id is the notification id, so a request repeated after a crash is de-duplicated by the stream;
    a language the notifier has no wording in becomes English. Raises pydantic's ``ValidationError`` for an
    unknown template or parameters the template does not take: a request that could never be sent is never
    published.
    """
    data = NotificationRequestedData(
        notification_id=notification_id,
        incident_id=incident_id,
        page_id=page_id,
        to=to,
        channel=channel,
        template=template,
        params=params,
        language=language if language in get_args(Language) else "en",  # type: ignore[arg-type]
        priority=Priority(priority),
    )
    event = new_event(
        NotificationRequested,
        data,
        event_id=notification_id,
        occurred_at=occurred_at,
        producer=producer,
        incident_id=incident_id,
        causation_id=causation_id,
    )
    return event  # type: ignore[return-value]


def _notification_requested_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 carried a body the sender had already rendered; v2 names a template and its parameters.

    A v1 request is replayed as "you have a message, reply STATUS", with no text carried over: the
    wording now always comes from a template.
    """
    data = dict(raw.get("data") or {})
    data.pop("body", None)
    data["template"] = "legacy_v1"
    data["params"] = {}
    return {**raw, "schema_version": 2, "data": data}


def _notification_requested_v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """v2 pages carried ``area``, the address as the reporter typed it; v3 refers to resolved places only.

    The area is dropped, not converted: nothing can tell a typed address from a resolved one, and typed
    text must not reach an SMS. Such a page is sent without a place (the distance and the code remain).
    """
    data = dict(raw.get("data") or {})
    data["params"] = without_retired_free_text(str(data.get("template")), dict(data.get("params") or {}))
    return {**raw, "schema_version": 3, "data": data}


EVENTS = (
    NotificationRequested,
    SmsSent,
    SmsFailed,
    SmsReceived,
    SmsStatusUpdated,
    SmsOptOutChanged,
    CallPlaced,
    NotificationDropped,
    CallKeypadPressed,
)
UPCASTERS = {
    ("notification.requested", 1): _notification_requested_v1_to_v2,
    ("notification.requested", 2): _notification_requested_v2_to_v3,
}
