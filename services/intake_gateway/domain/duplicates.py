"""Possible duplicate reports: same kind, close by, shortly before. Linked and shown, never suppressed
(two people can overdose in the same room). Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from services.intake_gateway.domain.places import distance_m

METRES_PER_DEGREE = 111_000.0  # of latitude, slightly less than the true ~111,195: the box errs on the wide side


@dataclass(frozen=True)
class RecentReport:
    incident_id: UUID
    kind: str
    lat: float
    lon: float
    reported_at: datetime
    short_code: str


@dataclass(frozen=True)
class DuplicateRule:
    radius_m: float = 200.0
    window: timedelta = timedelta(minutes=10)
    max_links: int = 20  # the nearest ones: an event and an answer must stay small, even at a mass gathering


@dataclass(frozen=True)
class PossibleDuplicate:
    incident_id: UUID
    short_code: str
    distance_m: float
    minutes_before: float


def possible_duplicates(
    kind: str,
    lat: float,
    lon: float,
    at: datetime,
    recent: Iterable[RecentReport],
    rule: DuplicateRule,
    *,
    excluding: UUID | None = None,
) -> list[PossibleDuplicate]:
    """Earlier reports of ``kind`` within ``rule.radius_m`` of the point and ``rule.window`` before ``at``,
    nearest first, at most ``rule.max_links``. Both bounds are inclusive. The report of incident ``excluding``
    (the one being made, held already) is never its own duplicate."""
    found = []
    # a cheap box around the point first: the haversine only for the few inside it
    lat_margin = rule.radius_m / METRES_PER_DEGREE
    # the box's most poleward edge has the narrowest degrees of longitude
    lon_margin = lat_margin / max(0.01, math.cos(math.radians(min(90.0, abs(lat) + lat_margin))))
    for report in recent:
        if abs(report.lat - lat) > lat_margin or abs(report.lon - lon) > lon_margin:
            continue
        age = at - report.reported_at
        # a report slightly "after" this one (another instance's clock) is as much a duplicate as one before
        if report.kind != kind or abs(age) > rule.window or report.incident_id == excluding:
            continue
        distance = distance_m((lat, lon), (report.lat, report.lon))
        if distance <= rule.radius_m:
            found.append(
                PossibleDuplicate(
                    report.incident_id, report.short_code, round(distance, 1), max(0.0, age.total_seconds() / 60)
                )
            )
    return sorted(found, key=lambda d: (d.distance_m, d.minutes_before))[: rule.max_links]
