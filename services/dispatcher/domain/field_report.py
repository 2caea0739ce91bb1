"""One thing a responder reported from the field by text (or the voice keypad): an ETA, a naloxone dose, EMS on
scene, 911 called, the person not found, backup asked for, vitals.

Each report is its own small aggregate, stored once with everything its contract event and its confirmation need
(the incident, the responder, the code, the phone the answer goes to): the outbox publishes from it alone. What
the incident's deadlines need (ETA, EMS called, EMS arrived) the incident notes as well
(``IncidentDispatch.note_eta`` and the rest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

ReportKind = Literal["eta", "naloxone", "ems_arrived", "ems_called", "cannot_locate", "backup", "vitals"]


class FieldReport(Aggregate):
    @event("Reported")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - derived from the reply that made the report (a backup page's: from the page)
        kind: ReportKind,
        incident_id: UUID,
        responder_id: UUID,
        responder_name: str,
        code: str,
        phone: str,
        language: str,
        priority: str,
        channel: str,
        message_sid: str | None,
        details: dict[str, Any],  # the kind's own values (JSON-able): minutes, product, vitals, paged, ...
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self.kind, self.incident_id, self.responder_id = kind, incident_id, responder_id
        self.details = details
