"""A referral nobody accepted by its deadline pages the on-call supervisor once (issue 17): the dispatcher on a
real store, fed by hand, restarted in between; the same ``referral.acceptance_overdue`` again (a re-publish after
the stream's duplicate window) and another copy after the restart page nobody again."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import ReferralAcceptanceOverdue, ReferralAcceptanceOverdueData, new_event
from services.dispatcher.bootstrap import build
from tests.factories import T0
from tests.support.dispatch_harness import harness, messages, of, settings, team  # noqa: F401 - fixtures


def overdue(referral_id, incident_id):
    data = ReferralAcceptanceOverdueData(
        referral_id=referral_id,
        incident_id=incident_id,
        code="5150",
        accept_by=T0 + timedelta(hours=1),
        declined=2,
        unanswered=1,
    )
    return new_event(ReferralAcceptanceOverdue, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def test_the_on_call_supervisor_is_paged_once_per_referral(harness, team, settings) -> None:  # noqa: F811
    referral, incident = uuid4(), uuid4()
    first = harness.feed(overdue(referral, incident))
    paged = of(first, "notification.requested")
    assert messages(first) == [(team["supervisor"].phone, "referral_overdue")]
    assert paged[0].data.params == {"code": "5150", "declined": 2, "unanswered": 1}
    assert paged[0].data.priority.value == "P2"
    assert messages(harness.feed(overdue(referral, incident))) == []  # re-published with a new id: not again

    sequence = harness.sequence
    harness.app.close()
    with build(settings, harness.clock) as again:
        resumed = harness.resume(again, sequence)
        assert messages(resumed.feed(overdue(referral, incident))) == []
        other = resumed.feed(overdue(uuid4(), incident))  # another referral: its own page
        assert messages(other) == [(team["supervisor"].phone, "referral_overdue")]
