"""The escalation ladder's decisions, pure: whom a slot's step pages, and where the ladder goes when it ran out.

``plan_step`` -> ``StepPlan`` (the routing request, the rules, how far the pool may widen): the rung-specific
routing overrides live here, not in the application. ``decide_escalation`` -> ``LadderDecision`` (climb to a
rung, or exhausted). The application (``paging.Pager``) applies them to the incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.dispatcher.domain.incident import IncidentDispatch, SlotState
from services.dispatcher.domain.policy import FRONT_LINE, PagingPolicy, Rung, next_rung
from services.dispatcher.domain.routing import Candidate, Request, RoutingRules

LADDER_EXHAUSTED = "every step of the escalation ladder was tried without an acceptance"

_SHORTFALL_WORDS = {
    "nobody_on_call": "nobody is on call",
    "all_busy": "everyone on call is busy",
    "locations_stale": "responders' last known locations are stale",
    "outside_radius": "nobody on call is within reach",
    "nobody_with_skill": "nobody on call has the needed skills",
    "all_unreachable": "everyone on call is unreachable (opted out or off)",
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


@dataclass(frozen=True)
class LadderDecision:
    """Where a slot goes when its step ran out: ``climb_to`` a rung (with ``reason``), or None: exhausted."""

    climb_to: Rung | None
    reason: str


def plan_step(
    incident: IncidentDispatch,
    state: SlotState,
    policy: PagingPolicy,
    rules: RoutingRules,
    now: datetime,
    *,
    count: int | None = None,
) -> StepPlan:
    """The slot's current step: front-line candidates for the primary response (``count`` replacements, if
    given), a peer coach for a team, else the rung's role however far away or busy (radius and load off)."""
    step_policy = policy.step(incident.priority)
    location, exclude = (incident.lat, incident.lon), incident.tried()
    if state.rung == "candidates" and state.name == "primary":
        request = Request(location, now, count or step_policy.pages_at_once, tuple(incident.needs), FRONT_LINE, exclude)
        return StepPlan(request, rules, f"{incident.priority}: best {step_policy.pages_at_once} on call", False, False)
    if state.rung == "candidates":
        needs = ("naloxone_carrier",) if incident.kind == "overdose" else ()
        request = Request(location, now, 1, needs, frozenset({"peer_coach"}), exclude)
        return StepPlan(request, rules, "two-person team: nearest peer coach on call", False, False)
    request = Request(location, now, 1, (), frozenset({state.rung}), exclude)
    unlimited = RoutingRules(rules.stale_after, float("inf"), busy_at_load=10**6, measured=rules.measured)
    who = "supervisor" if state.rung == "supervisor" else "clinical director"
    return StepPlan(request, unlimited, f"escalation: the on-call {who}", True, state.rung == "director")


def decide_escalation(state: SlotState, policy: PagingPolicy, reason: str) -> LadderDecision:
    """The slot's step ran out without an acceptance (for ``reason``): the next rung, or exhausted at the top."""
    following = next_rung(
        Rung(state.step, state.rung),  # type: ignore[arg-type]
        state.name,  # type: ignore[arg-type]
        policy,
        nobody_qualified=reason == "nobody_qualified",
    )
    return LadderDecision(following, reason) if following is not None else LadderDecision(None, LADDER_EXHAUSTED)


def page_reason(candidate: Candidate, plan: StepPlan, state: SlotState) -> dict[str, Any]:
    """Why ``candidate`` is paged: the ``PageReason`` of the offer, as the stored event keeps it."""
    return {
        "on_call": True,
        "skills_matched": list(candidate.skills_matched),
        "distance_km": candidate.distance_km,
        "load": candidate.responder.load,
        "rule": plan.rule,
        "rung": state.rung,
        "team_role": {"supervisor": "supervisor", "director": "director"}.get(
            state.rung, "peer" if state.name == "peer" else "primary"
        ),
        "location_source": candidate.location_source,
        "location_age_minutes": candidate.location_age_minutes,
    }


def reason_nobody_was_paged(shortfalls: Sequence[str]) -> str:
    """Why the ladder climbs when a step paged nobody: nobody qualified skips the remaining candidate steps."""
    return "nobody_qualified" if "nobody_with_skill" in shortfalls else "nobody_to_page"


def shortfall_sentence(shortfalls: Sequence[str], rung: str) -> str:
    """Why a step paged nobody, for the timeline."""
    return ("; ".join(_SHORTFALL_WORDS.get(s, s) for s in shortfalls) or "nobody could be paged") + _RUNG_WORDS[rung]
