"""Reading an incident back from the gateway: its state as the gateway's incident-state bucket holds it (open or
closed, when, how many responders were paged), for the callers who may see it (``domain/access.py``: the same
relation that lets them change it). The full record (timeline, documentation) is the projections' service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.intake_gateway.domain.access import Caller, IncidentRelations, may_change_incident
from services.intake_gateway.refusals import IncidentNotFound, IncidentStatus, NotYours


@dataclass(frozen=True)
class IncidentState:
    incident_id: UUID
    kind: str
    status: IncidentStatus
    reported_at: datetime
    closed_at: datetime | None
    relations: IncidentRelations


class IncidentStateReads(Protocol):
    async def state(self, incident_id: UUID) -> IncidentState | None:
        """The incident's state; None when the gateway never saw its report. An exception means the bucket did
        not answer (retry)."""


class IncidentReads:
    def __init__(self, states: IncidentStateReads) -> None:
        self.states = states

    async def state(self, incident_id: UUID, caller: Caller) -> IncidentState:
        """The incident's state when ``caller`` may see it. Unknown: IncidentNotFound for a director, who may know
        every id; for anyone else unknown and not theirs are the same NotYours (the entrypoint audits it)."""
        state = await self.states.state(incident_id)
        if state is None and caller.role == "director":
            raise IncidentNotFound(str(incident_id))
        if state is None or not may_change_incident(caller, state.relations):
            raise NotYours(str(incident_id))
        return state
