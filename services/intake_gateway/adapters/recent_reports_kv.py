"""The reports of the last minutes, for the possible-duplicate rule: the ``RecentReports`` port on a KV bucket.

``intake_recent_reports`` (entries expire after a day). Each instance mirrors the bucket in memory through a KV
watcher, so it sees other instances' reports, and a restarted gateway starts with the reports made before the
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from services.intake_gateway.domain.duplicates import DuplicateRule, RecentReport
from services.runtime.clock import Clock
from services.runtime.kv_buckets import ensure_bucket

log = logging.getLogger(__name__)

RECENT_BUCKET = "intake_recent_reports"
RECENT_TTL_SECONDS = 24 * 3600.0  # only bounds the bucket: the duplicate window (at most 12 h) is applied on read


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
