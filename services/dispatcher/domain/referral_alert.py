"""That the on-call supervisor was paged about a referral nobody accepted in time: one small aggregate per
referral, so a repeat of ``referral.acceptance_overdue`` (a redelivery, a re-publish after the stream's duplicate
window, a second instance) never pages twice."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE = UUID("6f1d3a52-9c1e-4b8e-a0d4-2f6c0e7b1a17")


class ReferralAlert(Aggregate):
    @staticmethod
    def create_id(referral_id: UUID) -> UUID:
        return uuid5(_NAMESPACE, f"referral-alert/{referral_id}")

    @event("Opened")
    def __init__(self, referral_id: UUID) -> None:
        self.referral_id = referral_id
        self.paged: UUID | None = None

    @event("SupervisorPaged")
    def page_supervisor(self, supervisor_id: UUID | None, at: datetime) -> None:
        """Recorded once: the supervisor paged (None: nobody was on duty, and that was logged)."""
        self.paged = supervisor_id
