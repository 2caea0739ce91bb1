"""Paging policy and the escalation ladder: how many to page at once, how long to wait, who comes next.

Everything here is configuration with the defaults DOMAIN.md names; the ladder is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

FRONT_LINE = frozenset({"clinician", "nurse", "prescriber", "peer_coach"})
"""Roles paged as candidates. Supervisors and directors are the ladder's upper rungs, not the first call."""

Slot = Literal["primary", "peer"]
"""An incident's primary response, and the peer coach of a two-person team when policy asks for one."""


@dataclass(frozen=True)
class StepPolicy:
    pages_at_once: int
    ack_timeout: timedelta
    reminder_after: timedelta | None = None  # a second SMS while the page is still open
    voice_after: timedelta | None = None  # then a voice call


@dataclass(frozen=True)
class AlarmPolicy:
    """The NOBODY ACCEPTED alarm, once the ladder ran out: which priorities sound it, which of those also call,
    and how often it repeats until someone accepts, the incident is cancelled or a disposition is recorded."""

    repeat_every: timedelta = timedelta(seconds=120)
    priorities: frozenset[str] = frozenset({"P1", "P2"})
    voice_priorities: frozenset[str] = frozenset({"P1"})


@dataclass(frozen=True)
class ReferralAlarmPolicy:
    """A referral nobody accepted in time (issue 17): sounded first to the on-duty supervisor, then again every
    ``repeat_every`` to the supervisors and the directors, ``soundings`` times in all, until someone takes it."""

    repeat_every: timedelta = timedelta(minutes=15)
    soundings: int = 4


@dataclass(frozen=True)
class PagingPolicy:
    by_priority: dict[str, StepPolicy] = field(
        default_factory=lambda: {
            "P1": StepPolicy(2, timedelta(seconds=90), timedelta(seconds=30), timedelta(seconds=60)),
            "P2": StepPolicy(1, timedelta(minutes=5)),
            "P3": StepPolicy(1, timedelta(minutes=15)),
        }
    )
    candidate_steps: int = 2  # steps of "next best candidates" before the supervisor
    team_kinds: frozenset[str] = frozenset({"self_harm_risk"})  # clinician + peer coach
    second_acceptance: Literal["backup", "stand_down"] = "backup"
    alarm: AlarmPolicy = field(default_factory=AlarmPolicy)
    referral_alarm: ReferralAlarmPolicy = field(default_factory=ReferralAlarmPolicy)
    rest_hours: float = 8.0  # after a death or a reversal, the responders rest this long (issue 19; 0: off)

    def step(self, priority: str) -> StepPolicy:
        return self.by_priority[priority]


RUNG_ORDER = {"candidates": 0, "supervisor": 1, "director": 2}


@dataclass(frozen=True)
class Rung:
    """A position on the escalation ladder: the step number and who that step pages."""

    step: int
    rung: Literal["candidates", "supervisor", "director"]

    def key(self) -> tuple[int, int]:
        """Sorts positions from the bottom of the ladder to the top."""
        return (self.step, RUNG_ORDER[self.rung])


def next_rung(current: Rung, slot: Slot, policy: PagingPolicy, *, nobody_qualified: bool = False) -> Rung | None:
    """Where the ladder goes after ``current`` ran out without an acceptance; None at the top.

    Candidates for ``candidate_steps`` steps, then the on-call supervisor, then the clinical director.
    Nobody qualified on call skips straight to the supervisor. A team's peer slot has no rungs above
    its candidates: the primary response carries the escalation, and from the supervisor on, finding a
    peer is the supervisor's call.
    """
    if current.rung == "candidates" and not nobody_qualified and current.step < policy.candidate_steps:
        return Rung(current.step + 1, "candidates")
    if slot == "peer":
        return None
    if current.rung == "candidates":
        return Rung(current.step + 1, "supervisor")
    if current.rung == "supervisor":
        return Rung(current.step + 1, "director")
    return None
