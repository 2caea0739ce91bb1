"""Responders' SMS replies: accept (with an ETA), decline, en route, arrived, done, status, help, "AT <place>",
and what they report from the field.

The keywords are read in English and Spanish from everyone (``domain/replies.py``); the answers are in the
responder's language. A reply naming a page that no longer waits for an answer is told why (withdrawn, covered),
never "not understood". ``route`` sends each command to its handler: OK and CLEAR to the check-ins
(``check_ins.py``), RESTOCK and KIT to the naloxone stock (``naloxone_stock.py``), the field reports (NARCAN, EMS,
911, NOFIND, BACKUP, VITALS) to ``field_reports.py`` once the responder is known to be on the incident. A command
whose keyword was read but a part was not is answered with that part's name (``reply_not_understood``), and
nothing is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from services.contract.events import SmsReceived
from services.dispatcher.check_ins import CheckIns
from services.dispatcher.domain.incident import IncidentDispatch, Page, PageNotOpen, PageStatus
from services.dispatcher.domain.policy import PagingPolicy
from services.dispatcher.domain.replies import Reply, parse_reply
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.field_reports import FieldReports, OnScene, is_backup_page
from services.dispatcher.naloxone_stock import NaloxoneStock
from services.dispatcher.paging import Pager, ReplyLimits
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork
from services.runtime.clock import Clock

log = logging.getLogger(__name__)

Locate = Callable[[str], "tuple[float, float] | None"]
"""Geocode a place or address a responder texted ("AT 5th and Main"); None when it can't be resolved."""

PROGRESS_COMMANDS = ("en_route", "arrived", "done")
FIELD_COMMANDS = ("naloxone", "ems_arrived", "called_911", "nofind", "backup", "vitals")
STOCK_COMMANDS = ("restock", "left_behind")
HELP_TEMPLATES = {None: "reply_help", "field": "reply_help_field", "kit": "reply_help_kit"}


