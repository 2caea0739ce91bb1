"""A referral nobody accepted by its deadline (issue 17): the on-call supervisor is paged once.

The projections' referral desk publishes ``referral.acceptance_overdue`` when the deadline passes; the dispatcher
knows who is on call. The supervisor is the on-duty one (the schedule's, else any active supervisor on the
roster), texted ``referral_overdue`` (the referral's code, how many declined and how many did not answer) at P2.
A ``ReferralAlert`` per referral, saved with the stream position, makes it once across redeliveries and restarts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from eventsourcing.application import AggregateNotFoundError

from services.contract.events import ReferralAcceptanceOverdue
from services.dispatcher.domain.referral_alert import ReferralAlert
from services.dispatcher.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from services.dispatcher.application import Dispatcher

log = logging.getLogger(__name__)


def on_referral_acceptance_overdue(
    dispatcher: Dispatcher, work: UnitOfWork, overdue: ReferralAcceptanceOverdue
) -> None:
    data = overdue.data
    try:
        alert = work.get(ReferralAlert.create_id(data.referral_id))
    except AggregateNotFoundError:
        alert = work.add(ReferralAlert(referral_id=data.referral_id))
    if alert.version > 1:
        return  # paged (or found nobody on the roster) before
    now = dispatcher.clock.now()
    known = dispatcher.known
    on_duty = [v for v in known.on_duty(now) if v.role == "supervisor"]
    supervisor = (
        on_duty[0] if on_duty else next((v for v in known.roster.values() if v.role == "supervisor" and v.active), None)
    )
    alert.page_supervisor(supervisor_id=supervisor.responder_id if supervisor else None, at=now)
    if supervisor is None:
        log.error("referral %s: nobody accepted in time and no supervisor is on the roster", data.code)
        return
    work.record(supervisor.responder_id).notify(
        to=supervisor.phone,
        language=supervisor.language,
        template="referral_overdue",
        params={"code": data.code, "declined": data.declined, "unanswered": data.unanswered},
        priority="P2",
        incident_id=data.incident_id,
        caused_by=overdue.id,
        at=now,
    )
