"""Events of messaging: SMS requested, sent, failed and received."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field, model_validator

from services.contract.envelope import E164, MessageSid, Priority, Strict, UtcDatetime, event_type
from services.contract.templates import TEMPLATES, Language


class NotificationRequestedData(Strict):
    """Send one message. The notifier renders ``template`` with ``params`` in ``language``."""

    notification_id: UUID
    incident_id: UUID | None
    page_id: UUID | None
    to: E164
    channel: Literal["sms", "voice"] = "sms"
    template: str
    params: dict[str, Any] = Field(default_factory=dict)
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
    notification_id: UUID
    message_sid: MessageSid
    to: E164
    status: str
    segments: int = Field(ge=1)


class SmsFailedData(Strict):
    notification_id: UUID
    to: E164
    error_code: int | None
    error_message: str
    permanent: bool


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


class NotificationRequested(event_type("notification.requested", NotificationRequestedData, version=2)):
    pass


class SmsStatusUpdated(event_type("sms.status_updated", SmsStatusUpdatedData)):
    pass


class SmsOptOutChanged(event_type("sms.opt_out_changed", SmsOptOutChangedData)):
    pass


class SmsSent(event_type("sms.sent", SmsSentData)):
    pass


class SmsFailed(event_type("sms.failed", SmsFailedData)):
    pass


class SmsReceived(event_type("sms.received", SmsReceivedData)):
    pass


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


EVENTS = (NotificationRequested, SmsSent, SmsFailed, SmsReceived, SmsStatusUpdated, SmsOptOutChanged)
UPCASTERS = {("notification.requested", 1): _notification_requested_v1_to_v2}
