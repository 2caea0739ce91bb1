"""Which incidents are open and who is related to each: the ``IncidentStates`` port on a JetStream KV bucket.

``intake_incidents`` (no TTL; one small entry per incident, shared by every gateway instance): open,
cancelled or completed, who reported it and which responders were paged for it (``domain.access`` decides
from these who may change it). The gateway writes it on each report and cancellation (so a caller's next
update sees its own write), and ``IncidentStateFollower`` (``incident_state_follower.py``) writes it too,
from the stream. The bucket only ever moves open -> closed and only adds relations, so the two writers cannot
undo each other.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal
from uuid import UUID

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.intake_gateway.domain.access import IncidentRelations
from services.intake_gateway.incident_reads import IncidentState
from services.intake_gateway.refusals import IncidentStatus
from services.runtime.kv_buckets import ensure_bucket

INCIDENTS_BUCKET = "intake_incidents"


class KvIncidentStates:
    """One entry per incident: ``{"status", "kind", "at", "reported_by", "paged": [responder ids]}``."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, *, replicas: int) -> KvIncidentStates:
        return cls(await ensure_bucket(js, INCIDENTS_BUCKET, ttl=None, replicas=replicas))

    async def opened(self, incident_id: UUID, kind: str, at: datetime, reported_by: str | None = None) -> None:
        async def open_it(current: dict | None) -> dict | None:
            if current is None:
                return {"status": "open", "kind": kind, "at": at.isoformat(), "reported_by": reported_by, "paged": []}
            if current.get("kind") is None:  # created by a page or a close that came first: fill in the report
                return current | {"kind": kind, "at": at.isoformat(), "reported_by": reported_by}
            return None  # already known: unchanged

        await self._change(incident_id, open_it)

    async def status(self, incident_id: UUID) -> IncidentStatus | None:
        entry = await self._get(incident_id)
        return None if entry is None or entry.get("kind") is None else entry["status"]

    async def relations(self, incident_id: UUID) -> tuple[IncidentStatus, IncidentRelations] | None:
        """The incident's status and who is related to it; None when the gateway never saw its report."""
        entry = await self._get(incident_id)
        if entry is None or entry.get("kind") is None:
            return None
        return entry["status"], _relations(entry)

    async def state(self, incident_id: UUID) -> IncidentState | None:
        """The entry as ``IncidentReads`` shows it; None when the gateway never saw the incident's report."""
        entry = await self._get(incident_id)
        if entry is None or entry.get("kind") is None:
            return None
        closed_at = entry.get("closed_at")
        return IncidentState(
            incident_id=incident_id,
            kind=entry["kind"],
            status=entry["status"],
            reported_at=datetime.fromisoformat(entry["at"]),
            closed_at=datetime.fromisoformat(closed_at) if closed_at else None,
            relations=_relations(entry),
        )

    async def paged(self, incident_id: UUID, responder_id: UUID) -> None:
        """Record that ``responder_id`` was paged for the incident (they may then change it)."""

        async def add(current: dict | None) -> dict | None:
            current = current or {"status": "open", "kind": None, "at": None, "reported_by": None, "paged": []}
            if str(responder_id) in current.get("paged", []):
                return None
            return current | {"paged": [*current.get("paged", []), str(responder_id)]}

        await self._change(incident_id, add)

    async def close(self, incident_id: UUID, status: Literal["cancelled", "completed"], at: datetime) -> None:
        async def close_it(current: dict | None) -> dict | None:
            if current is None:
                return {"status": status, "kind": None, "at": at.isoformat(), "closed_at": at.isoformat(), "paged": []}
            if current["status"] != "open":
                return None
            return current | {"status": status, "closed_at": at.isoformat()}

        await self._change(incident_id, close_it)

    async def _get(self, incident_id: UUID) -> dict | None:
        try:
            entry = await self.kv.get(str(incident_id))
        except KeyNotFoundError:
            return None
        return json.loads(entry.value)

    async def _change(self, incident_id: UUID, change) -> None:  # noqa: ANN001 - async (dict | None) -> dict | None
        """Compare-and-set ``change`` of the entry (None from ``change``: leave it). The bucket only ever moves
        open -> closed and only adds relations, so concurrent writers cannot undo each other."""
        key = str(incident_id)
        for _ in range(10):  # only a concurrent writer makes it go round again
            try:
                entry = await self.kv.get(key)
                current, revision = json.loads(entry.value), entry.revision
            except KeyNotFoundError:
                current, revision = None, None
            wanted = await change(current)
            if wanted is None:
                return
            value = json.dumps(wanted).encode()
            try:
                if revision is None:
                    await self.kv.create(key, value)
                else:
                    await self.kv.update(key, value, last=revision)
                return
            except KeyWrongLastSequenceError:
                continue
        raise RuntimeError(f"could not change incident {incident_id}: too many concurrent writes")


def _relations(entry: dict) -> IncidentRelations:
    paged = frozenset(UUID(p) for p in entry.get("paged", []))
    return IncidentRelations(reported_by=entry.get("reported_by"), paged=paged)
