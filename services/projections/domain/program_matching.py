"""Matching at disposition (issue 17, section 2): which programs suit what a person needs, ranked by what they can
offer now, then by distance, each with the reasons for its place (like the dispatcher's why-chosen).

Pure. ``propose_level_of_care`` reads what triage knows and proposes an ASAM level; it is only a proposal: the
clinician confirms or changes it (``referral.level_of_care_chosen`` records who). ``match_programs`` filters the
directory's listings by the level and the needs and ranks them: confirmed availability first (beds open, then an
intake slot ahead, then full, then unconfirmed, then never reported), then distance from the origin (the incident,
or the person's chosen place). A report older than the staleness rule's age is "unconfirmed", so it can never rank
among the open ones (``domain/directory.py``'s ``availability_now`` decided that before a listing gets here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

RANK_OF_STATE = {"open": 0, "intake_slot": 1, "full": 2, "unconfirmed": 3, "not_reported": 4}
STATE_WORDS = {
    "open": "beds open, confirmed",
    "intake_slot": "an intake slot ahead, confirmed",
    "full": "full",
    "unconfirmed": "availability unconfirmed (the report is too old)",
    "not_reported": "availability never reported",
}

Distance = Callable[[tuple[float, float], tuple[float, float]], float]
"""Geodesic kilometres between two (lat, lon) points."""


@dataclass(frozen=True)
class Proposal:
    """The level of care triage proposes (None: nothing to go on) and the facts it used, in words."""

    level: str | None
    basis: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchRequest:
    level: str | None = None
    medication: str | None = None
    payer: str | None = None
    populations: tuple[str, ...] = ()
    language: str | None = None
    origin: tuple[float, float] | None = None


@dataclass(frozen=True)
class Match:
    rank: int
    program_id: str
    name: str
    state: str
    availability: Any  # domain.directory.Availability
    distance_km: float | None
    reasons: tuple[str, ...] = field(default_factory=tuple)


def propose_level_of_care(kind: str | None, details: dict[str, Any], reassessed: Sequence[dict[str, Any]]) -> Proposal:
    """A proposal from what triage knows (``details``: the report's kind-specific details as JSON; ``reassessed``:
    the ``incident.reassessed`` data, oldest first).

    Rules (DOMAIN.md, ASAM): complicated withdrawal (seizure, delirium, new hallucinations) -> 4-WM; CIWA-Ar severe
    (>= 20) -> 3.7-WM; CIWA-Ar moderate (10-19) or COWS moderate (>= 13) -> 2-WM; COWS mild (5-12) -> 1-WM; an
    opioid overdose the person survived -> OTP (medication for opioid use disorder); C-SSRS high -> 4 (a licensed
    clinician evaluates now); anything else -> 1 (outpatient). A later re-assessment's score replaces the intake's.
    """
    basis: list[str] = []
    ciwa = details.get("ciwa_ar_score")
    cows = details.get("cows_score")
    risk = (details.get("c_ssrs") or {}).get("risk") if isinstance(details.get("c_ssrs"), dict) else None
    for later in reassessed:
        if later.get("instrument") == "ciwa_ar" and later.get("score") is not None:
            ciwa = later["score"]
        if later.get("instrument") == "cows" and later.get("score") is not None:
            cows = later["score"]
        if later.get("c_ssrs_risk"):
            risk = later["c_ssrs_risk"]
    risk = risk or details.get("risk_level")
    if details.get("seizure") or details.get("delirium") or details.get("hallucinations"):
        return Proposal("4-WM", ("complicated withdrawal",))
    if ciwa is not None:
        basis.append(f"CIWA-Ar {ciwa}")
        if ciwa >= 20:
            return Proposal("3.7-WM", tuple(basis))
        if ciwa >= 10:
            return Proposal("2-WM", tuple(basis))
    if cows is not None:
        basis.append(f"COWS {cows}")
        if cows >= 13:
            return Proposal("2-WM", tuple(basis))
        if cows >= 5:
            return Proposal("1-WM", tuple(basis))
    if risk == "high":
        return Proposal("4", (*basis, "C-SSRS high risk: a licensed clinician evaluates now"))
    if kind == "overdose":
        return Proposal("OTP", (*basis, "opioid overdose survived: medication for opioid use disorder"))
    if kind is None:
        return Proposal(None, tuple(basis))
    return Proposal("1", (*basis, "no withdrawal or risk score calls for more"))


def _fits(profile: dict[str, Any], wanted: MatchRequest) -> bool:
    checks = (
        (wanted.level, "levels_of_care"),
        (wanted.medication, "medications"),
        (wanted.payer, "payers"),
        (wanted.language, "languages"),
    )
    if any(value is not None and value not in profile.get(key, []) for value, key in checks):
        return False
    return all(p in profile.get("populations", []) for p in wanted.populations)


def match_programs(listings: Iterable[Any], wanted: MatchRequest, distance: Distance) -> list[Match]:
    """The listings (``directory.Listing``) that fit ``wanted``, best first, with the reasons for each rank."""
    found = []
    for listing in listings:
        entry, availability = listing.entry, listing.availability
        if entry.retired or not _fits(entry.profile, wanted):
            continue
        location = entry.profile.get("location") or {}
        km = None
        if wanted.origin is not None and "lat" in location:
            km = round(distance(wanted.origin, (location["lat"], location["lon"])), 1)
        found.append(
            (RANK_OF_STATE.get(availability.state, 9), km if km is not None else float("inf"), entry, availability, km)
        )
    found.sort(key=lambda item: (item[0], item[1], item[2].profile.get("name", "")))
    matches = []
    for rank, (_, _, entry, availability, km) in enumerate(found, start=1):
        reasons = [STATE_WORDS.get(availability.state, availability.state)]
        if availability.state == "open" and availability.beds_open is not None:
            reasons[0] = f"{availability.beds_open} bed(s) open, confirmed"
        if km is not None:
            reasons.append(f"{km} km away")
        reasons += [f"offers level {wanted.level}"] if wanted.level else []
        reasons += [f"offers {wanted.medication}"] if wanted.medication else []
        reasons += [f"accepts {wanted.payer.replace('_', ' ')}"] if wanted.payer else []
        reasons += (
            [f"serves {', '.join(p.replace('_', ' ') for p in wanted.populations)}"] if wanted.populations else []
        )
        reasons += [f"speaks {wanted.language}"] if wanted.language else []
        matches.append(
            Match(
                rank,
                entry.program_id,
                entry.profile.get("name", ""),
                availability.state,
                availability,
                km,
                tuple(reasons),
            )
        )
    return matches
