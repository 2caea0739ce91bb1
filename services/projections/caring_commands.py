"""Caring contacts in the workspace (issue 19 section 2): start a person's series with their consent, end it.

Who may: whoever may record the person's consents (``domain/person_access.py``: a clinician on an incident the
person is linked to, or a director); a refusal is a 403, audited. The series needs a phone in the profile and a
person who did not ask not to be contacted; one open series per person. Each change is ONE event appended to the
stream (``caring.enrolled`` with the schedule in days, ``caring.withdrawn`` reason staff); the answer waits
(bounded) until the caring desk has it, so the person's page shows it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from services.contract.events import CaringEnrolled, CaringEnrolledData, CaringWithdrawn, CaringWithdrawnData
from services.projections.domain.person_access import PersonAction
from services.projections.errors import InvalidForm, Refused
from services.projections.person_commands import RECORD_TYPE, PersonCommands, linked_incidents
from services.projections.responder_desk import Recorded
from services.runtime.credentials import Principal
from services.runtime.request_ids import RequestIds
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)
DESK_WAIT_SECONDS = 5.0
HOW = ("verbal", "written")


class CaringCommands:
    def __init__(self, people: PersonCommands, desk: Any, schedule: Sequence[int]) -> None:
        self.people, self.desk, self.schedule = people, desk, list(schedule)

    def series(self, person_id: UUID) -> list[dict[str, Any]]:
        return self.desk.series_for(person_id) if self.desk is not None else []

    async def enrol(self, who: Principal, person_id: UUID, values: Mapping[str, str], ids: RequestIds) -> Recorded:
        view = await self.people._person(who, person_id, PersonAction.CONSENT)
        how = values.get("consent_how", "")
        if how not in HOW:
            raise InvalidForm("consent_how", "say how the person agreed to these texts: verbal or written")
        if view.contact_preference == "none":
            raise InvalidForm("consent_how", "the person asked not to be contacted: change the profile first")
        if not view.phone:
            raise InvalidForm("consent_how", "the profile has no phone for these texts: add one first")
        if self.desk is None:
            raise Refused("caring contacts are not available now: their desk is not running")
        if any(s["ended"] is None for s in await asyncio.to_thread(self.series, person_id)):
            raise Refused("this person already receives caring texts")
        incidents = linked_incidents(view)
        data = CaringEnrolledData(
            enrolment_id=ids.id_for("caring.enrolment"),
            person_id=person_id,
            incident_id=min(incidents) if len(incidents) == 1 else None,
            phone=view.phone,
            language="es" if view.preferred_language == "es" else "en",
            schedule_days=self.schedule,
            consent_how=how,  # type: ignore[arg-type]
            consented_at=self.people.clock.now(),
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._record(who, CaringEnrolled, data, person_id, ids, "caring texts started")

    async def end(self, who: Principal, person_id: UUID, enrolment_id: UUID, ids: RequestIds) -> Recorded:
        await self.people._person(who, person_id, PersonAction.CONSENT)
        mine = {s["enrolment_id"]: s for s in await asyncio.to_thread(self.series, person_id)}
        series = mine.get(str(enrolment_id))
        if series is None:
            raise InvalidForm("enrolment_id", "choose one of this person's caring series")
        if series["ended"] is not None:
            raise Refused(f"this series has ended already ({series['ended']})")
        data = CaringWithdrawnData(
            enrolment_id=enrolment_id,
            person_id=person_id,
            reason="staff",
            channel="app",
            actor=who.subject,
            responder_id=who.responder_id,
        )
        return await self._record(who, CaringWithdrawn, data, person_id, ids, "caring texts ended")

    async def _record(
        self, who: Principal, event_class: Any, data: Any, person_id: UUID, ids: RequestIds, what: str
    ) -> Recorded:
        event = self.people._event(event_class, data, None, ids)  # type: ignore[arg-type]
        sequence = await self.people._append(event)
        await self.people._audit(who, f"write:{event.type}", RECORD_TYPE, str(person_id), "recorded")
        try:  # so the person's page shows it back
            await asyncio.to_thread(self.desk.recorder.wait, STREAM_NAME, sequence, DESK_WAIT_SECONDS)
        except Exception:  # recorded on the stream: the page shows it once the desk has it
            log.warning("the caring desk did not reach %s within %s s", sequence, DESK_WAIT_SECONDS)
        return Recorded(what, event.occurred_at)
