"""The dispatcher's outbox: each stored domain event -> the contract events and notification requests to publish.

Event ids are derived from the stored event, so a publish repeated after a crash is de-duplicated by the
stream. ``OUTBOX_HANDLERS`` at the bottom is the list of what is published for which stored event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository

from services.contract.events import (
    DispatchAcknowledged,
    DispatchAcknowledgedData,
    DispatchCompleted,
    DispatchCompletedData,
    DispatchDeclined,
    DispatchDeclinedData,
    DispatchEscalated,
    DispatchEscalatedData,
    DispatchExtraAcceptance,
    DispatchExtraAcceptanceData,
    DispatchOffered,
    DispatchOfferedData,
    DispatchTimedOut,
    DispatchTimedOutData,
    DispatchUnfilled,
    DispatchUnfilledData,
    DispatchUnreachable,
    DispatchUnreachableData,
    DispatchWithdrawn,
    DispatchWithdrawnData,
    Envelope,
    PageReason,
    ResponderArrived,
    ResponderEnRoute,
    ResponderProgressData,
    derived_id,
)
from services.contract.templates import place_ref
from services.dispatcher.alarm_outbox import AlarmOutbox
from services.dispatcher.check_in_outbox import CHECK_IN_OUTBOX_HANDLERS, CheckInOutbox
from services.dispatcher.domain.field_report import FieldReport
from services.dispatcher.domain.incident import IncidentDispatch, Page
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.domain.task_watch import TaskWatch
from services.dispatcher.field_reports import is_backup_page, publish_field_report
from services.dispatcher.naloxone_stock import publish_left_behind, publish_stock_changed, publish_stock_low
from services.dispatcher.outbox_events import contract_event, notification_requested
from services.dispatcher.referral_alerts import REFERRAL_OUTBOX_HANDLERS
from services.dispatcher.rest import publish_rest_started
from services.dispatcher.task_reassign import publish_reassigned
from services.runtime.signed_links import ResponderLinks

PAGE_PURPOSES = ("offer", "reminder", "voice")


def page_notification_id(page_id: UUID, purpose: str) -> UUID:
    """Notification ids of a page are derived from it, so a failure report finds its page."""
    return derived_id("page", page_id, purpose)


class ContractOutbox:
    """Reads the incident as it was when each stored event happened, and says what to publish for it."""

    def __init__(self, repository: Repository, links: ResponderLinks | None = None, time_zone: str = "UTC") -> None:
        self.repository = repository
        self.alarms = AlarmOutbox(repository)
        self.links = links
        self.check_ins = CheckInOutbox(repository, time_zone)  # F1: check-ins and field deadlines

    def translate(self, stored: Any) -> Sequence[Envelope]:
        handler = OUTBOX_HANDLERS.get(type(stored))
        return handler(self, stored) if handler is not None else ()

    # ---- pages --------------------------------------------------------------------------------------

    def publish_page_offered(self, offered: IncidentDispatch.PageOffered) -> Sequence[Envelope]:
        incident = offered.originator_id
        opened = self._opened(offered)
        priority = opened.priority
        data = DispatchOfferedData(
            incident_id=incident,
            page_id=offered.page_id,
            responder_id=offered.responder_id,
            responder_role=offered.responder_role,
            code=offered.code,
            priority=priority,
            ack_deadline=offered.ack_deadline,
            step=offered.step,
            reason=PageReason(**offered.reason),
        )
        params = {
            "priority": priority,
            "code": offered.code,
            **_where(opened),
            "distance_km": round(offered.distance_km, 1),
            "call_911": opened.call_911,
        }
        page_message = notification_requested(
            offered,
            notification_id=page_notification_id(offered.page_id, "offer"),
            to=offered.phone,
            language=offered.language,
            template="page_offer",
            params=params,
            priority=priority,
            page_id=offered.page_id,
            incident_id=incident,
        )
        return (contract_event(DispatchOffered, data, offered, incident), page_message)

    def publish_page_reminded(self, reminded: IncidentDispatch.PageReminded) -> Sequence[Envelope]:
        page = self._page_at(reminded)
        priority = self._opened(reminded).priority
        by_sms = reminded.channel == "sms"
        reminder = notification_requested(
            reminded,
            notification_id=page_notification_id(reminded.page_id, "reminder" if by_sms else "voice"),
            to=page.phone,
            language=page.language,
            template="page_reminder" if by_sms else "voice_page",
            params={"priority": priority, "code": page.code},
            priority=priority,
            page_id=reminded.page_id,
            incident_id=reminded.originator_id,
            channel="sms" if by_sms else "voice",
        )
        return (reminder,)

    def publish_page_accepted(self, accepted: IncidentDispatch.PageAccepted) -> Sequence[Envelope]:
        """The acknowledgement, and its confirmation with a link to the incident page signed for this responder
        (valid for the links' lifetime from the moment they accepted)."""
        link = None
        if self.links is not None:
            responder_id = self._page_at(accepted).responder_id
            link = self.links.url(accepted.originator_id, responder_id, accepted.at)
        extra = {"link": link} if link else {}
        answered = self._answered(accepted, DispatchAcknowledged, DispatchAcknowledgedData, "ack_confirmed", extra)
        return (*answered, *self.alarms.stopped(accepted, "accepted"))

    def publish_page_declined(self, declined: IncidentDispatch.PageDeclined) -> Sequence[Envelope]:
        return self._answered(declined, DispatchDeclined, DispatchDeclinedData, "decline_confirmed")

    def _answered(
        self,
        answer: Any,
        event_class: type[Envelope],
        data_class: type[Any],
        template: str,
        extra: dict[str, Any] | None = None,
    ) -> Sequence[Envelope]:
        """A responder's yes or no: the contract event, and the text confirming it (with ``extra`` parameters)."""
        page = self._page_at(answer)
        data = data_class(**_answer(answer, page), **_said_by(answer))
        return (
            contract_event(event_class, data, answer, answer.originator_id),
            self._reply(answer, page, template, {"code": page.code, **(extra or {})}),
        )

    def publish_page_timed_out(self, timed_out: IncidentDispatch.PageTimedOut) -> Sequence[Envelope]:
        page = self._page_at(timed_out)
        data = DispatchTimedOutData(**_answer(timed_out, page), deadline=page.deadline)
        return (contract_event(DispatchTimedOut, data, timed_out, timed_out.originator_id),)

    def publish_page_unreachable(self, unreachable: IncidentDispatch.PageUnreachable) -> Sequence[Envelope]:
        page = self._page_at(unreachable)
        data = DispatchUnreachableData(
            **_answer(unreachable, page),
            notification_id=unreachable.notification_id,
            error_code=unreachable.error_code,
            reason=unreachable.reason,
        )
        return (contract_event(DispatchUnreachable, data, unreachable, unreachable.originator_id),)

    def publish_page_withdrawn(self, withdrawn: IncidentDispatch.PageWithdrawn) -> Sequence[Envelope]:
        page = self._page_at(withdrawn)
        data = DispatchWithdrawnData(**_answer(withdrawn, page), reason=withdrawn.reason)
        template = "page_covered" if withdrawn.reason == "covered" else "page_withdrawn"
        return (
            contract_event(DispatchWithdrawn, data, withdrawn, withdrawn.originator_id),
            self._reply(withdrawn, page, template, {"code": page.code}),
        )

    def publish_extra_acceptance(self, extra: IncidentDispatch.ExtraAcceptance) -> Sequence[Envelope]:
        page = self._page_at(extra)
        data = DispatchExtraAcceptanceData(**_answer(extra, page), **_said_by(extra), outcome=extra.outcome)
        if is_backup_page(self.repository, extra.page_id):  # F2: paged because someone on it texted BACKUP
            link = self.links.url(extra.originator_id, page.responder_id, extra.at) if self.links else None
            reply = self._reply(extra, page, "ack_confirmed", {"code": page.code, **({"link": link} if link else {})})
        else:
            reply = self._reply(extra, page, "already_taken", {"code": page.code, "outcome": extra.outcome})
        return (contract_event(DispatchExtraAcceptance, data, extra, extra.originator_id), reply)

    # ---- the ladder and the scene -------------------------------------------------------------------

    def publish_unfilled(self, unfilled: IncidentDispatch.Unfilled) -> Sequence[Envelope]:
        data = DispatchUnfilledData(
            incident_id=unfilled.originator_id,
            reason=unfilled.reason,
            shortfalls=unfilled.shortfalls,
            step=unfilled.step,
            rung=unfilled.rung,
        )
        return (contract_event(DispatchUnfilled, data, unfilled, unfilled.originator_id),)

    def publish_escalated(self, escalated: IncidentDispatch.Escalated) -> Sequence[Envelope]:
        incident = self._incident_at(escalated)
        data = DispatchEscalatedData(
            incident_id=escalated.originator_id,
            from_step=incident.slot(escalated.slot).from_step,
            to_step=escalated.to_step,
            rung=escalated.to_rung,
            reason=escalated.reason,
        )
        return (contract_event(DispatchEscalated, data, escalated, escalated.originator_id),)

    def publish_progress(self, progressed: IncidentDispatch.Progressed) -> Sequence[Envelope]:
        """En route, arrived or done; done says whether it closed the incident (nobody else still on it). A text
        is confirmed by text; a button pressed on the incident page shows what was recorded there instead."""
        incident = self._incident_at(progressed)
        before: IncidentDispatch = self.repository.get(
            progressed.originator_id, version=progressed.originator_version - 1
        )
        code = before.on_it.get(str(progressed.responder_id), "0000")
        page_id = before.page_by_code(progressed.responder_id, code) or derived_id("no-page", code)
        common = {
            "incident_id": progressed.originator_id,
            "page_id": page_id,
            "responder_id": progressed.responder_id,
            "code": code,
            "message_sid": progressed.message_sid,
            "channel": _progress_channel(progressed),
            "reported_by": getattr(progressed, "reported_by", None),  # None: stored before the page existed
        }
        if progressed.stage == "done":
            data = DispatchCompletedData(**common, closes_incident=incident.is_closed)
            event = contract_event(DispatchCompleted, data, progressed, progressed.originator_id)
        else:
            event_class = ResponderEnRoute if progressed.stage == "en_route" else ResponderArrived
            event = contract_event(event_class, ResponderProgressData(**common), progressed, progressed.originator_id)
        page = before.find_page(page_id)
        if page is None or event.data.channel == "app":
            return (event,)  # the incident page shows what was recorded; a text or a key pressed is confirmed
        return (event, self._reply(progressed, page, f"{progressed.stage}_confirmed", {"code": code}))

    # ---- nobody accepted (alarm_outbox.py) -----------------------------------------------------------

    def publish_alarm_raised(self, raised: IncidentDispatch.AlarmRaised) -> Sequence[Envelope]:
        return self.alarms.raised(raised)

    def publish_cancelled(self, cancelled: IncidentDispatch.Cancelled) -> Sequence[Envelope]:
        return self.alarms.stopped(cancelled, "cancelled")

    def publish_disposition_noted(self, noted: IncidentDispatch.DispositionNoted) -> Sequence[Envelope]:
        return self.alarms.stopped(noted, "disposition_recorded")

    def publish_notice(self, notice: ResponderRecord.NoticeRequested) -> Sequence[Envelope]:
        request = notification_requested(
            notice,
            notification_id=derived_id(notice.originator_id, notice.originator_version, "notice"),
            to=notice.to,
            language=notice.language,
            template=notice.template,
            params=notice.params,
            priority=notice.priority,
            page_id=None,
            incident_id=notice.incident_id,
        )
        return (request,)

    # ---- reading the incident as it was -------------------------------------------------------------

    def _incident_at(self, stored: Any) -> IncidentDispatch:
        return self.repository.get(stored.originator_id, version=stored.originator_version)

    def _page_at(self, stored: Any) -> Page:
        return self._incident_at(stored).page(stored.page_id)

    def _opened(self, stored: Any) -> IncidentDispatch:
        """The incident as it was opened: priority, area and the 911 advice never change after that."""
        return self.repository.get(stored.originator_id, version=1)

    def _reply(self, stored: Any, page: Page, template: str, params: dict[str, Any]) -> Envelope:
        """The text confirming a responder's answer, sent to the phone the page went to."""
        return notification_requested(
            stored,
            notification_id=derived_id(stored.originator_id, stored.originator_version, "sms"),
            to=page.phone,
            language=page.language,
            template=template,
            params=params,
            priority=self._opened(stored).priority,
            page_id=getattr(stored, "page_id", None),
            incident_id=stored.originator_id,
        )


def _answer(stored: Any, page: Page) -> dict[str, Any]:
    return {
        "incident_id": stored.originator_id,
        "page_id": stored.page_id,
        "responder_id": page.responder_id,
        "code": page.code,
    }


def _said_by(answer: Any) -> dict[str, Any]:
    """How a page was answered: a text (its SID), else the keypad of the page's voice call (F5, issue 18)."""
    return {"message_sid": answer.message_sid, "channel": "sms" if answer.message_sid else "voice"}


def _progress_channel(progressed: Any) -> str:
    """How progress was reported: a text (its SID), keys pressed on a call in (F6, issue 18: "voice"), else the
    incident page. A progress stored before the channel was recorded has none."""
    if progressed.message_sid:
        return "sms"
    return "voice" if getattr(progressed, "channel", None) == "voice" else "app"


def _where(opened: IncidentDispatch) -> dict[str, str | None]:
    """A page's place parameters: references to the gazetteer entry and the zone of the scene, no text.

    An incident opened before pages named places this way has no gazetteer entry: its zone only.
    """
    place, zone = getattr(opened, "place", None), opened.zone
    return {"place": place_ref(place) if place else None, "zone": place_ref(zone) if zone else None}


OUTBOX_HANDLERS: dict[type, Callable[[ContractOutbox, Any], Sequence[Envelope]]] = {
    IncidentDispatch.PageOffered: ContractOutbox.publish_page_offered,
    IncidentDispatch.PageReminded: ContractOutbox.publish_page_reminded,
    IncidentDispatch.PageAccepted: ContractOutbox.publish_page_accepted,
    IncidentDispatch.PageDeclined: ContractOutbox.publish_page_declined,
    IncidentDispatch.PageTimedOut: ContractOutbox.publish_page_timed_out,
    IncidentDispatch.PageUnreachable: ContractOutbox.publish_page_unreachable,
    IncidentDispatch.PageWithdrawn: ContractOutbox.publish_page_withdrawn,
    IncidentDispatch.ExtraAcceptance: ContractOutbox.publish_extra_acceptance,
    IncidentDispatch.Unfilled: ContractOutbox.publish_unfilled,
    IncidentDispatch.Escalated: ContractOutbox.publish_escalated,
    IncidentDispatch.Progressed: ContractOutbox.publish_progress,
    IncidentDispatch.AlarmRaised: ContractOutbox.publish_alarm_raised,
    IncidentDispatch.Cancelled: ContractOutbox.publish_cancelled,
    IncidentDispatch.DispositionNoted: ContractOutbox.publish_disposition_noted,
    ResponderRecord.NoticeRequested: ContractOutbox.publish_notice,
    **CHECK_IN_OUTBOX_HANDLERS,  # safety check-ins, pairs only, late ETA, EMS not confirmed (F1): check_ins.py
    # naloxone in the bag (F3, issue 18): naloxone_stock.py
    ResponderRecord.NaloxoneStockChanged: publish_stock_changed,
    ResponderRecord.NaloxoneLeftBehind: publish_left_behind,
    ResponderRecord.NaloxoneStockLow: publish_stock_low,
    FieldReport.Reported: publish_field_report,  # field reports by text (F2, issue 18): field_reports.py
    **REFERRAL_OUTBOX_HANDLERS,  # a referral nobody accepted in time (issue 17): referral_alerts.py
    ResponderRecord.RestStarted: publish_rest_started,  # rest after a hard call (issue 19): rest.py
    TaskWatch.Reassigned: publish_reassigned,  # overdue tasks to someone on call (issue 19): task_reassign.py
}
"""What the dispatcher publishes, by the stored domain event it publishes it for."""
