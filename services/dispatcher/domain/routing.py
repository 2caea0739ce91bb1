"""Choosing who to page. Pure: the distance function is passed in, so the rule is testable with plain values.

The walking skeleton's rule: the nearest on-call responder with the skills the incident needs, falling back to
the nearest on-call responder at all. Full routing (schedules, load, teams, escalation) is the dispatcher issue.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.dispatcher.domain.roster import Responder

DistanceKm = Callable[[tuple[float, float], tuple[float, float]], float]

# what triage says is needed -> the skill a responder must carry for it
SKILL_FOR_NEED = {"naloxone_carrier": "naloxone", "licensed_clinician": "licensed_clinician"}


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km on a sphere; a cheap bound used to pre-filter before a geodesic."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Candidate:
    responder: Responder
    distance_km: float
    skills_matched: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class Shortfall:
    reason: str


def select_nearest(
    responders: Iterable[Responder],
    location: tuple[float, float],
    needs: Iterable[str],
    distance_km: DistanceKm = haversine_km,
    prefilter: int = 10,
) -> Candidate | Shortfall:
    """The responder to page first, with why; or the reason nobody can be paged."""
    on_call = [r for r in responders if r.on_call]
    if not on_call:
        return Shortfall("nobody on call")
    required = {SKILL_FOR_NEED[n] for n in needs if n in SKILL_FOR_NEED}
    skilled = [r for r in on_call if required <= r.skills]
    pool, rule = (
        (skilled, "nearest on call with the needed skills")
        if skilled
        else (
            on_call,
            "nobody on call has the needed skills: nearest on call",
        )
    )
    nearest_by_bound = sorted(pool, key=lambda r: haversine_km((r.home_lat, r.home_lon), location))[:prefilter]
    ranked = sorted(
        ((distance_km((r.home_lat, r.home_lon), location), r) for r in nearest_by_bound),
        key=lambda pair: (pair[0], str(pair[1].responder_id)),
    )
    distance, chosen = ranked[0]
    return Candidate(
        responder=chosen,
        distance_km=round(distance, 3),
        skills_matched=tuple(sorted(required & chosen.skills)),
        rule=rule,
    )
