"""Naloxone in the bag: each responder's kits (count, lot, expiry), what takes them out, restocks, and the
supervisor's low-stock notice.

What changes the stock, each a ``ResponderRecord`` event published as ``naloxone.stock_changed``:

- a dose given on scene (``NARCAN <code>``: ``dose_given``, called by the field reports): one kit out;
- kits left with the person or family (``KIT <code> <n> [LOT x]``: ``left_behind``): also ``naloxone.left_behind``
  with the count, the lot and the incident's zone, which the directors' metrics count by zone and month;
- a restock (``RESTOCK <n> [LOT x] [EXP yyyy-mm]`` by text, or ``naloxone.restock_reported`` from the incident
  page: ``restock``): the kits are added, and expired kits are taken out (a restock is when the bag is checked).

A kit is taken from the named lot first, then the usable kit that expires first. A responder whose stock was never
recorded has nothing to take a kit from: a dose or a kit left then changes no stock (kits left are still counted
for the metrics); their first restock records it. A kit is usable through its expiry day (UTC).

When the usable kits fall to ``low_stock`` (``CRISIS_NALOXONE_LOW_STOCK``) or below, the responder's supervisor
(else the supervisor on call) is texted ``stock_low`` once (``naloxone.stock_low``), and not again until a
restock takes the stock above it. Routing reads the stock from the roster cache (``domain/routing.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID

from services.contract.events import (
    Envelope,
    NaloxoneKits,
    NaloxoneLeftBehind,
    NaloxoneLeftBehindData,
    NaloxoneStockChanged,
    NaloxoneStockChangedData,
    NaloxoneStockLow,
    NaloxoneStockLowData,
    SmsReceived,
)
from services.dispatcher.domain.incident import IncidentDispatch, PageStatus
from services.dispatcher.domain.replies import Reply
from services.dispatcher.domain.roster import (
    NaloxoneLot,
    ResponderRecord,
    ResponderView,
    add_kits,
    kits_from_stored,
    stored_kits,
    take_kits,
    usable_kits,
)
from services.dispatcher.outbox_events import contract_event
from services.dispatcher.paging import ReplyLimits
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MOST_RESTOCKED = 100
"""Kits one ``RESTOCK`` text may add (a bigger number is taken for a typo)."""
MOST_LEFT_BEHIND = 20
"""Kits one ``KIT`` text may record as left behind (``naloxone.left_behind`` allows 1-20)."""
MOST_IN_BAG = 500
"""Kits one responder's stock may hold (a lot in ``naloxone.stock_changed`` holds at most 500): a restock that would
take the stock above it is refused, as a typo."""


class Kits(Protocol):
    """Kits of one lot, as a text or the incident page gives them (``NaloxoneLot``, or the contract's
    ``NaloxoneKits``)."""

    count: int
    lot: str | None
    expires_on: date | None


def today(now: datetime) -> date:
    """The day kits are judged on: UTC."""
    return now.astimezone(UTC).date()


class NaloxoneStock:
    """Changes responders' naloxone stock and answers the texts that change it."""

    def __init__(self, cache: RosterCache, low_stock: int = 1, limits: ReplyLimits | None = None) -> None:
        self.cache = cache
        self.low_stock = low_stock
        self.limits = limits or ReplyLimits()

    # ---- what changes the stock -----------------------------------------------------------------------

    def dose_given(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        incident_id: UUID,
        channel: str,
        message_sid: str | None,
        now: datetime,
        caused_by: UUID | None = None,
    ) -> int | None:
        """One kit out of ``record``'s bag for a dose given at ``incident_id``. The usable kits left (None: the
        stock was never recorded, and still is not)."""
        kits = record.naloxone_kits()
        if kits is None:
            log.info("a dose was given by a responder whose naloxone stock was never recorded: no stock changed")
            return None
        after = take_kits(kits, 1, today(now))
        return self._change(record, "dose_given", kits, after, incident_id, channel, message_sid, caused_by, now)

    def left_behind(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        incident: IncidentDispatch,
        count: int,
        lot: str | None,
        channel: str,
        message_sid: str | None,
        now: datetime,
        caused_by: UUID | None = None,
    ) -> int | None:
        """``count`` kits (of ``lot``, if said) left with the person or family at ``incident``: recorded for the
        metrics (with the incident's zone), and out of the bag. The usable kits left (None: never recorded)."""
        record.leave_naloxone(
            incident_id=incident.id,
            count=count,
            lot=lot,
            zone=incident.zone,
            channel=channel,
            message_sid=message_sid,
            caused_by=caused_by,
            at=now,
        )
        kits = record.naloxone_kits()
        if kits is None:
            return None
        after = take_kits(kits, count, today(now), lot)
        return self._change(record, "left_behind", kits, after, incident.id, channel, message_sid, caused_by, now)

    def restock(
        self,
        work: UnitOfWork,
        record: ResponderRecord,
        kits: Iterable[Kits],
        channel: str,
        message_sid: str | None,
        now: datetime,
        caused_by: UUID | None = None,
    ) -> int | None:
        """``kits`` added to the bag (expired ones taken out). The usable kits after; None when that would take the
        stock above ``MOST_IN_BAG`` (nothing is recorded)."""
        before = record.naloxone_kits() or []
        added = [NaloxoneLot(k.count, k.lot, k.expires_on) for k in kits]
        after = add_kits(before, added, today(now))
        if sum(k.count for k in after) > MOST_IN_BAG:
            log.warning("a restock would take a responder's naloxone stock above %d kits: not recorded", MOST_IN_BAG)
            return None
        return self._change(record, "restocked", before, after, None, channel, message_sid, caused_by, now)

    def _change(
        self,
        record: ResponderRecord,
        reason: str,
        before: Sequence[NaloxoneLot],
        after: Sequence[NaloxoneLot],
        incident_id: UUID | None,
        channel: str,
        message_sid: str | None,
        caused_by: UUID | None,
        now: datetime,
    ) -> int:
        record.change_naloxone(
            reason=reason,
            change=sum(k.count for k in after) - sum(k.count for k in before),
            kits=stored_kits(after),
            incident_id=incident_id,
            channel=channel,
            message_sid=message_sid,
            caused_by=caused_by,
            at=now,
        )
        usable = usable_kits(after, today(now))
        self._tell_if_low(record, usable, caused_by, now)
        return usable

    def _tell_if_low(self, record: ResponderRecord, usable: int, caused_by: UUID | None, now: datetime) -> None:
        """Once per fall to the threshold: the supervisor is told; a stock above it again ends the fall."""
        if usable > self.low_stock:
            if record.naloxone_low_was_told():
                record.note_naloxone_recovered(usable=usable, caused_by=caused_by, at=now)
            return
        if record.naloxone_low_was_told():
            return
        view = record.view()
        supervisor = self._supervisor(view, now)
        record.note_naloxone_low(
            usable=usable,
            threshold=self.low_stock,
            supervisor_id=supervisor.responder_id if supervisor else None,
            caused_by=caused_by,
            at=now,
        )
        if supervisor is None:
            log.warning("no supervisor to tell that a responder's naloxone stock is low")
            return
        record.tell(supervisor, "stock_low", {"responder_name": view.name, "usable": usable}, "P3", caused_by, now)

    def _supervisor(self, view: ResponderView, now: datetime) -> ResponderView | None:
        """The responder's own supervisor while active, else the supervisor on call."""
        own = self.cache.roster.get(view.supervisor_id) if view.supervisor_id else None
        if own is not None and own.active:
            return own
        return next((v for v in self.cache.on_duty(now) if v.role == "supervisor" and v.active), None)

    # ---- texts: RESTOCK and KIT -----------------------------------------------------------------------

    def on_reply(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        """``RESTOCK <n> [LOT x] [EXP yyyy-mm]`` or ``KIT <code> <n> [LOT x]``, read by ``domain/replies.py``
        (``reply.command`` restock or left_behind): change the stock and confirm, or say which part was not
        understood and change nothing."""
        if reply.problem is not None:
            self._not_understood(record, reply, reply.problem, received, now)
        elif reply.command == "restock":
            self._restock_text(work, record, reply, received, now)
        elif reply.command == "left_behind":
            self._left_behind_text(work, record, reply, received, now)

    def _restock_text(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        count, expires_on = reply.count, reply.expires_on
        if count is None or not 1 <= count <= MOST_RESTOCKED:
            self._not_understood(record, reply, "count", received, now)
            return
        if expires_on is not None and expires_on < today(now):
            self._not_understood(record, reply, "expiry", received, now)  # an expired kit is no stock
            return
        kits = [NaloxoneLot(count, reply.lot, expires_on)]
        usable = self.restock(work, record, kits, "sms", received.data.message_sid, now, caused_by=received.id)
        if usable is None:
            self._not_understood(record, reply, "count", received, now)
            return
        _answer(record, "restock_confirmed", {"added": count, "usable": usable}, received, now)

    def _left_behind_text(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        count = reply.count
        if count is None or not 1 <= count <= MOST_LEFT_BEHIND:
            self._not_understood(record, reply, "count", received, now)
            return
        found = self._incident_for(work, record, reply.code, received, now)
        if found is None:
            return
        incident, code = found
        sid = received.data.message_sid
        usable = self.left_behind(work, record, incident, count, reply.lot, "sms", sid, now, caused_by=received.id)
        params: dict[str, Any] = {"code": code, "count": count}
        if usable is not None:
            params["usable"] = usable
        _answer(record, "kits_left_noted", params, received, now)

    def _incident_for(
        self, work: UnitOfWork, record: ResponderRecord, code: str | None, received: SmsReceived, now: datetime
    ) -> tuple[IncidentDispatch, str] | None:
        """The incident a KIT text means: one the responder is on (the only one, when no code is given), or one
        they accepted lately and finished (kits are often left at the end). None after saying why not."""
        on_it = {held_code: UUID(incident_id) for incident_id, held_code in record.assignments.items()}
        if code is None:
            if len(on_it) == 1:
                code = next(iter(on_it))
            else:
                template = "reply_ambiguous" if on_it else "reply_unknown"
                self._quiet(record, template, {"codes": sorted(on_it)}, received, now)
                return None
        if code in on_it:
            return work.incident(on_it[code]), code
        held = record.held_code(code)
        if held is not None:
            incident = work.incident(held.incident_id)
            page = incident.page(held.page_id)
            if page.status == PageStatus.ACCEPTED and page.responder_id == record.responder_id:
                return incident, code
        self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)
        return None

    def _not_understood(
        self, record: ResponderRecord, reply: Reply, part: str, received: SmsReceived, now: datetime
    ) -> None:
        """Which part was not understood (a fixed name), with the code the reply had; nothing is recorded."""
        params = {"command": reply.command, "part": part, "code": reply.code}
        self._quiet(record, "reply_not_understood", params, received, now)

    def _quiet(
        self, record: ResponderRecord, template: str, params: dict, received: SmsReceived, now: datetime
    ) -> None:
        """An answer to a text that changed nothing, within the per-number cap all such answers share."""
        window = self.limits.window
        if record.may_answer_quiet_reply(now, window, self.limits.limit):
            record.count_quiet_reply(at=now, window_seconds=int(window.total_seconds()))
            _answer(record, template, params, received, now)


def _answer(
    record: ResponderRecord, template: str, params: dict[str, Any], received: SmsReceived, now: datetime
) -> None:
    """Answer the responder's text, at their phone, in their language."""
    record.tell(record.view(), template, params, "P3", received.id, now)


# ---- the outbox: stored stock events -> contract events (rows of contract_outbox.OUTBOX_HANDLERS) ---------------


def _responder_id(outbox: Any, stored: Any) -> UUID:
    record: ResponderRecord = outbox.repository.get(stored.originator_id, version=stored.originator_version)
    return record.responder_id


def publish_stock_changed(outbox: Any, stored: ResponderRecord.NaloxoneStockChanged) -> Sequence[Envelope]:
    kits = kits_from_stored(stored.kits)
    data = NaloxoneStockChangedData(
        responder_id=_responder_id(outbox, stored),
        reason=stored.reason,
        change=stored.change,
        kits=[NaloxoneKits(count=k.count, lot=k.lot, expires_on=k.expires_on) for k in kits],
        usable=usable_kits(kits, today(stored.at)),
        incident_id=stored.incident_id,
        channel=stored.channel,
        message_sid=stored.message_sid,
    )
    return (contract_event(NaloxoneStockChanged, data, stored, stored.incident_id),)


def publish_left_behind(outbox: Any, stored: ResponderRecord.NaloxoneLeftBehind) -> Sequence[Envelope]:
    data = NaloxoneLeftBehindData(
        incident_id=stored.incident_id,
        responder_id=_responder_id(outbox, stored),
        count=stored.count,
        lot=stored.lot,
        zone=stored.zone,
        channel=stored.channel,
        message_sid=stored.message_sid,
    )
    return (contract_event(NaloxoneLeftBehind, data, stored, stored.incident_id),)


def publish_stock_low(outbox: Any, stored: ResponderRecord.NaloxoneStockLow) -> Sequence[Envelope]:
    data = NaloxoneStockLowData(
        responder_id=_responder_id(outbox, stored),
        usable=stored.usable,
        threshold=stored.threshold,
        supervisor_id=stored.supervisor_id,
    )
    return (contract_event(NaloxoneStockLow, data, stored, None),)
