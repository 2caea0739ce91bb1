"""A closed-loop referral as one value, and the state machine every part of the projections agrees on.

Pure. ``fold_referral`` applies one ``referral.*`` event to a referral's view and refuses a transition the state
machine does not allow (``TransitionRefused``, naming the state it was in), so the workspace's commands, the
referral desk and the read model all answer the same question the same way: may this happen now?

The referral's state follows from its offers (one per program, up to three):

    sent ──> received ──> accepted ──> admitted
      │          │           │   └──> no_show ──> admitted (a late arrival the program confirms)
      │          │           └──> (the other offers are withdrawn)
      │          ├──> declined            (every offer declined)
      │          └──> info_needed ──> received (staff sent what was asked)
      └──> cancelled                      (from any state that is not final)

An offer: sent -> received -> accepted | declined | info_needed (-> received); a program may answer straight from
sent (opening the link first is not required). After one offer is accepted, the others are withdrawn. Final
states: admitted, cancelled; a referral every program declined stays open for the supervisor (a new referral
is sent, or this one is cancelled).

FHIR (``TASK_STATUS``): Task.status per offer, after HL7's SDOH referral Task; the referral is one ServiceRequest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.contract.events import OfferState, ReferralState


class TransitionRefused(Exception):
    """The state machine does not allow this event now; ``state`` is the state the referral (or offer) is in."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class Transition:
    """One line of a referral's history: what happened, when, who did it, by which channel, for which program."""

    at: datetime
    event_type: str
    actor: str
    channel: str | None = None
    program_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Offer:
    program_id: str
    state: OfferState = OfferState.SENT
    answered_at: datetime | None = None
    decline_reason: str | None = None
    info_needed: tuple[str, ...] = ()
    admission_from: datetime | None = None
    admission_until: datetime | None = None


@dataclass(frozen=True)
class ReferralView:
    referral_id: str
    incident_id: str
    code: str
    level_of_care: str
    needs: dict[str, Any]
    sent_at: datetime
    accept_by: datetime
    sent_by: str
    person_id: str | None = None
    offers: tuple[Offer, ...] = ()
    transport: dict[str, Any] | None = None
    insurance: dict[str, Any] | None = None
    admitted_at: datetime | None = None
    admitted_program: str | None = None
    no_show_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    acceptance_overdue_at: datetime | None = None
    escalations: int = 0  # soundings of the alarm nobody-accepted-in-time (the dispatcher's)
    escalation_end: str | None = None  # taken (by whom: the history), accepted, cancelled, admitted
    history: tuple[Transition, ...] = field(default_factory=tuple)

    # ---- questions everyone asks ----------------------------------------------------------------------------

    @property
    def state(self) -> ReferralState:
        if self.cancelled_at is not None:
            return ReferralState.CANCELLED
        if self.admitted_at is not None:
            return ReferralState.ADMITTED
        if self.no_show_at is not None:
            return ReferralState.NO_SHOW
        states = {offer.state for offer in self.offers}
        if OfferState.ACCEPTED in states:
            return ReferralState.ACCEPTED
        if OfferState.INFO_NEEDED in states:
            return ReferralState.INFO_NEEDED
        if states and states <= {OfferState.DECLINED, OfferState.WITHDRAWN}:
            return ReferralState.DECLINED
        if OfferState.RECEIVED in states:
            return ReferralState.RECEIVED
        return ReferralState.SENT

    @property
    def final(self) -> bool:
        return self.state in (ReferralState.ADMITTED, ReferralState.CANCELLED)

    @property
    def accepted_offer(self) -> Offer | None:
        return next((o for o in self.offers if o.state in _AFTER_ACCEPT), None)

    def offer(self, program_id: str) -> Offer | None:
        return next((o for o in self.offers if o.program_id == str(program_id)), None)

    @property
    def awaiting_answer(self) -> bool:
        """No program accepted yet and the referral is still open: the acceptance deadline applies."""
        return self.accepted_offer is None and not self.final and self.no_show_at is None

    def counts(self) -> tuple[int, int]:
        """(declined, unanswered) offers, for the supervisor's page."""
        declined = sum(o.state is OfferState.DECLINED for o in self.offers)
        unanswered = sum(o.state in (OfferState.SENT, OfferState.RECEIVED) for o in self.offers)
        return declined, unanswered


_AFTER_ACCEPT = (OfferState.ACCEPTED, OfferState.ADMITTED, OfferState.NO_SHOW)
_ANSWERABLE = (OfferState.SENT, OfferState.RECEIVED, OfferState.INFO_NEEDED)

