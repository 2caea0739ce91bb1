"""Rest after a hard call in the workspace (issue 19 section 5): who is resting now, and a supervisor's (or
director's) explicit end of a rest.

The dispatcher starts a rest (``responder.rest_started``, filed under the incident of the death or reversal) and
ends one when told (``responder.rest_ended``). Here: the current rests, folded from those events on the incidents'
timelines, and ``end`` for a director or a responder whose roster role is supervisor (anyone else: 403, audited),
which appends ONE ``responder.rest_ended`` naming who ended it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contract.events import ResponderRestEnded, ResponderRestEndedData
from services.projections.application import ClinicalRecordAccess
from services.projections.domain.outcomes import after_hours
from services.projections.errors import NotPermitted, Refused
from services.runtime.credentials import AccessRole, Principal
from services.runtime.request_ids import RequestIds

REST_TYPES = ("responder.rest_started", "responder.rest_ended")


class AfterHoursSettings(BaseSettings):
    """The dispatcher's weekly after-hours cap (the same ``CRISIS_AFTER_HOURS_CAP_PER_WEEK``), shown here."""

    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")
    after_hours_cap_per_week: int = Field(default=10, ge=0)


def after_hours_load(offered: list[dict[str, Any]], now: datetime, zone: tzinfo, cap: int) -> list[dict[str, Any]]:
    """After-hours pages per responder in the 7 days before ``now`` (the rule the dispatcher's cap counts), the
    most first, each flagged ``at_cap`` (passed over after hours while anyone else can go) or ``near_cap`` (one
    more and they are)."""
    week = now - timedelta(days=7)
    counts: dict[str, int] = {}
    for e in offered:
        if e["occurred_at"] > week and after_hours(e["occurred_at"], zone):
            key = str(e["data"]["responder_id"])
            counts[key] = counts.get(key, 0) + 1
    rows = [
        {"responder_id": r, "pages": n, "at_cap": bool(cap) and n >= cap, "near_cap": bool(cap) and n == cap - 1}
        for r, n in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row["pages"], row["responder_id"]))


def current_rests(events: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The rests not ended and not over at ``now``: responder_id, incident_id, until, what (oldest first)."""
    rests: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        data = e["data"]
        key = (str(data["responder_id"]), str(data["incident_id"]))
        if e["type"] == "responder.rest_started":
            until = datetime.fromisoformat(str(data["until"]).replace("Z", "+00:00"))
            rests[key] = {"responder_id": key[0], "incident_id": key[1], "until": until, "what": data["what"]}
        else:
            rests.pop(key, None)
    return [r for r in rests.values() if r["until"] > now]


class RestCommands(ClinicalRecordAccess):
    def __init__(self, access: ClinicalRecordAccess) -> None:
        super().__init__(
            access.store, access.audit, access.publish, access.clock, access.targets, access.export_fhir, access.zone
        )

    async def resting(self) -> list[dict[str, Any]]:
        events = await asyncio.to_thread(self.store.events_of_types, REST_TYPES)
        staff = await asyncio.to_thread(self.staff)
        rests = current_rests(events, self.clock.now())
        for rest in rests:
            info = staff.get(UUID(rest["responder_id"]))
            rest["name"] = info.name if info else "someone not on the roster"
        return rests

    async def after_hours(self) -> tuple[int, list[dict[str, Any]]]:
        """The cap, and each responder's after-hours pages in the last 7 days (names added)."""
        cap = AfterHoursSettings().after_hours_cap_per_week
        offered = await asyncio.to_thread(self.store.events_of_types, ("dispatch.offered",))
        rows = after_hours_load(offered, self.clock.now(), self.zone, cap)
        staff = await asyncio.to_thread(self.staff)
        for row in rows:
            info = staff.get(UUID(row["responder_id"]))
            row["name"] = info.name if info else "someone not on the roster"
        return cap, rows

    async def may_end(self, who: Principal) -> bool:
        if who.role is AccessRole.DIRECTOR:
            return True
        me = (await asyncio.to_thread(self.staff)).get(who.responder_id) if who.responder_id else None
        return me is not None and me.role == "supervisor"

    async def end(self, who: Principal, responder_id: UUID, incident_id: UUID, ids: RequestIds) -> int:
        if not await self.may_end(who):
            await self._audit(who, "write:responder.rest_ended", "responder", str(responder_id), "denied")
            raise NotPermitted("only a supervisor or a director ends a rest")
        current = {(r["responder_id"], r["incident_id"]) for r in await self.resting()}
        if (str(responder_id), str(incident_id)) not in current:
            raise Refused("this rest is over already")
        data = ResponderRestEndedData(responder_id=responder_id, incident_id=incident_id, ended_by=who.subject)
        sequence = await self._append(self._event(ResponderRestEnded, data, incident_id, ids))
        await self._audit(who, "write:responder.rest_ended", "responder", str(responder_id), "recorded")
        return sequence
