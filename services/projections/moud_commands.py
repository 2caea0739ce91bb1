"""MOUD continuity as use cases (issue 19 section 3): record a bridge, record that its appointment was kept.

Who may: a prescriber, nurse or clinician who was on the incident, or a director (a refusal is a 403, audited as
denied). The bridge is linked to the incident's prescriber-review task when triage made one. Each is ONE event on
the stream (``moud.bridge_recorded``, ``moud.appointment_kept``); the follow-up desk opens and closes the outreach
for a missed appointment from them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from services.contract.events import (
    MoudAppointmentKept,
    MoudAppointmentKeptData,
    MoudBridgeRecorded,
    MoudBridgeRecordedData,
)
from services.projections.application import ClinicalRecordAccess
from services.projections.domain.followups import fold_tasks, task_id_for
from services.projections.errors import NotPermitted, Refused
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import RequestIds

PRESCRIBING = frozenset({"clinician", "nurse", "prescriber"})


class MoudCommands(ClinicalRecordAccess):
    def __init__(self, access: ClinicalRecordAccess) -> None:
        super().__init__(
            access.store, access.audit, access.publish, access.clock, access.targets, access.export_fhir, access.zone
        )

    async def _allowed(self, who: Principal, incident_id: UUID, action: str) -> list[Any]:
        events = [r.event for r in await self._incident_events(who, incident_id, action)]
        if who.role is not AccessRole.DIRECTOR:
            me = (await asyncio.to_thread(self.staff)).get(who.responder_id) if who.responder_id else None
            if me is None or me.role not in PRESCRIBING:
                await self._audit(who, action, "incident", str(incident_id), "denied")
                raise NotPermitted("a bridge is recorded by a prescriber, nurse or clinician on the incident")
        return events

    async def record_bridge(self, who: Principal, incident_id: UUID, bridge: dict[str, Any], ids: RequestIds) -> int:
        events = await self._allowed(who, incident_id, "write:moud.bridge_recorded")
        review = task_id_for(incident_id, "prescriber_review")
        task = review if review in fold_tasks(events) else None
        data = MoudBridgeRecordedData(
            bridge_id=ids.id_for("moud.bridge"),
            incident_id=incident_id,
            task_id=task,
            recorded_by=who.subject,
            responder_id=who.responder_id,
            **bridge,
        )
        return await self._append(self._event(MoudBridgeRecorded, data, incident_id, ids))

    async def appointment_kept(
        self, who: Principal, incident_id: UUID, bridge_id: UUID, kept_at: datetime | None, ids: RequestIds
    ) -> int:
        events = await self._allowed(who, incident_id, "write:moud.appointment_kept")
        bridges = {e.data.bridge_id for e in events if e.type == "moud.bridge_recorded"}
        if bridge_id not in bridges:
            raise Refused("no such bridge on this incident")
        if any(e.type == "moud.appointment_kept" and e.data.bridge_id == bridge_id for e in events):
            raise Refused("the appointment was recorded as kept already")
        data = MoudAppointmentKeptData(
            bridge_id=bridge_id,
            incident_id=incident_id,
            kept_at=kept_at or self.clock.now(),
            recorded_by=who.subject,
            responder_id=who.responder_id,
        )
        return await self._append(self._event(MoudAppointmentKept, data, incident_id, ids))
