"""A referral nobody accepted by its deadline (issue 17): paged through a ladder of its own, like NOBODY ACCEPTED.

The projections' referral desk publishes ``referral.acceptance_overdue`` when the deadline passes; the dispatcher
knows who is on call. Sounding 1 texts the on-duty supervisor(s) (else every active supervisor, else the
directors) ``referral_overdue``: the referral's code, how many programs declined and how many did not answer, and
"Reply Y <code> to take it". Unless someone takes it, the alarm sounds again every
``CRISIS_REFERRAL_ALARM_REPEAT_MINUTES`` to the supervisors and the clinical directors, up to
``CRISIS_REFERRAL_ALARM_SOUNDINGS`` times in all. It ends when one of the people paged replies ``Y <code>`` (the
referral is theirs; the others are told), or a program accepts, the referral is cancelled or the person admitted
(everyone paged is told there is nothing to do). Each sounding and the end are events on the stream
(``referral.escalated``, ``referral.escalation_answered``), so the referral's history shows who was paged and who
took it.

A ``ReferralAlert`` per referral, saved with the stream position, makes the first sounding once across
redeliveries and restarts; the next sounding is its deadline in the store, fired by the dispatcher's ticker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError

from services.contract.events import (
    AlarmRecipient,
    CaringReplyReceived,
    Envelope,
    ReferralAcceptanceOverdue,
    ReferralAccepted,
    ReferralAdmitted,
    ReferralCancelled,
    ReferralEscalated,
    ReferralEscalatedData,
    ReferralEscalationAnswered,
    ReferralEscalationAnsweredData,
    SmsReceived,
    derived_id,
)
from services.dispatcher.domain.policy import ReferralAlarmPolicy
from services.dispatcher.domain.referral_alert import ReferralAlert, plan_referral_sounding
from services.dispatcher.domain.replies import parse_reply
from services.dispatcher.outbox_events import contract_event, notification_requested
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from services.dispatcher.application import Dispatcher

log = logging.getLogger(__name__)

TAKERS = frozenset({"supervisor", "director"})
"""Who may take a referral's alarm by Y <code> whether or not a sounding has reached them yet."""


class ReferralAlarms:
    def __init__(self, cache: RosterCache, policy: ReferralAlarmPolicy, duress_words: Collection[str] = ()) -> None:
        self.cache = cache
        self.policy = policy
        self.duress_words = duress_words

    def on_overdue(self, work: UnitOfWork, overdue: ReferralAcceptanceOverdue, now: datetime) -> None:
        data = overdue.data
        try:
            work.get(ReferralAlert.create_id(data.referral_id))
            return  # sounded (or answered) before: a repeat of the same deadline pages nobody again
        except AggregateNotFoundError:
            pass
        alert = work.add(ReferralAlert(data.referral_id, data.incident_id, data.code, data.declined, data.unanswered))
        self.sound(alert, overdue.id, now)

    def sound(self, alert: ReferralAlert, cause: Any, now: datetime) -> int:
        cache = self.cache
        plan = plan_referral_sounding(
            len(alert.soundings),
            cache.on_duty(now),
            cache.active_with_role("supervisor"),
            cache.active_with_role("director"),
            self.policy,
            now,
            getattr(alert, "kind", "referral"),
        )
        if plan is None:
            return 0
        if not plan.people:
            log.error("referral %s: nobody accepted in time and nobody is on the roster to page", alert.code)
        alert.sound(
            repeat=plan.repeat,
            notified=[
                {"responder_id": str(v.responder_id), "role": v.role, "phone": v.phone, "language": v.language}
                for v in plan.people
            ],
            next_at=plan.next_at,
            caused_by=cause,
            at=now,
        )
        if plan.next_at is None:
            log.error("referral %s: sounded %s times and nobody took it", alert.code, plan.repeat)
        return 1

    def fire_due(self, work: UnitOfWork, alert: ReferralAlert, now: datetime) -> int:
        deadline = alert.next_deadline()
        if deadline is None or deadline > now:
            return 0
        return self.sound(alert, None, now)

    def on_reply(self, work: UnitOfWork, received: SmsReceived, now: datetime) -> bool:
        """``Y <code>`` from someone this referral's alarm paged: theirs now (True). A page's own code wins."""
        responder_id = self.cache.by_phone.get(received.data.from_number)
        alert_ids = self.cache.referral_alerts
        if responder_id is None or not alert_ids:
            return False
        reply = parse_reply(received.data.body, self.duress_words)
        if reply.command != "accept" or reply.code not in alert_ids or reply.duress:
            return False
        if reply.code in work.record(responder_id).open_codes:
            return False
        view = self.cache.roster.get(responder_id)
        if view is None:
            return False
        taker = {"responder_id": str(responder_id), "role": view.role, "phone": view.phone, "language": view.language}
        for alert_id in alert_ids[reply.code]:
            alert: ReferralAlert = work.get(alert_id)
            if not alert.is_closed and alert.soundings and (view.role in TAKERS or alert.was_paged(responder_id)):
                alert.answer_with("taken", responder_id, received.data.message_sid, received.id, now, taker)
                return True
        return False

    def on_closed(self, work: UnitOfWork, event: Any, reason: str, now: datetime) -> None:
        """A program accepted, the referral was cancelled or the person admitted: a sounding alarm stops."""
        try:
            alert: ReferralAlert = work.get(ReferralAlert.create_id(event.data.referral_id))
        except AggregateNotFoundError:
            return
        if not alert.is_closed and alert.soundings:
            alert.answer_with(reason, None, None, event.id, now)