TASK_STATUS: dict[OfferState, str] = {
    OfferState.SENT: "requested",
    OfferState.RECEIVED: "received",
    OfferState.ACCEPTED: "accepted",
    OfferState.DECLINED: "rejected",
    OfferState.INFO_NEEDED: "on-hold",
    OfferState.WITHDRAWN: "cancelled",
    OfferState.ADMITTED: "completed",
    OfferState.NO_SHOW: "failed",
}
"""FHIR Task.status for an offer's state; an accepted offer with transport arranged is "in-progress"
(``task_status``)."""


def task_status(view: ReferralView, offer: Offer) -> str:
    if view.cancelled_at is not None and offer.state in _ANSWERABLE + (OfferState.ACCEPTED,):
        return "cancelled"
    if offer.state is OfferState.ACCEPTED and view.transport is not None:
        return "in-progress"
    return TASK_STATUS[offer.state]


def service_request_status(view: ReferralView) -> str:
    """FHIR ServiceRequest.status: active while open, completed once admitted, revoked when cancelled."""
    return {ReferralState.ADMITTED: "completed", ReferralState.CANCELLED: "revoked"}.get(view.state, "active")


# ---- the fold -------------------------------------------------------------------------------------------------


def start_referral(event: Any) -> ReferralView:
    """The view a ``referral.sent`` event starts (``event`` is the contract envelope)."""
    data = event.data
    return ReferralView(
        referral_id=str(data.referral_id),
        incident_id=str(data.incident_id),
        person_id=str(data.person_id) if data.person_id else None,
        code=data.code,
        level_of_care=data.level_of_care.value,
        needs=data.needs.model_dump(mode="json"),
        sent_at=event.occurred_at,
        accept_by=data.accept_by,
        sent_by=data.sent_by,
        offers=tuple(Offer(program_id=str(p)) for p in data.program_ids),
        history=(Transition(event.occurred_at, event.type, data.sent_by, "app", None, f"{len(data.program_ids)}"),),
    )


def fold_referral(view: ReferralView | None, event: Any) -> ReferralView:
    """``view`` after ``event`` (a ``referral.*`` envelope other than level_of_care_chosen).

    Raises ``TransitionRefused`` when the state machine does not allow it: an answer from a program the referral
    was not sent to, an answer after the offer was closed, an arrival before an accept, anything after a final
    state. ``referral.sent`` for a referral that exists is refused too (callers treat a repeat as already done).
    """
    if event.type == "referral.sent":
        if view is not None:
            raise TransitionRefused("this referral was sent already", view.state.value)
        return start_referral(event)
    if view is None:
        raise TransitionRefused("no such referral", "unknown")
    step = _STEPS.get(event.type)
    if step is None:
        raise TransitionRefused(f"{event.type} is not a referral transition", view.state.value)
    if view.final and event.type not in _PAGING:
        raise TransitionRefused(f"the referral is {view.state.value}", view.state.value)
    data = event.data
    changed = step(view, data, event.occurred_at)
    line = Transition(
        at=event.occurred_at,
        event_type=event.type,
        actor=getattr(data, "actor", None) or _ACTORS.get(event.type, "referral desk"),
        channel=getattr(data, "channel", None),
        program_id=str(data.program_id) if getattr(data, "program_id", None) else None,
        detail=_detail(data),
    )
    return replace(changed, history=(*changed.history, line))


_PAGING = ("referral.escalated", "referral.escalation_answered")
"""The dispatcher paging about a referral: recorded in any state (its end often follows a final one)."""
_ACTORS = {
    "referral.acceptance_overdue": "deadline",
    "referral.escalated": "dispatcher",
    "referral.escalation_answered": "dispatcher",
}


def _detail(data: Any) -> str | None:
    if hasattr(data, "notified"):  # referral.escalated
        return f"sounding {data.repeat}: " + (", ".join(p.role for p in data.notified) or "nobody on the roster")
    if getattr(data, "role", None):  # referral.escalation_answered, taken
        return f"taken by the {data.role}"
    for name in ("reason", "mode", "status"):
        value = getattr(data, name, None)
        if value is not None:
            return str(getattr(value, "value", value))
    needed = getattr(data, "needed", None) or getattr(data, "provided", None)
    return ", ".join(str(getattr(n, "value", n)) for n in needed) if needed else None


def _with_offer(
    view: ReferralView, program_id: Any, states: tuple[OfferState, ...], what: str, **changes
) -> ReferralView:
    offer = view.offer(str(program_id))
    if offer is None:
        raise TransitionRefused(f"the referral was not sent to program {program_id}", view.state.value)
    if offer.state not in states:
        raise TransitionRefused(f"this program's offer is {offer.state.value}: it cannot be {what}", offer.state.value)
    offers = tuple(replace(o, **changes) if o.program_id == offer.program_id else o for o in view.offers)
    return replace(view, offers=offers)


