"""The escalation ladder's decisions, pure: whom a step pages, where the ladder goes when a step ran out, and the
NOBODY ACCEPTED alarm once it ran out at the top.

An incident has one position on the ladder (``IncidentDispatch.position``), however many slots it has (a
team's primary response and its peer coach). ``plan_step`` -> ``StepPlan`` (the routing request, the rules, how
far the pool may widen): the rung-specific routing overrides live here, not in the application.
``decide_escalation`` -> ``LadderDecision``: a slot whose step ran out catches up with the ladder, climbs it
one step (one ``Escalated`` per step, whichever slot ran out first), ends (a peer with no step left), or finds
the ladder exhausted (the primary response, at the top). ``plan_alarm`` and ``alarm_recipients`` say when the
alarm sounds and whom it tells. The application (``paging.Pager``, ``alarms.NobodyAcceptedAlarm``) applies them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.dispatcher.domain.incident import IncidentDispatch, SlotState
from services.dispatcher.domain.policy import FRONT_LINE, AlarmPolicy, PagingPolicy, Rung, next_rung
from services.dispatcher.domain.roster import ResponderView
from services.dispatcher.domain.routing import Candidate, Request, RoutingRules

LADDER_EXHAUSTED = "every step of the escalation ladder was tried without an acceptance"
PEER_STEPS_EXHAUSTED = "no peer coach accepted at any candidate step: the team goes on without one"
NO_PEER_TO_PAGE = "no peer coach could be paged: the team goes on without one"
NOBODY_PAGED = ("nobody_to_page", "nobody_qualified")  # why a slot climbs when its step paged nobody

_SHORTFALL_WORDS = {
    "nobody_on_call": "nobody is on call",
    "all_busy": "everyone on call is busy",
    "locations_stale": "responders' last known locations are stale",
    "outside_radius": "nobody on call is within reach",
    "nobody_with_skill": "nobody on call has the needed skills",
    "all_unreachable": "everyone on call is unreachable (opted out or off)",
    "everyone_qualified_already_paged": "everyone qualified on call was already paged for this incident",
    "no_naloxone_in_stock": "no naloxone in stock: the carriers on call have no usable kit",
}
_RUNG_WORDS = {"candidates": "", "supervisor": " (supervisor rung)", "director": " (clinical director rung)"}


@dataclass(frozen=True)
class StepPlan:
    """Whom one step of a slot asks for, and from which pool."""

    request: Request
    rules: RoutingRules
    rule: str  # the policy rule, quoted in each page's reason
    anywhere_if_zone_empty: bool  # upper rungs: anyone on call when nobody is on call in the zone
    any_director: bool  # the top rung: every active director when none is on call


class Move(StrEnum):
    CATCH_UP = "catch_up"  # the ladder climbed while this slot waited: ask it where the ladder is, no new event
    CLIMB = "climb"  # the incident goes one step up: one Escalated
    SLOT_ENDS = "slot_ends"  # a team's peer has no step left: the team goes on without one
    EXHAUSTED = "exhausted"  # the primary response ran out at the top: every step was tried


@dataclass(frozen=True)
class LadderDecision:
    """Where a slot goes when its step ran out: ``move`` (to ``to``, for catch-up and climb) and why."""

    move: Move
    to: Rung | None
    reason: str


def plan_step(
    incident: IncidentDispatch,
    slot: str,
    at: Rung,
    policy: PagingPolicy,
    rules: RoutingRules,
    now: datetime,
    *,
    count: int | None = None,
) -> StepPlan:
    """The slot's step at ladder position ``at``: front-line candidates for the primary response (``count``
    replacements, if given), a peer coach for a team, else the rung's role however far away or busy (radius and
    load off)."""
    step_policy = policy.step(incident.priority)
    location, exclude = (incident.lat, incident.lon), incident.tried()
    if at.rung == "candidates" and slot == "primary":
        request = Request(location, now, count or step_policy.pages_at_once, tuple(incident.needs), FRONT_LINE, exclude)
        return StepPlan(request, rules, f"{incident.priority}: best {step_policy.pages_at_once} on call", False, False)
    if at.rung == "candidates":
        needs = ("naloxone_carrier",) if incident.kind == "overdose" else ()
        request = Request(location, now, 1, needs, frozenset({"peer_coach"}), exclude)
        return StepPlan(request, rules, "two-person team: nearest peer coach on call", False, False)
    request = Request(location, now, 1, (), frozenset({at.rung}), exclude)
    unlimited = RoutingRules(rules.stale_after, float("inf"), busy_at_load=10**6, measured=rules.measured)
    who = "supervisor" if at.rung == "supervisor" else "clinical director"
    return StepPlan(request, unlimited, f"escalation: the on-call {who}", True, at.rung == "director")


def decide_escalation(position: Rung, state: SlotState, policy: PagingPolicy, reason: str) -> LadderDecision:
    """The slot's step ran out without an acceptance (for ``reason``), with the incident at ``position``.

    A slot behind the ladder catches up with it (a peer only while the ladder is on its candidates: from the
    supervisor on, finding a peer is the supervisor's call). A slot at the ladder's position climbs it: the next
    rung, or, at the top, exhausted (the primary response) or ended (a peer). Only the primary response climbs
    over a step that paged nobody; a peer whose step found nobody to page ends there.
    """
    at = Rung(state.step, state.rung)  # type: ignore[arg-type]
    if state.name == "peer" and reason in NOBODY_PAGED and at.key() >= position.key():
        return LadderDecision(Move.SLOT_ENDS, None, NO_PEER_TO_PAGE)
    if at.key() < position.key():
        if state.name == "peer" and position.rung != "candidates":
            return LadderDecision(Move.SLOT_ENDS, None, PEER_STEPS_EXHAUSTED)
        return LadderDecision(Move.CATCH_UP, position, reason)
    following = next_rung(position, state.name, policy, nobody_qualified=reason == "nobody_qualified")  # type: ignore[arg-type]
    if following is not None:
        return LadderDecision(Move.CLIMB, following, reason)
    if state.name == "peer":
        return LadderDecision(Move.SLOT_ENDS, None, PEER_STEPS_EXHAUSTED)
    return LadderDecision(Move.EXHAUSTED, None, LADDER_EXHAUSTED)


def page_reason(
    candidate: Candidate, plan: StepPlan, slot: str, at: Rung, passed_over_resting: int = 0, passed_over_capped: int = 0
) -> dict[str, Any]:
    """Why ``candidate`` is paged: the ``PageReason`` of the offer, as the stored event keeps it; with who was passed
    over for resting after a hard call, or that this one is resting and nobody else could be paged (issue 19)."""
    rest = {"resting": True} if candidate.resting else {}
    rest |= {"after_hours_capped": True} if candidate.capped else {}
    rest |= {"passed_over_resting": passed_over_resting} if passed_over_resting else {}
    rest |= {"passed_over_capped": passed_over_capped} if passed_over_capped else {}
    return rest | {
        "on_call": True,
        "skills_matched": list(candidate.skills_matched),
        "distance_km": candidate.distance_km,
        "load": candidate.responder.load,
        "rule": plan.rule,
        "rung": at.rung,
        "team_role": {"supervisor": "supervisor", "director": "director"}.get(
            at.rung, "peer" if slot == "peer" else "primary"
        ),
        "location_source": candidate.location_source,
        "location_age_minutes": candidate.location_age_minutes,
    }


def reason_nobody_was_paged(shortfalls: Sequence[str]) -> str:
    """Why the ladder climbs when a step paged nobody: nobody qualified skips the remaining candidate steps."""
    unqualified = {"nobody_with_skill", "no_naloxone_in_stock"}  # a carrier without a kit is not qualified
    return "nobody_qualified" if unqualified.intersection(shortfalls) else "nobody_to_page"


def shortfall_sentence(shortfalls: Sequence[str], rung: str) -> str:
    """Why a step paged nobody, for the timeline."""
    return ("; ".join(_SHORTFALL_WORDS.get(s, s) for s in shortfalls) or "nobody could be paged") + _RUNG_WORDS[rung]


# ---- nobody accepted ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmPlan:
    """One sounding of the NOBODY ACCEPTED alarm."""

    repeat: int
    voice: bool
    minutes_since_report: int
    next_at: datetime


def plan_alarm(
    priority: str, reported_at: datetime, repeats: int, policy: AlarmPolicy, now: datetime
) -> AlarmPlan | None:
    """The alarm for an incident whose ladder ran out (sounded ``repeats`` times so far), or None for a priority
    that does not sound it."""
    if priority not in policy.priorities:
        return None
    minutes = max(0, math.floor((now - reported_at) / timedelta(minutes=1)))
    return AlarmPlan(repeats + 1, priority in policy.voice_priorities, minutes, now + policy.repeat_every)


def alarm_recipients(
    on_call_in_zone: Iterable[ResponderView],
    on_call_anywhere: Iterable[ResponderView],
    every_director: Iterable[ResponderView],
) -> list[ResponderView]:
    """Whom NOBODY ACCEPTED tells: the supervisors on call for the incident's zone (else those on call anywhere),
    and the clinical directors on call (else every active director). Active people only, each once."""
    in_zone = [v for v in on_call_in_zone if v.active]
    anywhere = [v for v in on_call_anywhere if v.active]
    supervisors = [v for v in in_zone if v.role == "supervisor"] or [v for v in anywhere if v.role == "supervisor"]
    directors = [v for v in anywhere if v.role == "director"] or [
        v for v in every_director if v.role == "director" and v.active
    ]
    chosen: dict[Any, ResponderView] = {}
    for view in (*supervisors, *directors):
        chosen.setdefault(view.responder_id, view)
    return list(chosen.values())
