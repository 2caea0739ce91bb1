"""The event contract: one versioned envelope and a typed model per event type.

Every fact that crosses a service boundary travels on the CRISIS stream as one of these.
The JSON Schema files in ``schemas/`` are generated from these models
(``python -m services.contract.schemagen``) and a test proves they agree.
Published events are never edited: a change is a new ``schema_version`` plus an upcaster.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EVENT_NAMESPACE = UUID("5b0f7c2e-4f8a-4d8e-9a51-3c1f0e6d2a90")


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("timestamps must be timezone-aware UTC")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 phone number")]
ShortCode = Annotated[str, Field(pattern=r"^\d{4}$", description="4-digit code a responder replies with")]


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class CrisisKind(StrEnum):
    OVERDOSE = "overdose"
    WITHDRAWAL = "withdrawal"
    SELF_HARM_RISK = "self_harm_risk"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    access_notes: str | None = Field(default=None, max_length=500)


class OverdoseDetails(Strict):
    responsive: bool | None = None
    breathing: bool | None = None
    naloxone_doses_given: int = Field(default=0, ge=0, le=20)
    ems_called: bool = False
    substance: str | None = Field(default=None, max_length=100)


class Reporter(Strict):
    channel: Literal["staff", "hotline", "web"]
    relation: str | None = Field(default=None, max_length=100)
    callback: E164 | None = None


# ---- event payloads -------------------------------------------------------------------------


class IncidentReportedData(Strict):
    incident_id: UUID
    short_code: ShortCode
    kind: CrisisKind
    priority: Priority
    needs: list[str] = Field(description="what triage says the response needs, e.g. ems_now, naloxone_carrier")
    guidance: list[str] = Field(description="immediate instructions given to the reporter")
    location: Location
    reporter: Reporter
    overdose: OverdoseDetails | None = None


class PageReason(Strict):
    """Why this person was paged: shown to the director on the timeline."""

    on_call: bool
    skills_matched: list[str]
    distance_km: float = Field(ge=0)
    load: int = Field(ge=0, description="incidents the responder was already on")
    rule: str


class DispatchOfferedData(Strict):
    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    responder_role: str
    code: ShortCode
    priority: Priority
    ack_deadline: UtcDatetime
    step: int = Field(ge=1, description="escalation step this page belongs to")
    reason: PageReason


class NotificationRequestedData(Strict):
    notification_id: UUID
    incident_id: UUID | None
    page_id: UUID | None
    to: E164
    body: str = Field(max_length=1600, description="PHI-free text rendered from a template")
    template: str
    priority: Priority


class SmsSentData(Strict):
    notification_id: UUID
    message_sid: str = Field(pattern=r"^(SM|MM)[0-9a-fA-F]{32}$")
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
    message_sid: str = Field(pattern=r"^(SM|MM)[0-9a-fA-F]{32}$")
    from_number: E164
    to_number: E164
    body: str = Field(max_length=1600)


class DispatchUnfilledData(Strict):
    """Nobody could be paged; the reason is shown to the supervisor and on the timeline."""

    incident_id: UUID
    reason: str


class DispatchAcknowledgedData(Strict):
    incident_id: UUID
    page_id: UUID
    responder_id: UUID
    code: ShortCode
    message_sid: str


class MessageDeadLetteredData(Strict):
    consumer: str
    reason: str
    stream_sequence: int = Field(ge=1)
    original_subject: str
    original_payload: str = Field(description="the unreadable message, decoded as UTF-8 with replacement")


# ---- envelope -------------------------------------------------------------------------------


class Envelope(Strict):
    """The versioned wrapper every event on the stream travels in."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    id: UUID = Field(description="unique event id; also the Nats-Msg-Id used for de-duplication")
    type: str
    schema_version: int = Field(ge=1)
    occurred_at: UtcDatetime
    incident_id: UUID | None = None
    causation_id: UUID | None = None
    correlation_id: UUID | None = None
    producer: str = Field(min_length=1, max_length=64)
    data: Any

    @property
    def subject(self) -> str:
        return subject_for(self.type)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def _typed(type_name: str, data_model: type[Strict]) -> type[Envelope]:
    class Typed(Envelope):
        TYPE: ClassVar[str] = type_name
        type: Literal[type_name]  # type: ignore[valid-type]
        schema_version: Literal[1] = 1
        data: data_model  # type: ignore[valid-type]

    return Typed


class IncidentReported(_typed("incident.reported", IncidentReportedData)):
    pass


class DispatchOffered(_typed("dispatch.offered", DispatchOfferedData)):
    pass


class NotificationRequested(_typed("notification.requested", NotificationRequestedData)):
    pass


class SmsSent(_typed("sms.sent", SmsSentData)):
    pass


class SmsFailed(_typed("sms.failed", SmsFailedData)):
    pass


class SmsReceived(_typed("sms.received", SmsReceivedData)):
    pass


class DispatchUnfilled(_typed("dispatch.unfilled", DispatchUnfilledData)):
    pass


class DispatchAcknowledged(_typed("dispatch.acknowledged", DispatchAcknowledgedData)):
    pass


class MessageDeadLettered(_typed("message.dead_lettered", MessageDeadLetteredData)):
    pass


EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.TYPE: cls
    for cls in (
        IncidentReported,
        DispatchOffered,
        NotificationRequested,
        SmsSent,
        SmsFailed,
        SmsReceived,
        DispatchUnfilled,
        DispatchAcknowledged,
        MessageDeadLettered,
    )
}

SUBJECT_PREFIX = "crisis"


def subject_for(event_type: str) -> str:
    return f"{SUBJECT_PREFIX}.{event_type}"


def derived_id(*parts: object) -> UUID:
    """A deterministic event id, so a re-publish after a crash is de-duplicated by the stream."""
    return uuid5(EVENT_NAMESPACE, "/".join(str(p) for p in parts))


def new_event(
    event_class: type[Envelope],
    data: BaseModel,
    *,
    event_id: UUID,
    occurred_at: datetime,
    producer: str,
    incident_id: UUID | None = None,
    causation_id: UUID | None = None,
    correlation_id: UUID | None = None,
) -> Envelope:
    """Wrap ``data`` in its envelope. The correlation id defaults to the incident, else to the event itself."""
    return event_class(
        id=event_id,
        type=event_class.TYPE,
        occurred_at=occurred_at.astimezone(UTC),
        incident_id=incident_id,
        causation_id=causation_id,
        correlation_id=correlation_id or incident_id or event_id,
        producer=producer,
        data=data,
    )


class UnreadableMessage(ValueError):
    """A message that can never be processed: it belongs on the dead-letter subject, with this reason."""


def decode_event(payload: bytes) -> Envelope:
    """Parse and validate a stream payload into its typed event (upcasting old versions)."""
    import json

    from pydantic import ValidationError

    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableMessage(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise UnreadableMessage("not a JSON object")
    event_class = EVENT_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if event_class is None:
        raise UnreadableMessage(f"unknown event type {raw.get('type')!r}")
    raw = upcast(raw)
    try:
        return event_class.model_validate(raw)
    except ValidationError as exc:
        raise UnreadableMessage(f"invalid {event_class.TYPE}: {exc.errors(include_url=False)}") from exc


UPCASTERS: dict[tuple[str, int], Any] = {}
"""(type, version) -> function(raw dict) -> raw dict at version + 1. None yet: every type is at v1."""


def upcast(raw: dict) -> dict:
    while (step := UPCASTERS.get((raw.get("type"), raw.get("schema_version")))) is not None:
        raw = step(raw)
    return raw
