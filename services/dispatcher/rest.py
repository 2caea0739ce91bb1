"""Rest after a hard call (issue 19 section 5): when the documentation records a death or an overdose reversal,
everyone who accepted the incident rests for ``CRISIS_REST_AFTER_HARD_CALL_HOURS`` (8; 0 turns it off): routing
passes them over while anyone else can be paged, and pages them, saying so, when nobody else can
(``domain/routing.py``). Once per responder and incident. A supervisor ends a rest early, explicitly
(``responder.rest_ended`` from the workspace).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.contract.events import (
    DocumentationFieldsCompleted,
    Envelope,
    ResponderRestEnded,
    ResponderRestStarted,
    ResponderRestStartedData,
    hard_call,
)
from services.dispatcher.domain.incident import IncidentDispatch, PageStatus
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.outbox_events import contract_event
from services.dispatcher.unit_of_work import UnitOfWork


def rest_after_hard_call(
    work: UnitOfWork, incident: IncidentDispatch, completed: DocumentationFieldsCompleted, hours: float, now: datetime
) -> None:
    what = hard_call(completed.data.fields)
    if what is None or hours <= 0:
        return
    accepted = {p["responder_id"] for p in incident.pages.values() if p["status"] == PageStatus.ACCEPTED}
    for responder_id in sorted(accepted | set(incident.on_it)):
        record = work.record(UUID(responder_id))
        if str(incident.id) in getattr(record, "rested_for", []):
            continue
        record.start_rest(
            until=now + timedelta(hours=hours), what=what, incident_id=incident.id, caused_by=completed.id, at=now
        )


def end_rest(work: UnitOfWork, ended: ResponderRestEnded, now: datetime) -> None:
    record = work.record(ended.data.responder_id)
    if record.resting_until() is not None:
        record.end_rest(by=ended.data.ended_by, caused_by=ended.id, at=now)


def publish_rest_started(outbox: Any, stored: ResponderRecord.RestStarted) -> Sequence[Envelope]:
    """``responder.rest_started``, filed under the incident of the hard call (its timeline shows it)."""
    record: ResponderRecord = outbox.repository.get(stored.originator_id, version=stored.originator_version)
    data = ResponderRestStartedData(
        responder_id=record.responder_id, incident_id=stored.incident_id, until=stored.until, what=stored.what
    )
    return (contract_event(ResponderRestStarted, data, stored, stored.incident_id),)
