"""The versioned envelope every event travels in, and the value types the event modules share.

Event types live in one module per area (intake, dispatch, roster, messaging, operations);
``services.contract.events`` gathers them into the registry the consumers decode with.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EVENT_NAMESPACE = UUID("5b0f7c2e-4f8a-4d8e-9a51-3c1f0e6d2a90")
SUBJECT_PREFIX = "crisis"
PARTITIONS_ENV = "CRISIS_PARTITIONS"
ANY_PARTITION = "*"


def partition_count() -> int:
    """How many partitions events about an incident are published in: ``CRISIS_PARTITIONS`` (default 1: none, every
    event on ``crisis.<type>``). Every service of a deployment must be given the same count (deploy/README.md)."""
    return max(1, int(os.environ.get(PARTITIONS_ENV) or 1))


def partition_token(index: int, count: int) -> str:
    """The subject token of partition ``index`` of ``count`` (``p2of4``): the count is part of it, so the subjects of
    two counts never overlap and a change of count leaves the old partitions' events where their durables read them."""
    return f"p{index}of{count}"


def partition_of(incident_id: UUID, count: int) -> int:
    """The partition an incident's events are in: every event of one incident in the same one, so their order holds."""
    return incident_id.int % count


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("timestamps must be timezone-aware UTC")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 phone number")]
ShortCode = Annotated[str, Field(pattern=r"^\d{4}$", description="4-digit code a responder replies with")]
MessageSid = Annotated[str, Field(pattern=r"^(SM|MM)[0-9a-fA-F]{32}$", description="Twilio message SID")]


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

    SUBJECT_SUFFIXES: ClassVar[tuple[str, ...]] = ()
    """Sub-subjects events of this type are published under (``crisis.<type>.<suffix>``, the suffix chosen by the
    event's ``subject``), so that a durable can read some of them only; none: every event on ``crisis.<type>``."""

    @property
    def subject(self) -> str:
        """``crisis.<type>``; with partitions (``partition_count`` > 1) an event about an incident is on
        ``crisis.<partition>.<type>`` (``crisis.p2of4.dispatch.offered``), the partition derived from the incident id
        (an opaque UUID: no PHI in subjects). Events about no incident (roster, schedule, inbound SMS) stay on
        ``crisis.<type>``."""
        return subject_for(self.type, self.partition())

    def partition(self) -> str | None:
        """This event's partition token under today's count; None when it is in none (no partitions, no incident)."""
        count = partition_count()
        if count == 1 or self.incident_id is None:
            return None
        return partition_token(partition_of(self.incident_id, count), count)

    @classmethod
    def type_subjects(
        cls, suffixes: tuple[str, ...] | None = None, *, partition: str | None = ANY_PARTITION
    ) -> list[str]:
        """The subjects events of this type are on: ``crisis.<type>`` (every event of a type without sub-subjects,
        and those stored before its sub-subjects were introduced) and its sub-subjects (``suffixes``: only those); and
        the same in ``partition`` (a token, or ``*``: any partition; None: in none)."""
        bare = cls.partition_subjects(None, suffixes)
        return bare + (cls.partition_subjects(partition, suffixes) if partition else [])

    @classmethod
    def partition_subjects(cls, partition: str | None, suffixes: tuple[str, ...] | None = None) -> list[str]:
        """The subjects of this type in ``partition`` only (``crisis.p2of4.<type>`` and its sub-subjects; None: those
        in no partition)."""
        chosen = cls.SUBJECT_SUFFIXES if suffixes is None else suffixes
        unknown = set(chosen) - set(cls.SUBJECT_SUFFIXES)
        if unknown:
            raise ValueError(f"{cls.TYPE} has no sub-subject {sorted(unknown)}")
        base = subject_for(cls.TYPE, partition)
        return [base, *(f"{base}.{suffix}" for suffix in chosen)]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def event_type(type_name: str, data_model: type[Strict], version: int = 1) -> type[Envelope]:
    """The envelope class for one event type at its current schema version."""

    class Typed(Envelope):
        TYPE: ClassVar[str] = type_name
        VERSION: ClassVar[int] = version
        type: Literal[type_name]  # type: ignore[valid-type]
        schema_version: Literal[version] = version  # type: ignore[valid-type]
        data: data_model  # type: ignore[valid-type]

    return Typed


def subject_for(event_type_name: str, partition: str | None = None) -> str:
    """``crisis.<type>``, or ``crisis.<partition>.<type>``."""
    return f"{SUBJECT_PREFIX}.{partition}.{event_type_name}" if partition else f"{SUBJECT_PREFIX}.{event_type_name}"


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
