"""The field's rules: how often a responder on scene checks in, what a missed check-in climbs through, which
incidents need two responders, and how late is "late" against an ETA or for EMS. Pure: settings in, decisions out.

A check-in runs from ``ARRIVED`` (or an ``OK``) for the interval the policy gives the incident's kind and priority.
``prompt_before`` it ends, the responder is asked "Reply OK <code> by <time>". Once it ended unanswered, the steps
climb at their offsets after the due time, each fired once: ``reminder`` (a text), ``call`` (a voice call), then
``supervisor_paged`` (the supervisor and the team partner, with the last known location), then ``call_911`` (the
supervisor is told to call 911).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CHECK_IN_STEPS = ("reminder", "call", "supervisor_paged", "call_911")
"""The steps of a missed check-in, in the order they fire."""


@dataclass(frozen=True)
class CheckInPolicy:
    minutes: int = 15
    minutes_by: Mapping[str, int] = field(default_factory=dict)
    """Overrides of ``minutes``: by ``kind:priority`` (``self_harm_risk:P1``), then ``kind``, then ``priority``."""
    prompt_before: timedelta = timedelta(minutes=2)
    step_after: tuple[timedelta, ...] = (
        timedelta(0),
        timedelta(minutes=2),
        timedelta(minutes=5),
        timedelta(minutes=10),
    )
    """How long after the due time each of ``CHECK_IN_STEPS`` fires (non-decreasing)."""
    minute: timedelta = timedelta(minutes=1)
    """How long one configured minute of the interval lasts: a minute, except in a drill or the chaos bench."""

    def interval(self, kind: str, priority: str) -> int:
        """The check-in interval in minutes for an incident of ``kind`` and ``priority``."""
        for key in (f"{kind}:{priority}", kind, priority):
            if key in self.minutes_by:
                return self.minutes_by[key]
        return self.minutes

    def due_at(self, kind: str, priority: str, started_at: datetime) -> datetime:
        return started_at + self.minute * self.interval(kind, priority)

    def prompt_at(self, due_at: datetime, started_at: datetime) -> datetime | None:
        """When to ask "Reply OK by ...": ``prompt_before`` the due time, or never when that is not after the start."""
        at = due_at - self.prompt_before
        return at if at > started_at else None

    def step_at(self, due_at: datetime, index: int) -> datetime | None:
        """When step ``index`` of a check-in due at ``due_at`` fires; None after the last step."""
        return due_at + self.step_after[index] if index < len(CHECK_IN_STEPS) else None


@dataclass(frozen=True)
class PairsOnly:
    """Incidents a responder must not enter alone: rules of a kind (``overdose``) or a kind and triage risk level
    (``self_harm_risk:high``)."""

    rules: tuple[str, ...] = ()

    def rule_for(self, kind: str, risk_level: str | None) -> str | None:
        """The rule that makes this incident pairs-only, as configured; None when none does."""
        for rule in self.rules:
            rule_kind, _, rule_risk = rule.partition(":")
            if rule_kind == kind and (not rule_risk or rule_risk == (risk_level or "")):
                return rule
        return None


@dataclass(frozen=True)
class FieldPolicy:
    check_in: CheckInPolicy = field(default_factory=CheckInPolicy)
    pairs_only: PairsOnly = field(default_factory=PairsOnly)
    eta_grace: timedelta = timedelta(minutes=10)
    ems_confirm: timedelta = timedelta(minutes=20)
    duress_words: tuple[str, ...] = ()


def parse_minutes_by(text: str) -> dict[str, int]:
    """``"self_harm_risk:P1=10, overdose=10, P3=30"`` -> {key: minutes}. Raises ValueError naming the bad part."""
    minutes: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip().isdigit() or not 1 <= int(value) <= 240:
            raise ValueError(f"{part!r}: expected <kind>[:<priority>]=<minutes 1-240> or <priority>=<minutes>")
        minutes[key] = int(value)
    return minutes


def parse_pairs_only(text: str) -> tuple[str, ...]:
    """``"self_harm_risk:high, overdose"`` -> the rules, stripped; an empty text means none."""
    rules = tuple(part.strip() for part in text.split(",") if part.strip())
    for rule in rules:
        kind, _, risk = rule.partition(":")
        if not kind or ":" in risk or not all(c.isalnum() or c == "_" for c in kind + risk):
            raise ValueError(f"{rule!r}: expected <kind> or <kind>:<risk level>")
    return rules


def parse_duress_words(text: str) -> tuple[str, ...]:
    """``"pineapple, blue sky"`` -> the words (or phrases); empty: duress words are off."""
    return tuple(word for word in (" ".join(part.split()) for part in text.split(",")) if word)


def step_offsets(reminder: int, call: int, supervisor: int, call_911: int) -> tuple[timedelta, ...]:
    """The step offsets (minutes after the due time), checked to be in order."""
    minutes = (reminder, call, supervisor, call_911)
    if list(minutes) != sorted(minutes) or minutes[0] < 0:
        raise ValueError("the check-in steps must come in order: reminder <= call <= supervisor <= 911")
    return tuple(timedelta(minutes=m) for m in minutes)
