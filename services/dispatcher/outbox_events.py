"""What one stored domain event becomes on the stream: a contract event, or a request to the notifier.

Ids are derived from the stored event, so a publish repeated after a crash is de-duplicated by the stream.
Shared by the dispatcher's outboxes (``contract_outbox.py``, ``alarm_outbox.py``).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from services.contract.events import Envelope, derived_id, new_event, notification_request

PRODUCER = "dispatcher"


def contract_event(event_class: type[Envelope], data: Any, stored: Any, incident_id: UUID | None) -> Envelope:
    """The contract event for one stored domain event (its id derived from the stored event's)."""
    return new_event(
        event_class,
        data,
        event_id=derived_id(stored.originator_id, stored.originator_version, event_class.TYPE),
        occurred_at=stored.at,
        producer=PRODUCER,
        incident_id=incident_id,
        causation_id=stored.caused_by,
    )


def notification_requested(
    stored: Any,
    *,
    notification_id: UUID,
    to: str,
    language: str,
    template: str,
    params: dict[str, Any],
    priority: str,
    page_id: UUID | None,
    incident_id: UUID | None,
    channel: Literal["sms", "voice"] = "sms",
) -> Envelope:
    """A request to the notifier to send one message, caused by one stored domain event."""
    return notification_request(
        notification_id=notification_id,
        to=to,
        language=language,
        template=template,
        params=params,
        priority=priority,
        occurred_at=stored.at,
        producer=PRODUCER,
        incident_id=incident_id,
        page_id=page_id,
        channel=channel,
        causation_id=stored.caused_by,
    )
