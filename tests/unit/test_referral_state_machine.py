"""The referral's one state machine (``projections/domain/referral.py``, issue 17 section 3), event by event: every
state reached (sent, received, accepted, declined, info needed, admitted, no-show, cancelled), every transition
recorded in the history with its actor, and what it refuses (an answer from a program the referral was not sent
to, an answer to a closed offer, a second accept, an arrival before an accept, anything after a final state). The
dispatcher's paging about it is recorded in any state, its end once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    AlarmRecipient,
    CancelReason,
    DeclineReason,
    InfoNeeded,
    LevelOfCare,
    ReferralAcceptanceOverdue,
    ReferralAcceptanceOverdueData,
    ReferralAccepted,
    ReferralAcceptedData,
    ReferralAdmitted,
    ReferralAdmittedData,
    ReferralCancelled,
    ReferralCancelledData,
    ReferralDeclined,
    ReferralDeclinedData,
    ReferralEscalated,
    ReferralEscalatedData,
    ReferralEscalationAnswered,
    ReferralEscalationAnsweredData,
    ReferralInfoProvided,
    ReferralInfoProvidedData,
    ReferralInfoRequested,
    ReferralInfoRequestedData,
    ReferralNeeds,
    ReferralNoShow,
    ReferralNoShowData,
    ReferralReceived,
    ReferralReceivedData,
    ReferralSent,
    ReferralSentData,
    ReferralTransportArranged,
    ReferralTransportArrangedData,
    ReferralWithdrawn,
    ReferralWithdrawnData,
    new_event,
)
from services.contract.referral import OfferState, ReferralState
from services.projections.domain.referral import ReferralView, TransitionRefused, fold_referral, may
from tests.factories import T0

REFERRAL, INCIDENT = uuid4(), uuid4()
A, B, C, STRANGER = uuid4(), uuid4(), uuid4(), uuid4()
IDS = {"referral_id": REFERRAL, "incident_id": INCIDENT}


def ev(event_class: Any, data_class: Any, minutes: float = 1, **fields: Any) -> Any:
    return new_event(
        event_class, data_class(**IDS, **fields), event_id=uuid4(), occurred_at=T0 + timedelta(minutes=minutes),
        producer="tests",
    )  # fmt: skip


def sent() -> Any:
    return ev(
        ReferralSent, ReferralSentData, 0, code="4417", level_of_care=LevelOfCare("OTP"), needs=ReferralNeeds(),
        program_ids=[A, B, C], accept_by=T0 + timedelta(hours=1), sent_by="clinician-user",
    )  # fmt: skip


def answer(program: UUID, channel: str = "sms") -> dict[str, Any]:
    return {"program_id": program, "actor": "program sms" if channel == "sms" else "program link", "channel": channel}


def received(program: UUID) -> Any:
    return ev(ReferralReceived, ReferralReceivedData, **answer(program, "link"))


def accepted(program: UUID, minutes: float = 5) -> Any:
    window = {"admission_from": T0, "admission_until": T0 + timedelta(hours=24)}
    return ev(ReferralAccepted, ReferralAcceptedData, minutes, **answer(program), **window)


def declined(program: UUID) -> Any:
    return ev(ReferralDeclined, ReferralDeclinedData, **answer(program), reason=DeclineReason.NO_CAPACITY)


def info_needed(program: UUID) -> Any:
    return ev(ReferralInfoRequested, ReferralInfoRequestedData, **answer(program), needed=[InfoNeeded.INSURANCE])


def info_provided(program: UUID) -> Any:
    return ev(
        ReferralInfoProvided, ReferralInfoProvidedData, program_id=program, provided=[InfoNeeded.INSURANCE],
        actor="clinician-user",
    )  # fmt: skip


def withdrawn(program: UUID) -> Any:
    return ev(ReferralWithdrawn, ReferralWithdrawnData, program_id=program, reason="another_program_accepted")


def admitted(program: UUID) -> Any:
    return ev(ReferralAdmitted, ReferralAdmittedData, 90, **answer(program), admitted_at=T0 + timedelta(minutes=90))


def no_show(program: UUID) -> Any:
    return ev(
        ReferralNoShow, ReferralNoShowData, 60 * 25, program_id=program, code="4417",
        window_closed_at=T0 + timedelta(hours=24), actor="deadline", channel="deadline",
    )  # fmt: skip


def cancelled() -> Any:
    return ev(ReferralCancelled, ReferralCancelledData, reason=CancelReason.PERSON_DECLINED, actor="clinician-user")


def transport() -> Any:
    return ev(ReferralTransportArranged, ReferralTransportArrangedData, mode="responder", actor="clinician-user")


def overdue() -> Any:
    return ev(
        ReferralAcceptanceOverdue, ReferralAcceptanceOverdueData, 61, code="4417", accept_by=T0 + timedelta(hours=1),
        declined=1, unanswered=2,
    )  # fmt: skip


def escalated(repeat: int) -> Any:
    notified = [AlarmRecipient(responder_id=uuid4(), role="supervisor")]
    return ev(ReferralEscalated, ReferralEscalatedData, 61, code="4417", repeat=repeat, notified=notified, next_at=None)


def escalation_answered(reason: str = "taken", role: str | None = "supervisor") -> Any:
    return ev(
        ReferralEscalationAnswered, ReferralEscalationAnsweredData, 62, code="4417", reason=reason,
        responder_id=uuid4() if role else None, role=role, soundings=2,
    )  # fmt: skip


def fold(*events: Any) -> ReferralView:
    view = None
    for event in events:
        view = fold_referral(view, event)
    assert view is not None
    return view


def offer_states(view: ReferralView) -> list[str]:
    return [o.state.value for o in view.offers]


def test_each_state_is_reached_and_every_step_names_its_actor() -> None:
    assert fold(sent()).state is ReferralState.SENT
    assert fold(sent(), received(A)).state is ReferralState.RECEIVED
    assert fold(sent(), info_needed(A)).state is ReferralState.INFO_NEEDED
    assert fold(sent(), info_needed(A), info_provided(A)).state is ReferralState.RECEIVED
    assert fold(sent(), declined(A), declined(B), declined(C)).state is ReferralState.DECLINED
    view = fold(sent(), received(A), declined(B), accepted(A), withdrawn(C), transport(), admitted(A))
    assert view.state is ReferralState.ADMITTED and view.final
    assert offer_states(view) == ["admitted", "declined", "withdrawn"]
    assert [(h.event_type, h.actor, h.channel) for h in view.history] == [
        ("referral.sent", "clinician-user", "app"),
        ("referral.received", "program link", "link"),
        ("referral.declined", "program sms", "sms"),
        ("referral.accepted", "program sms", "sms"),
        ("referral.withdrawn", "referral desk", None),
        ("referral.transport_arranged", "clinician-user", None),
        ("referral.admitted", "program sms", "sms"),
    ]
    assert fold(sent(), accepted(B), no_show(B)).state is ReferralState.NO_SHOW
    assert fold(sent(), received(A), cancelled()).state is ReferralState.CANCELLED


@pytest.mark.parametrize(
    ("before", "refused", "why"),
    [
        ((), accepted(STRANGER), "not sent to program"),
        ((declined(A),), accepted(A), "offer is declined"),
        ((accepted(A),), accepted(B), "another program accepted already"),
        ((accepted(A), withdrawn(B)), declined(B), "offer is withdrawn"),
        ((), admitted(A), "after a program accepted"),
        ((), transport(), "after a program accepted"),
        ((), no_show(A), "after a program accepted"),
        ((received(A),), received(A), "received already"),
        ((accepted(A), admitted(A)), cancelled(), "the referral is admitted"),
        ((cancelled(),), accepted(A), "the referral is cancelled"),
        ((overdue(),), overdue(), "paged already"),
        ((), sent(), "sent already"),
    ],
)
def test_what_the_state_machine_refuses(before: tuple, refused: Any, why: str) -> None:
    view = fold(sent(), *before)
    with pytest.raises(TransitionRefused, match=why):
        fold_referral(view, refused)
    assert not may(view, refused)


def test_the_paging_is_recorded_in_any_state_and_its_end_once() -> None:
    view = fold(sent(), overdue(), escalated(1), escalated(2), accepted(A), admitted(A), escalation_answered())
    assert (view.state, view.escalations, view.escalation_end) == (ReferralState.ADMITTED, 2, "taken by the supervisor")
    assert [h.detail for h in view.history[-5:] if h.actor == "dispatcher"] == [
        "sounding 1: supervisor",
        "sounding 2: supervisor",
        "taken by the supervisor",
    ]
    with pytest.raises(TransitionRefused, match="paging ended already"):
        fold_referral(view, escalation_answered("accepted", None))
    stopped = fold(sent(), escalated(1), accepted(A), escalation_answered("accepted", None))
    assert stopped.escalation_end == "accepted"
    assert offer_states(stopped)[0] == OfferState.ACCEPTED.value