class SmsReplies:
    """Turns one responder's reply into page answers, progress on scene, or a short answer back."""

    def __init__(
        self,
        cache: RosterCache,
        pager: Pager,
        clock: Clock,
        policy: PagingPolicy,
        limits: ReplyLimits,
        locate: Locate | None,
        check_ins: CheckIns | None = None,  # F1: OK/CLEAR, and the check-in side of accept, arrived and done
        stock: NaloxoneStock | None = None,  # F3: RESTOCK, KIT, and a kit out for each dose texted
    ) -> None:
        self.cache = cache
        self.pager = pager
        self.clock = clock
        self.policy = policy
        self.limits = limits
        self.locate = locate
        self.check_ins = check_ins
        self.stock = stock
        self.field = FieldReports(cache, pager, stock)

    def on_reply(self, work: UnitOfWork, received: SmsReceived) -> None:
        responder_id = self.cache.by_phone.get(received.data.from_number)
        if responder_id is None:
            return  # an unknown number: the sms.received event on the stream is the record
        record = work.record(responder_id)
        reply = parse_reply(received.data.body, self.check_ins.duress_words if self.check_ins else ())
        self.route(work, record, reply, received, self.clock.now())

    def route(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        reply: Reply,
        received: SmsReceived,
        now: datetime,
        channel: str = "sms",
    ) -> None:
        """Send one parsed command of ``record``'s responder to its handler (by text; the voice keypad builds a
        ``Reply`` and comes here too, with ``channel`` "voice", which the field reports record)."""
        if reply.problem is not None and reply.command not in STOCK_COMMANDS:
            self._not_understood(record, reply, received, now)
        elif reply.command in ("accept", "decline"):
            self._answer_page(work, record, reply, received, now)
        elif reply.command in PROGRESS_COMMANDS:
            self._progress(work, record, reply, received, now, channel)
        elif reply.command in ("ok", "clear") and self.check_ins is not None:  # F1: safety check-ins
            self.check_ins.on_reply(work, record, reply, received, now)
        elif reply.command in STOCK_COMMANDS and self.stock is not None:  # F3: naloxone in the bag
            self.stock.on_reply(work, record, reply, received, now)
        elif reply.command in FIELD_COMMANDS:
            self._field_report(work, record, reply, received, now, channel)
        elif reply.command == "status":
            self._status(record, received, now)
        elif reply.command == "help":
            self._quiet(record, HELP_TEMPLATES.get(reply.topic, "reply_help"), {}, received, now)
        elif reply.command == "at":
            self._located(record, reply.place or "", received, now)
        else:
            self._unknown(record, received, now)

    def _answer_page(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        code = self._resolve(record, reply, sorted(record.open_codes), received, now)
        if code is None:
            return
        held = record.held_code(code)
        if held is None:
            self._unknown(record, received, now)
            return
        incident = work.incident(held.incident_id)
        page = incident.page(held.page_id)
        sid = received.data.message_sid
        if reply.command == "decline":
            if page.status != PageStatus.OPEN:
                self._not_open(record, incident, page, received, now)
                return
            incident.decline(page_id=page.page_id, message_sid=sid, caused_by=received.id, at=now)
            record.close_code(code=code, at=now)
            self.pager.replace_or_climb(work, incident, page.slot, "declined", received.id)
            return
        try:
            incident.accept(page_id=page.page_id, message_sid=sid, caused_by=received.id, at=now)
        except PageNotOpen:
            if reply.minutes is not None and incident.on_it.get(str(record.responder_id)) == code:
                self._eta(work, record, incident, code, reply, received, now)  # a new ETA from someone on it
                return
            if page.status == PageStatus.ACCEPTED or incident.is_closed:
                self._not_open(record, incident, page, received, now)
                return
            # a page sent because someone on the incident texted BACKUP is always a backup when accepted
            outcome = "backup" if is_backup_page(work, page.page_id) else self.policy.second_acceptance
            incident.accept_extra(page_id=page.page_id, message_sid=sid, outcome=outcome, caused_by=received.id, at=now)
            if code in record.open_codes:
                record.close_code(code=code, at=now)
            if outcome == "backup":
                record.assign(incident_id=incident.id, code=code)
                self._eta(work, record, incident, code, reply, received, now)
            return
        if code in record.open_codes:
            record.close_code(code=code, at=now)
        record.assign(incident_id=incident.id, code=code)
        self.pager.withdraw_open(work, incident, page.slot, "covered", received.id, now)
        self._eta(work, record, incident, code, reply, received, now)
        if self.check_ins is not None:  # F1: alone on a pairs-only incident -> wait for the partner
            self.check_ins.after_accept(incident, record, received.id, now)

    def _eta(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        incident: IncidentDispatch,
        code: str,
        reply: Reply,
        received: SmsReceived,
        now: datetime,
    ) -> None:
        """``Y <code> <minutes>``: the ETA, once the responder is on the incident."""
        if reply.minutes is not None:
            self.field.eta(OnScene(work, record, incident, code, received, now), reply.minutes)

    def _progress(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        reply: Reply,
        received: SmsReceived,
        now: datetime,
        channel: str = "sms",
    ) -> None:
        on_it = self._on_incident(work, record, reply, received, now)
        if on_it is None:
            return
        incident, _code = on_it
        stage = reply.command
        incident.progress(
            responder_id=record.responder_id,
            stage=stage,
            message_sid=received.data.message_sid,
            caused_by=received.id,
            at=now,
            channel=channel,  # sms, or voice: the code and key pressed on a call in (F6)
        )
        if self.check_ins is not None:  # F1: ARRIVED starts the check-in, DONE ends it
            self.check_ins.after_progress(incident, record.responder_id, stage, channel, received.id, now)
        if stage == "done":
            record.release(incident_id=incident.id)
            if incident.is_closed:
                self.pager.withdraw_open(work, incident, None, "completed", received.id, now)

    def _field_report(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        reply: Reply,
        received: SmsReceived,
        now: datetime,
        channel: str,
    ) -> None:
        """NARCAN, EMS, 911, NOFIND, BACKUP, VITALS from a responder on the incident (``field_reports.py``)."""
        on_it = self._on_incident(work, record, reply, received, now)
        if on_it is not None:
            incident, code = on_it
            self.field.report(OnScene(work, record, incident, code, received, now, channel), reply)

    def _on_incident(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> tuple[IncidentDispatch, str] | None:
        """The incident a reply about the scene means, which the responder accepted and is still on (the code named,
        or the only one); None after answering why not (nothing is recorded)."""
        by_code = {code: incident_id for incident_id, code in record.assignments.items()}
        code = self._resolve(record, reply, sorted(by_code), received, now)
        if code is None:
            return None
        if code not in by_code:
            held = record.held_code(code)
            if held is None:
                self._unknown(record, received, now)
                return None
            incident = work.incident(held.incident_id)
            self._not_open(record, incident, incident.page(held.page_id), received, now)
            return None
        return work.incident(UUID(by_code[code])), code

    def _not_understood(self, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime) -> None:
        """The keyword was read, a part was not: which one (a fixed name), with an example of the command."""
        params = {"command": reply.command, "part": reply.problem, "code": reply.code}
        self._quiet(record, "reply_not_understood", params, received, now)

    def _resolve(
        self, record: ResponderRecord, reply: Reply, candidates: list[str], received: SmsReceived, now: datetime
    ) -> str | None:
        """The code a reply means: the one named, or the only one it can be; None after answering why not."""
        if reply.code is not None:
            return reply.code
        if len(candidates) == 1:
            return candidates[0]
        template = "reply_ambiguous" if candidates else "reply_unknown"
        self._quiet(record, template, {"codes": candidates}, received, now)
        return None

    def _located(self, record: ResponderRecord, place: str, received: SmsReceived, now: datetime) -> None:
        point = self.locate(place) if self.locate is not None and place else None
        if point is None:
            self._quiet(record, "location_unknown", {}, received, now)
            return
        record.report_location(lat=point[0], lon=point[1], at=now, label=place[:200], source="sms")
        self._answer(record, "location_noted", {}, received, now)

    def _status(self, record: ResponderRecord, received: SmsReceived, now: datetime) -> None:
        """The pages waiting for their answer, apart from the incidents they accepted and are still on."""
        accepted = sorted(set(record.assignments.values()))
        params: dict[str, list[str]] = {"codes": sorted(set(record.open_codes) - set(accepted))}
        if accepted:
            params["accepted"] = accepted
        self._quiet(record, "status_summary", params, received, now)

    def _not_open(
        self, record: ResponderRecord, incident: IncidentDispatch, page: Page, received: SmsReceived, now: datetime
    ) -> None:
        """Answer a reply to a page that no longer waits for it: withdrawn (cancelled) or covered, their own accepted
        page's status, or (declined, timed out, unreachable) the usual help."""
        template = closed_page_answer(incident, page)
        if template is not None:
            self._quiet(record, template, {"code": page.code}, received, now)
        elif page.status == PageStatus.ACCEPTED and page.responder_id == record.responder_id:
            self._status(record, received, now)
        else:
            self._unknown(record, received, now)

    def _unknown(self, record: ResponderRecord, received: SmsReceived, now: datetime) -> None:
        self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)

    def _quiet(
        self, record: ResponderRecord, template: str, params: dict, received: SmsReceived, now: datetime
    ) -> None:
        """Answer a reply that changed nothing, unless this number already had its share of those."""
        limits = self.limits
        if not record.may_answer_quiet_reply(now, limits.window, limits.limit):
            log.info("reply left unanswered: the per-number cap for no-op replies was reached")
            return
        record.count_quiet_reply(at=now, window_seconds=int(limits.window.total_seconds()))
        self._answer(record, template, params, received, now)

    @staticmethod
    def _answer(record: ResponderRecord, template: str, params: dict, received: SmsReceived, now: datetime) -> None:
        view = record.view()
        record.notify(
            to=view.phone,
            language=view.language,
            template=template,
            params=params,
            priority="P3",
            incident_id=None,
            caused_by=received.id,
            at=now,
        )


def closed_page_answer(incident: IncidentDispatch, page: Page) -> str | None:
    """The text answering a reply to ``page`` once nothing is needed of it: ``page_withdrawn`` ("was cancelled")
    when its incident was cancelled, ``page_covered`` when the incident was completed or the page withdrawn because
    someone else took it; None while the incident still needs the page's slot."""
    if incident.status == "cancelled":
        return "page_withdrawn"
    if incident.is_closed or page.status == PageStatus.WITHDRAWN:
        return "page_covered"
    return None
