"""A referral nobody accepted in time (issue 17): the people paged about it, sounding by sounding, until someone
takes it or it stops mattering. One small aggregate per referral, so a repeat of ``referral.acceptance_overdue``
(a redelivery, a re-publish after the stream's duplicate window, a second instance) never opens a second one.

Its next sounding is a deadline in the store, fired by the dispatcher's ticker like a page's, so a restart
loses none. The decisions (whom each sounding tells, when the next one is) are ``plan_referral_sounding``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.dispatcher.domain.ladder import alarm_recipients
from services.dispatcher.domain.policy import ReferralAlarmPolicy
from services.dispatcher.domain.roster import ResponderView

_NAMESPACE = UUID("6f1d3a52-9c1e-4b8e-a0d4-2f6c0e7b1a17")


class ReferralAlert(Aggregate):
    @staticmethod
    def create_id(referral_id: UUID) -> UUID:
        return uuid5(_NAMESPACE, f"referral-alert/{referral_id}")

    @event("Opened")
    def __init__(
        self,
        referral_id: UUID,
        incident_id: UUID | None = None,
        code: str | None = None,
        declined: int = 0,
        unanswered: int = 0,
        kind: str = "referral",
    ) -> None:
        """``kind`` "caring": a reply to caring contacts (issue 19); ``referral_id`` then keys the reply."""
        self.kind = kind
        self.referral_id = referral_id
        self.incident_id = incident_id
        self.code = code
        self.declined = declined
        self.unanswered = unanswered
        self.paged: UUID | None = None
        self.soundings: list[dict[str, Any]] = []
        self.next_at: datetime | None = None
        self.answer: str | None = None

    @event("SupervisorPaged")
    def page_supervisor(self, supervisor_id: UUID | None, at: datetime) -> None:
        """Before the alarm repeated (stores written by an older version): the one supervisor texted once."""
        self.paged = supervisor_id

    @event("Sounded")
    def sound(
        self,
        repeat: int,
        notified: list[dict[str, Any]],
        next_at: datetime | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        """Sounding ``repeat``: ``notified`` (responder_id, role, phone, language) were texted; again at ``next_at``
        (None: that was the last)."""
        self.soundings.append({"repeat": repeat, "notified": notified, "at": at})
        self.next_at = next_at

    @event("Answered")
    def answer_with(
        self,
        reason: str,
        responder_id: UUID | None,
        message_sid: str | None,
        caused_by: UUID | None,
        at: datetime,
        taker: dict[str, Any] | None = None,
    ) -> None:
        """It ended: ``taken`` (``responder_id`` replied Y <code>; ``taker``: their responder_id, role, phone and
        language, as a sounding names people), or the referral was accepted, cancelled or the person admitted."""
        self.answer = reason
        self.next_at = None
        self.taker = taker

    @property
    def is_closed(self) -> bool:
        """Nothing more to do: answered, or an old store's single text (those never repeat)."""
        return self.answer is not None or (self.version > 1 and not self.soundings and self.code is None)

    def next_deadline(self) -> datetime | None:
        return None if self.is_closed else self.next_at

    def paged_people(self) -> list[dict[str, Any]]:
        """Everyone any sounding texted, each once, in the order first told."""
        people: dict[str, dict[str, Any]] = {}
        for sounding in self.soundings:
            for person in sounding["notified"]:
                people.setdefault(person["responder_id"], person)
        return list(people.values())

    def was_paged(self, responder_id: UUID) -> bool:
        return any(p["responder_id"] == str(responder_id) for p in self.paged_people())

    def told_at_the_end(self) -> list[dict[str, Any]]:
        """Whom its end is texted to: everyone paged, and who took it (a supervisor or director may take it before
        a sounding reached them)."""
        taker = getattr(self, "taker", None)
        people = self.paged_people()
        return people if taker is None or self.was_paged(UUID(taker["responder_id"])) else [*people, taker]


@dataclass(frozen=True)
class Sounding:
    repeat: int
    people: Sequence[ResponderView]
    next_at: datetime | None


def plan_referral_sounding(
    soundings_so_far: int,
    on_duty: Iterable[ResponderView],
    supervisors: Iterable[ResponderView],
    directors: Iterable[ResponderView],
    policy: ReferralAlarmPolicy,
    now: datetime,
    kind: str = "referral",
) -> Sounding | None:
    """The next sounding, or None when all ``policy.soundings`` were sounded. A referral's first tells the supervisors
    on duty (else every active supervisor, else the directors); the later ones also the directors (on duty, else
    every active one), like NOBODY ACCEPTED. A caring-contacts reply's ("caring") first tells the clinicians on duty
    (else as a referral's), and the later ones them and the supervisors and directors."""
    if soundings_so_far >= policy.soundings:
        return None
    on_duty = list(on_duty)
    everyone = alarm_recipients(on_duty, [*on_duty, *[s for s in supervisors if s.role == "supervisor"]], directors)
    clinicians = [v for v in on_duty if v.role == "clinician" and v.active] if kind == "caring" else []
    if soundings_so_far == 0:
        everyone = clinicians or [v for v in everyone if v.role == "supervisor"] or everyone
    else:
        everyone = [*clinicians, *everyone]
    repeat = soundings_so_far + 1
    return Sounding(repeat, everyone, now + policy.repeat_every if repeat < policy.soundings else None)