def _received(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    offer = view.offer(str(data.program_id))
    if offer is not None and offer.state is not OfferState.SENT:
        raise TransitionRefused("received already", offer.state.value)
    return _with_offer(view, data.program_id, (OfferState.SENT,), "received", state=OfferState.RECEIVED)


def _accepted(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    if view.accepted_offer is not None:
        raise TransitionRefused("another program accepted already", view.state.value)
    return _with_offer(
        view,
        data.program_id,
        _ANSWERABLE,
        "accepted",
        state=OfferState.ACCEPTED,
        answered_at=at,
        admission_from=data.admission_from,
        admission_until=data.admission_until,
    )


def _declined(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return _with_offer(
        view, data.program_id, _ANSWERABLE, "declined", state=OfferState.DECLINED, answered_at=at,
        decline_reason=data.reason.value,
    )  # fmt: skip


def _info_requested(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return _with_offer(
        view, data.program_id, _ANSWERABLE, "put on hold", state=OfferState.INFO_NEEDED, answered_at=at,
        info_needed=tuple(n.value for n in data.needed),
    )  # fmt: skip


def _info_provided(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return _with_offer(view, data.program_id, (OfferState.INFO_NEEDED,), "given information", state=OfferState.RECEIVED)


def _withdrawn(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return _with_offer(view, data.program_id, _ANSWERABLE, "withdrawn", state=OfferState.WITHDRAWN)


def _needs_accept(view: ReferralView, what: str) -> Offer:
    offer = view.accepted_offer
    if offer is None:
        raise TransitionRefused(f"{what} comes after a program accepted", view.state.value)
    return offer


def _transport(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    _needs_accept(view, "transport")
    pickup = data.pickup_at.isoformat() if data.pickup_at else None
    return replace(view, transport={"mode": data.mode, "pickup_at": pickup, "by": data.actor, "at": at.isoformat()})


def _insurance(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    payer = data.payer.value if data.payer else None
    return replace(view, insurance={"status": data.status, "payer": payer, "by": data.actor, "at": at.isoformat()})


def _admitted(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    offer = _needs_accept(view, "an arrival")
    if offer.program_id != str(data.program_id):
        raise TransitionRefused("the person was referred to another program", view.state.value)
    changed = _with_offer(view, data.program_id, _AFTER_ACCEPT, "admitted", state=OfferState.ADMITTED)
    return replace(changed, admitted_at=data.admitted_at, admitted_program=offer.program_id, no_show_at=None)


def _no_show(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    offer = _needs_accept(view, "a no-show")
    if view.no_show_at is not None:
        raise TransitionRefused("the no-show was recorded already", view.state.value)
    if offer.program_id != str(data.program_id):
        raise TransitionRefused("the person was referred to another program", view.state.value)
    changed = _with_offer(view, data.program_id, (OfferState.ACCEPTED,), "a no-show", state=OfferState.NO_SHOW)
    return replace(changed, no_show_at=data.window_closed_at)


def _cancelled(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return replace(view, cancelled_at=at, cancel_reason=data.reason.value)


def _acceptance_overdue(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    if view.acceptance_overdue_at is not None:
        raise TransitionRefused("the supervisor was paged already", view.state.value)
    return replace(view, acceptance_overdue_at=at)


def _escalated(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    return replace(view, escalations=max(view.escalations, data.repeat))


def _escalation_answered(view: ReferralView, data: Any, at: datetime) -> ReferralView:
    if view.escalation_end is not None:
        raise TransitionRefused("the paging ended already", view.state.value)
    return replace(view, escalation_end=f"taken by the {data.role}" if data.role else data.reason)


_STEPS = {
    "referral.received": _received,
    "referral.accepted": _accepted,
    "referral.declined": _declined,
    "referral.info_requested": _info_requested,
    "referral.info_provided": _info_provided,
    "referral.withdrawn": _withdrawn,
    "referral.transport_arranged": _transport,
    "referral.insurance_verified": _insurance,
    "referral.admitted": _admitted,
    "referral.no_show": _no_show,
    "referral.cancelled": _cancelled,
    "referral.acceptance_overdue": _acceptance_overdue,
    "referral.escalated": _escalated,
    "referral.escalation_answered": _escalation_answered,
}


def may(view: ReferralView | None, event: Any) -> bool:
    """Whether ``event`` would be accepted now (``fold_referral`` without raising)."""
    try:
        fold_referral(view, event)
    except TransitionRefused:
        return False
    return True
