"""Outreach as a series of attempts (issue 19 section 1): the policy per rule, and what an attempt or the end of a
series does to a follow-up task (``fold_task`` in ``followups.py`` calls ``fold_outreach``).

A rule with a policy (``OutreachPolicy.attempts``) is worked attempt by attempt: after each attempt that does not
end the series, the next is due ``spacing`` later, by the next channel in ``channels`` (call, text, visit by
default); after the policy's last attempt with nobody ever reached, the follow-up desk ends the series as
``unreachable`` and the supervisors decide the next step. A person ends it otherwise: engaged in care, declined,
moved, deceased.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.projections.domain.followups import TaskState


@dataclass(frozen=True)
class OutreachPolicy:
    attempts: dict[str, int] = field(
        default_factory=lambda: {
            "post_overdose_outreach": 4,
            "caring_contact": 5,
            "follow_up_appointment": 3,
            "ed_follow_up": 3,
            "bridge_appointment": 3,
        }
    )
    """Rule -> the attempts before a series with nobody reached ends as unreachable (988 practice: 3-5)."""
    spacing: timedelta = timedelta(hours=24)
    channels: tuple[str, ...] = ("call", "text", "visit")

    def is_series(self, rule: str) -> bool:
        return rule in self.attempts

    def channel_for(self, number: int) -> str:
        """The channel suggested for attempt ``number`` (1-based), round the list."""
        return self.channels[(number - 1) % len(self.channels)]


@dataclass(frozen=True)
class AfterAttempt:
    """What the desk does after an attempt: the next one due at ``next_due_at`` by ``channel``, or end the series
    as unreachable (``unreachable``), or nothing (the series ended, or the rule is not a series)."""

    next_due_at: datetime | None = None
    channel: str | None = None
    unreachable: bool = False


def after_attempt(policy: OutreachPolicy, rule: str, made: int, reached_ever: bool, at: datetime) -> AfterAttempt:
    """After attempt ``made`` of a task of ``rule`` at ``at`` (``reached_ever``: any attempt so far reached the
    person): the next one due, or the end as unreachable, or nothing for a rule that is not a series."""
    if not policy.is_series(rule):
        return AfterAttempt()
    if made >= policy.attempts[rule] and not reached_ever:
        return AfterAttempt(unreachable=True)
    return AfterAttempt(next_due_at=at + policy.spacing, channel=policy.channel_for(made + 1))


def attempt_refusal(state: TaskState, data: Any) -> str | None:
    """Why an attempt changes nothing (its number is not the next one: a repeat, or out of order)."""
    expected = len(state.attempts) + 1
    if data.number != expected:
        return f"attempt {data.number} is not the next one (that is attempt {expected})"
    return None


def fold_outreach(state: TaskState, event: Any, note: dict[str, Any]) -> TaskState:
    """The task after ``followup.attempt_recorded`` or ``followup.series_ended`` (already checked by
    ``command_refusal``)."""
    data = event.data
    if event.type == "followup.attempt_recorded":
        attempt = {
            "number": data.number,
            "at": event.occurred_at,
            "channel": data.channel,
            "reached": data.reached,
            "offered": list(data.offered),
            "accepted": list(data.accepted),
            "safety_plan_reviewed": data.safety_plan_reviewed,
            "further_contact": data.further_contact,
            "by": data.recorded_by,
        }
        what = f"attempt {data.number} by {data.channel}: " + ("reached" if data.reached else "not reached")
        if data.accepted:
            what += "; accepted " + ", ".join(a.replace("_", " ") for a in data.accepted)
        return replace(
            state,
            attempts=(*state.attempts, attempt),
            history=(*state.history, note | {"what": what, "by": data.recorded_by}),
        )
    return replace(
        state,
        status="done",
        completed_at=event.occurred_at,
        completed_by=data.ended_by,
        outcome=data.outcome,
        history=(
            *state.history,
            note | {"what": f"series ended: {data.outcome.replace('_', ' ')}", "by": data.ended_by},
        ),
    )
