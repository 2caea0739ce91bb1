"""The gateway's durable view of incidents, in JetStream KV buckets shared by every gateway instance.

``intake_incidents`` (no TTL; one small entry per incident): open, cancelled or completed, who reported it
and which responders were paged for it (``domain.access`` decides from these who may change it). The
gateway writes it on each report and cancellation (so a caller's next update sees its own write), and
``IncidentStateFollower``, a durable consumer of ``incident.reported``, ``incident.cancelled``,
``dispatch.completed`` and ``dispatch.offered`` on the CRISIS stream, writes it too: it closes incidents the
dispatcher completed, records who was paged, and repairs the bucket if a gateway crashed between appending
an event and writing the bucket. The bucket only ever moves open -> closed and only adds relations, so the
two writers cannot undo each other.

``intake_recent_reports`` (entries expire after a day): the reports of the last minutes for the
possible-duplicate rule. Each instance mirrors the bucket in memory through a KV watcher, so it sees
other instances' reports, and a restarted gateway starts with the reports made before the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from services.contract.events import (
    SUBJECT_PREFIX,
    DispatchCompleted,
    DispatchOffered,
    IncidentCancelled,
    IncidentReported,
    UnreadableMessage,
    decode_event,
)
from services.intake_gateway.adapters.idempotency_kv import ensure_bucket
from services.intake_gateway.application import IncidentStatus
from services.intake_gateway.domain.access import IncidentRelations
from services.intake_gateway.domain.duplicates import DuplicateRule, RecentReport
from services.runtime.clock import Clock
from services.runtime.stream import STREAM_NAME

log = logging.getLogger(__name__)

INCIDENTS_BUCKET = "intake_incidents"
RECENT_BUCKET = "intake_recent_reports"
RECENT_TTL_SECONDS = 24 * 3600.0  # only bounds the bucket: the duplicate window (at most 12 h) is applied on read
FOLLOWER_DURABLE = "intake_gateway_incident_state"


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
        paged = frozenset(UUID(p) for p in entry.get("paged", []))
        return entry["status"], IncidentRelations(reported_by=entry.get("reported_by"), paged=paged)

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


class KvRecentReports:
    """The possible-duplicate index: an in-memory mirror of ``intake_recent_reports``, in grid cells per kind
    (about 1 km), so a report is compared with its neighbours only, not with every recent report."""

    CELL_DEGREES = 0.01
    PRUNE_EVERY = timedelta(minutes=1)

    def __init__(self, kv: KeyValue, clock: Clock, rule: DuplicateRule) -> None:
        self.kv = kv
        self.clock = clock
        self.rule = rule
        self.keep = 2 * rule.window  # twice: a report "after" this one (another instance's clock) counts too
        self._reports: dict[UUID, RecentReport] = {}
        self._cells: dict[tuple[str, int, int], dict[UUID, RecentReport]] = {}
        self._pruned_at: datetime | None = None
        self._watcher = None
        self._task: asyncio.Task | None = None

    @classmethod
    async def open(cls, js: JetStreamContext, clock: Clock, *, rule: DuplicateRule, replicas: int) -> KvRecentReports:
        kv = await ensure_bucket(js, RECENT_BUCKET, ttl=RECENT_TTL_SECONDS, replicas=replicas)
        recent = cls(kv, clock, rule)
        await recent._start()
        return recent

    def _cell(self, kind: str, lat: float, lon: float) -> tuple[str, int, int]:
        return kind, math.floor(lat / self.CELL_DEGREES), math.floor(lon / self.CELL_DEGREES)

    def _add(self, report: RecentReport) -> None:
        self._remove(report.incident_id)
        self._reports[report.incident_id] = report
        self._cells.setdefault(self._cell(report.kind, report.lat, report.lon), {})[report.incident_id] = report

    def _remove(self, incident_id: UUID) -> None:
        old = self._reports.pop(incident_id, None)
        if old is not None:
            cell = self._cell(old.kind, old.lat, old.lon)
            members = self._cells.get(cell, {})
            members.pop(incident_id, None)
            if not members:
                self._cells.pop(cell, None)

    async def _start(self) -> None:
        self._watcher = await self.kv.watchall()
        # the watcher first replays every live entry, then sends None: after that the mirror is complete
        while (entry := await self._watcher.updates(timeout=30)) is not None:
            self._apply(entry)
        self._task = asyncio.create_task(self._follow(), name="intake-recent-reports")

    async def _follow(self) -> None:
        async for entry in self._watcher:
            if entry is not None:
                self._apply(entry)

    def _apply(self, entry: KeyValue.Entry) -> None:
        try:
            incident_id = UUID(entry.key)
        except ValueError:
            return
        if entry.operation in (KV_DEL, KV_PURGE):
            self._remove(incident_id)
            return
        try:
            raw = json.loads(entry.value)
            report = RecentReport(
                incident_id,
                raw["kind"],
                float(raw["lat"]),
                float(raw["lon"]),
                datetime.fromisoformat(raw["at"]),
                raw["short_code"],
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignored an unreadable entry in %s", RECENT_BUCKET)
            return
        self._add(report)

    def near(self, kind: str, lat: float, lon: float) -> Iterable[RecentReport]:
        self._prune()
        _, row, column = self._cell(kind, lat, lon)
        rows = math.ceil(self.rule.radius_m / 111_000.0 / self.CELL_DEGREES)
        stretch = max(0.01, math.cos(math.radians(min(89.0, abs(lat) + rows * self.CELL_DEGREES))))
        columns = math.ceil(rows / stretch)
        found: list[RecentReport] = []
        for r in range(row - rows, row + rows + 1):
            for c in range(column - columns, column + columns + 1):
                found.extend(self._cells.get((kind, r, c), {}).values())
        return found

    def _prune(self) -> None:
        now = self.clock.now()
        if self._pruned_at is not None and abs(now - self._pruned_at) < self.PRUNE_EVERY:
            return
        self._pruned_at = now
        horizon = now - self.keep
        for incident_id in [i for i, r in self._reports.items() if r.reported_at < horizon]:
            self._remove(incident_id)

    def hold(self, report: RecentReport) -> None:
        self._add(report)

    def drop(self, incident_id: UUID) -> None:
        self._remove(incident_id)

    async def record(self, report: RecentReport) -> None:
        value = {
            "kind": report.kind,
            "lat": report.lat,
            "lon": report.lon,
            "at": report.reported_at.isoformat(),
            "short_code": report.short_code,
        }
        await self.kv.put(str(report.incident_id), json.dumps(value).encode())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()


class IncidentStateFollower:
    """Keeps ``intake_incidents`` in step with the stream: reports open, cancellations and completions close."""

    SUBJECTS = [
        f"{SUBJECT_PREFIX}.{IncidentReported.TYPE}",
        f"{SUBJECT_PREFIX}.{IncidentCancelled.TYPE}",
        f"{SUBJECT_PREFIX}.{DispatchCompleted.TYPE}",
        f"{SUBJECT_PREFIX}.{DispatchOffered.TYPE}",  # who was paged may change the incident
    ]

    def __init__(self, js: JetStreamContext, states: KvIncidentStates, durable: str = FOLLOWER_DURABLE) -> None:
        self.js = js
        self.states = states
        self.durable = durable
        self._subscription = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=self.SUBJECTS,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=-1,
        )
        try:
            current = await self.js.consumer_info(STREAM_NAME, self.durable)
        except NotFoundError:
            current = None
        if current is not None and sorted(current.config.filter_subjects or []) != sorted(self.SUBJECTS):
            # an older version's durable reads fewer subjects: read the stream again from the start (every
            # change here is idempotent), so relations recorded before the upgrade are known too
            log.info("incident-state follower: subjects changed, re-reading the stream")
            await self.js.delete_consumer(STREAM_NAME, self.durable)
        await self.js.add_consumer(STREAM_NAME, config)
        self._subscription = await self.js.pull_subscribe_bind(durable=self.durable, stream=STREAM_NAME)
        self._task = asyncio.create_task(self._run(), name="intake-incident-state")

    async def _run(self) -> None:
        # a flag as well as cancellation: nats-py's fetch can turn a cancellation into a TimeoutError
        while not self._stopping:
            try:
                messages = await self._subscription.fetch(batch=64, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as exc:  # noqa: BLE001 - a lost connection: nats-py reconnects, we wait and retry
                if self._stopping:
                    return
                log.warning("incident-state follower: fetch failed (%s)", type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for message in messages:
                try:
                    await self._handle(message)
                except Exception as exc:  # noqa: BLE001 - an ack lost with the connection: redelivered later
                    log.warning("incident-state follower: could not settle a message (%s)", type(exc).__name__)

    async def _handle(self, message) -> None:  # noqa: ANN001 - a nats-py JetStream message
        try:
            event = decode_event(message.data)
        except UnreadableMessage:
            await message.ack()  # the other services dead-letter it; there is nothing here to learn from it
            return
        try:
            if isinstance(event, IncidentReported):
                data = event.data
                await self.states.opened(data.incident_id, data.kind.value, event.occurred_at, data.reported_by)
            elif isinstance(event, DispatchOffered):
                await self.states.paged(event.data.incident_id, event.data.responder_id)
            elif isinstance(event, IncidentCancelled):
                await self.states.close(event.data.incident_id, "cancelled", event.occurred_at)
            elif isinstance(event, DispatchCompleted) and event.data.closes_incident:
                await self.states.close(event.data.incident_id, "completed", event.occurred_at)
        except Exception as exc:  # noqa: BLE001 - retried: the message stays until the bucket has it
            log.warning(
                "incident-state follower: seq %s failed (%s)", message.metadata.sequence.stream, type(exc).__name__
            )
            await message.nak(delay=1)
            return
        await message.ack()

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)
        if self._subscription is not None:
            # before the connection drains: a pull subscription left open makes drain wait its full timeout
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
