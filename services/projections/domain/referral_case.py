"""What the referral desk keeps (issue 17): each referral's view as its events made it, what the desk itself decided
for it (its offers texted, the other offers withdrawn, the supervisor's deadline passed, the admission window
closed), and two small indexes: the programs' phones and the open deadlines.

Each ``ReferralCase`` event stores the contract event it applied as JSON, and its body folds it with
``domain/referral.py``'s ``fold_referral``: a replay rebuilds the same view. A decision is an event of its own,
recorded once; the outbox publishes what it says (referral_outbox.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.contract.events import decode_event
from services.projections.domain.referral import ReferralView, TransitionRefused, fold_referral


def _fold(view: ReferralView | None, event_json: str) -> ReferralView | None:
    try:
        return fold_referral(view, decode_event(event_json.encode()))
    except TransitionRefused:
        return view


class ReferralCase(Aggregate):
    @staticmethod
    def create_id(referral_id: UUID, event_json: str) -> UUID:
        return referral_id  # the referral's own id

    @event("Sent")
    def __init__(self, referral_id: UUID, event_json: str) -> None:
        self.view = _fold(None, event_json)
        self.decided: dict[str, Any] = {}

    @event("Applied")
    def apply(self, event_json: str) -> None:
        """A referral event from the stream (a person's, a program's link, or our own coming back)."""
        self.view = _fold(self.view, event_json)

    @event("OffersTexted")
    def text_offers(self, programs: list[dict[str, Any]], at: datetime) -> None:
        """Each program (id, phone, language) is texted the code and its signed link."""
        self.decided["offers_texted"] = True

    @event("AnsweredBySms")
    def answer_by_sms(self, event_json: str, phone: str, language: str, answer: str) -> None:
        """A program's SMS answer: the contract event to publish (applied here at once) and its confirmation."""
        self.view = _fold(self.view, event_json)

    @event("OthersWithdrawn")
    def withdraw_others(self, programs: list[dict[str, Any]], reason: str, at: datetime) -> None:
        self.decided["withdrawn"] = reason

    @event("AcceptanceOverdue")
    def acceptance_overdue(self, declined: int, unanswered: int, at: datetime) -> None:
        self.decided["acceptance_overdue"] = True

    @event("AdmissionMissed")
    def admission_missed(self, program_id: str, window_closed_at: datetime, at: datetime) -> None:
        self.decided["admission_missed"] = True


class ProgramBook(Aggregate):
    """Program id -> intake phone, name and language; phone -> program (for SMS answers)."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "crisis/referral-desk/program-book")

    @event("Opened")
    def __init__(self) -> None:
        self.programs: dict[str, dict[str, Any]] = {}

    @event("Listed")
    def list_program(self, program_id: str, phone: str, name: str, language: str, retired: bool) -> None:
        self.programs[program_id] = {"phone": phone, "name": name, "language": language, "retired": retired}

    @event("AvailabilityTexted")
    def availability_texted(
        self,
        program_id: str,
        beds_open: int | None,
        message_sid: str,
        at: datetime,
        next_intake_at: datetime | None = None,
    ) -> None:
        """BEDS <n> / FULL / SLOT by SMS: published as program.availability_reported (channel sms) and confirmed."""

    @event("HelpTexted")
    def help_texted(self, program_id: str, message_sid: str, at: datetime) -> None:
        """HELP, or a text the desk could not read: answered with the commands."""

    def by_phone(self, phone: str) -> str | None:
        return next((pid for pid, p in self.programs.items() if p["phone"] == phone and not p["retired"]), None)


class DeadlineBook(Aggregate):
    """The open referrals' deadlines: referral id -> {"accept_by": iso, "admission_until": iso or None}."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "crisis/referral-desk/deadlines")

    @event("Opened")
    def __init__(self) -> None:
        self.due: dict[str, dict[str, str | None]] = {}
        self.codes: dict[str, dict[str, Any]] = {}

    @event("Coded")
    def note_code(self, referral_id: str, code: str, program_ids: list[str]) -> None:
        self.codes[referral_id] = {"code": code, "programs": program_ids}

    def referrals_coded(self, code: str, program_id: str) -> list[str]:
        """The open referrals with ``code`` that were sent to ``program_id``."""
        return [r for r, c in self.codes.items() if c["code"] == code and program_id in c["programs"]]

    @event("Set")
    def set_due(self, referral_id: str, kind: str, at: str | None) -> None:
        self.due.setdefault(referral_id, {})[kind] = at

    @event("Closed")
    def close(self, referral_id: str) -> None:
        self.due.pop(referral_id, None)
        self.codes.pop(referral_id, None)

    def due_by(self, now: datetime) -> list[tuple[str, str]]:
        """(referral id, kind) whose time passed by ``now``."""
        return [
            (referral_id, kind)
            for referral_id, kinds in self.due.items()
            for kind, at in kinds.items()
            if at is not None and datetime.fromisoformat(at) <= now
        ]
