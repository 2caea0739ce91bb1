"""What each contract event says on a timeline. Pure: one function per event type."""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any

from services.contract.events import (
    DispatchAcknowledged,
    DispatchOffered,
    DispatchUnfilled,
    Envelope,
    IncidentReported,
    NotificationRequested,
    SmsFailed,
    SmsSent,
)


@dataclass(frozen=True)
class Entry:
    actor: str
    channel: str
    summary: str
    details: dict[str, Any]


@singledispatch
def timeline_entry(event: Envelope) -> Entry | None:
    """The entry an event adds to its incident's timeline; None for events that add none."""
    return None


@timeline_entry.register
def _(event: IncidentReported) -> Entry:
    data = event.data
    return Entry(
        actor=f"reporter ({data.reporter.relation or 'unknown relation'})",
        channel=data.reporter.channel,
        summary=f"{data.kind.value.replace('_', ' ')} reported, {data.priority.value}; needs {', '.join(data.needs)}",
        details=data.model_dump(mode="json", exclude={"reporter": {"callback"}}),
    )


@timeline_entry.register
def _(event: DispatchOffered) -> Entry:
    data = event.data
    reason = data.reason
    return Entry(
        actor="dispatcher",
        channel="system",
        summary=(
            f"paged {data.responder_role} (step {data.step}, {reason.distance_km:.1f} km, {reason.rule}); "
            f"acknowledge by {data.ack_deadline.isoformat()}"
        ),
        details=data.model_dump(mode="json"),
    )


@timeline_entry.register
def _(event: DispatchUnfilled) -> Entry:
    return Entry(
        "dispatcher",
        "system",
        f"nobody could be paged: {event.data.reason}",
        event.data.model_dump(mode="json"),
    )


@timeline_entry.register
def _(event: NotificationRequested) -> Entry:
    data = event.data
    return Entry(
        "dispatcher",
        "system",
        f"SMS requested ({data.template})",
        {"notification_id": str(data.notification_id), "template": data.template},
    )


@timeline_entry.register
def _(event: SmsSent) -> Entry:
    data = event.data
    return Entry(
        "notifier",
        "sms",
        f"SMS sent ({data.status}, {data.segments} segment(s))",
        data.model_dump(mode="json", exclude={"to"}),
    )


@timeline_entry.register
def _(event: SmsFailed) -> Entry:
    data = event.data
    return Entry(
        "notifier",
        "sms",
        f"SMS failed: {data.error_code} {data.error_message}",
        data.model_dump(mode="json", exclude={"to"}),
    )


@timeline_entry.register
def _(event: DispatchAcknowledged) -> Entry:
    data = event.data
    return Entry(f"responder {data.responder_id}", "sms", f"page {data.code} accepted", data.model_dump(mode="json"))
