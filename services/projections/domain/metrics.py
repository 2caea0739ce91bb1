"""Response-time metrics: time to acknowledge and to arrive by priority, zone and week (median, p90),
escalation rate, SLA compliance and follow-ups done on time. Pure functions over plain rows."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from services.projections.domain.progress import SlaTargets

DIMENSIONS = ("priority", "zone", "week")


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    priority: str
    zone: str | None
    status: str
    reported_at: datetime
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    escalations: int


@dataclass(frozen=True)
class TaskRow:
    due_at: datetime
    status: str
    completed_at: datetime | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def iso_week(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Group:
    key: str
    incidents: int = 0
    ack_seconds: list[float] = field(default_factory=list)
    arrive_seconds: list[float] = field(default_factory=list)
    escalated: int = 0
    sla_met: int = 0
    sla_breached: int = 0

    def summary(self) -> dict[str, Any]:
        decided = self.sla_met + self.sla_breached
        return {
            "key": self.key,
            "incidents": self.incidents,
            "acknowledge_median_s": _median(self.ack_seconds),
            "acknowledge_p90_s": percentile(self.ack_seconds, 90),
            "arrive_median_s": _median(self.arrive_seconds),
            "arrive_p90_s": percentile(self.arrive_seconds, 90),
            "escalation_rate": self.escalated / self.incidents if self.incidents else None,
            "sla_met": self.sla_met,
            "sla_breached": self.sla_breached,
            "sla_compliance": self.sla_met / decided if decided else None,
        }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _key_function(dimension: str) -> Callable[[IncidentRow], str]:
    if dimension == "priority":
        return lambda row: row.priority
    if dimension == "zone":
        return lambda row: row.zone or "unzoned"
    if dimension == "week":
        return lambda row: iso_week(row.reported_at)
    raise ValueError(f"unknown dimension {dimension!r}")


def response_metrics(
    incidents: Iterable[IncidentRow], targets: SlaTargets, now: datetime, dimension: str
) -> list[dict[str, Any]]:
    """One summary per value of ``dimension`` (priority, zone or week), sorted by key, plus 'all' last."""
    key_of = _key_function(dimension)
    groups: dict[str, Group] = {}
    overall = Group("all")
    for row in incidents:
        if row.status == "cancelled":
            continue
        for group in (groups.setdefault(key_of(row), Group(key_of(row))), overall):
            group.incidents += 1
            if row.acknowledged_at:
                group.ack_seconds.append((row.acknowledged_at - row.reported_at).total_seconds())
            if row.on_scene_at:
                group.arrive_seconds.append((row.on_scene_at - row.reported_at).total_seconds())
            if row.escalations:
                group.escalated += 1
            due = row.reported_at + targets.on_scene(row.priority)
            if row.on_scene_at is not None:
                if row.on_scene_at <= due:
                    group.sla_met += 1
                else:
                    group.sla_breached += 1
            elif (row.closed_at or now) > due:
                group.sla_breached += 1
    return [groups[k].summary() for k in sorted(groups)] + [overall.summary()]


def follow_up_metrics(tasks: Iterable[TaskRow], now: datetime) -> dict[str, Any]:
    """Follow-ups done on time (by their due time), done late, open and overdue, and the on-time rate."""
    counts: dict[str, int] = defaultdict(int)
    for task in tasks:
        if task.status == "done" and task.completed_at is not None:
            counts["done_on_time" if task.completed_at <= task.due_at else "done_late"] += 1
        elif task.status == "open":
            counts["open_overdue" if now > task.due_at else "open_not_due"] += 1
        else:
            counts["cancelled"] += 1
    finished_or_late = counts["done_on_time"] + counts["done_late"] + counts["open_overdue"]
    return {
        "done_on_time": counts["done_on_time"],
        "done_late": counts["done_late"],
        "open_overdue": counts["open_overdue"],
        "open_not_due": counts["open_not_due"],
        "cancelled": counts["cancelled"],
        "on_time_rate": counts["done_on_time"] / finished_or_late if finished_or_late else None,
    }


# ---- naloxone left behind (issue 18) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KitsLeftRow:
    """One ``naloxone.left_behind``: kits left with a person or family at an incident."""

    incident_id: str
    at: datetime
    count: int
    zone: str | None


def kits_left_behind(rows: Iterable[KitsLeftRow], zone: tzinfo) -> list[dict[str, Any]]:
    """Kits distributed (left behind) by service zone and month (the month in the organisation's ``zone``), as
    leave-behind programs report them: one row per zone and month (sorted by month, then zone), then 'all'."""
    kits: dict[tuple[str, str], int] = defaultdict(int)
    incidents: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        key = (row.at.astimezone(zone).strftime("%Y-%m"), row.zone or "unzoned")
        kits[key] += row.count
        incidents[key].add(row.incident_id)
    figures = [
        {"month": month, "zone": where, "kits": kits[month, where], "incidents": len(incidents[month, where])}
        for month, where in sorted(kits)
    ]
    every = {incident for ids in incidents.values() for incident in ids}
    return figures + [{"month": "all", "zone": "all", "kits": sum(kits.values()), "incidents": len(every)}]