def on_caring_reply(dispatcher: Dispatcher, work: UnitOfWork, replied: CaringReplyReceived) -> None:
    """A person in caring contacts texted back (issue 19): the on-call clinician is paged until someone takes it."""
    data = replied.data
    key = derived_id("caring-reply", data.message_sid)
    try:
        work.get(ReferralAlert.create_id(key))
        return  # paged before
    except AggregateNotFoundError:
        pass
    alert = work.add(ReferralAlert(key, None, data.code, kind="caring"))
    dispatcher.referral_alarms.sound(alert, replied.id, dispatcher.clock.now())


def _closing(reason: str) -> Callable[[Dispatcher, UnitOfWork, Any], None]:
    def handle(dispatcher: Dispatcher, work: UnitOfWork, event: Any) -> None:
        dispatcher.referral_alarms.on_closed(work, event, reason, dispatcher.clock.now())

    return handle


def on_referral_acceptance_overdue(
    dispatcher: Dispatcher, work: UnitOfWork, overdue: ReferralAcceptanceOverdue
) -> None:
    dispatcher.referral_alarms.on_overdue(work, overdue, dispatcher.clock.now())


REFERRAL_HANDLERS: dict[type, Callable[[Dispatcher, UnitOfWork, Any], None]] = {
    ReferralAcceptanceOverdue: on_referral_acceptance_overdue,
    ReferralAccepted: _closing("accepted"),
    ReferralCancelled: _closing("cancelled"),
    ReferralAdmitted: _closing("admitted"),
    CaringReplyReceived: on_caring_reply,
}
"""The stream events the referral alarm acts on (merged into the dispatcher's ``STREAM_HANDLERS``)."""


# ---- what is published ---------------------------------------------------------------------------------------


def _alert_at(outbox: Any, stored: Any) -> ReferralAlert:
    return outbox.repository.get(stored.originator_id, version=stored.originator_version)


def publish_sounded(outbox: Any, sounded: ReferralAlert.Sounded) -> Sequence[Envelope]:
    alert = _alert_at(outbox, sounded)
    if getattr(alert, "kind", "referral") == "caring":  # the texts only: the reply is on the stream already
        params = {"code": alert.code, "repeat": sounded.repeat}
        return [_text(sounded, alert, p, "caring_reply_alert", params, "caring_alarm") for p in sounded.notified]
    data = ReferralEscalatedData(
        referral_id=alert.referral_id,
        incident_id=alert.incident_id,
        code=alert.code,
        repeat=sounded.repeat,
        notified=[AlarmRecipient(responder_id=p["responder_id"], role=p["role"]) for p in sounded.notified],
        next_at=sounded.next_at,
    )
    params = {"code": alert.code, "declined": alert.declined, "unanswered": alert.unanswered, "repeat": sounded.repeat}
    texts = [_text(sounded, alert, p, "referral_overdue", params, "referral_alarm") for p in sounded.notified]
    return (contract_event(ReferralEscalated, data, sounded, alert.incident_id), *texts)


def publish_answered(outbox: Any, answered: ReferralAlert.Answered) -> Sequence[Envelope]:
    alert = _alert_at(outbox, answered)
    taker = str(answered.responder_id) if answered.responder_id else None
    if getattr(alert, "kind", "referral") == "caring":
        return [
            _text(
                answered, alert, p, "caring_alarm_answered", {"code": alert.code, "reason": reason}, "caring_answered"
            )
            for p in alert.told_at_the_end()
            for reason in ["taken_by_you" if p["responder_id"] == taker else "taken"]
        ]
    data = ReferralEscalationAnsweredData(
        referral_id=alert.referral_id,
        incident_id=alert.incident_id,
        code=alert.code,
        reason=answered.reason,
        responder_id=answered.responder_id,
        role=next((p["role"] for p in alert.told_at_the_end() if p["responder_id"] == taker), None),
        soundings=max(1, len(alert.soundings)),
    )
    texts = [
        _text(
            answered,
            alert,
            p,
            "referral_alarm_answered",
            {"code": alert.code, "reason": "taken_by_you" if p["responder_id"] == taker else answered.reason},
            "referral_answered",
        )
        for p in alert.told_at_the_end()
    ]
    return (contract_event(ReferralEscalationAnswered, data, answered, alert.incident_id), *texts)


def _text(stored: Any, alert: ReferralAlert, person: dict[str, Any], template: str, params: dict, tag: str) -> Envelope:
    """One P2 text to ``person`` about the alert, its id derived from the stored event's."""
    return notification_requested(
        stored,
        notification_id=derived_id(alert.id, stored.originator_version, tag, person["responder_id"]),
        to=person["phone"],
        language=person["language"],
        template=template,
        params=params,
        priority="P2",
        page_id=None,
        incident_id=alert.incident_id,
    )


REFERRAL_OUTBOX_HANDLERS: dict[type, Callable[[Any, Any], Sequence[Envelope]]] = {
    ReferralAlert.Sounded: publish_sounded,
    ReferralAlert.Answered: publish_answered,
}
