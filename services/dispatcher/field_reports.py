"""What a responder on an incident reports from the field by text: an ETA with the accept, a naloxone dose, EMS on
scene, 911 called, the person not found, backup, vitals.

Each report is stored once as a ``FieldReport`` (``domain/field_report.py``) holding everything its contract event
and its confirmation need; ``publish_field_report`` (a row of ``contract_outbox.OUTBOX_HANDLERS``) turns it into the
contract event (``field.*``, or the gateway's own ``incident.naloxone_administered`` / ``incident.ems_arrived``, so
the documentation reads a dose or EMS arrival one way) and the texts: the responder's confirmation, and for NOFIND
and a BACKUP nobody could give, the supervisor's alert (and the caller's text asking where the person is). What the
incident's deadlines need (ETA, 911 called, EMS arrived) the incident notes too.

``SmsReplies`` resolves the incident (the responder must be on it) before anything here runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

from services.contract.events import (
    BackupRequested,
    BackupRequestedData,
    CannotLocate,
    CannotLocateData,
    EmsArrived,
    EmsArrivedData,
    EmsCalled,
    EmsCalledData,
    Envelope,
    EtaGiven,
    EtaGivenData,
    NaloxoneAdministered,
    NaloxoneAdministeredData,
    VitalsRecorded,
    VitalsRecordedData,
    derived_id,
)
from services.dispatcher.domain.field_report import FieldReport, ReportKind
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.policy import Rung
from services.dispatcher.domain.replies import Reply
from services.dispatcher.domain.roster import ResponderRecord, ResponderView
from services.dispatcher.naloxone_stock import NaloxoneStock
from services.dispatcher.outbox_events import contract_event, notification_requested
from services.dispatcher.paging import Pager
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

NALOXONE_PRODUCTS: dict[str, tuple[str, float, str]] = {
    "nasal_4mg": ("naloxone 4 mg nasal spray", 4.0, "intranasal"),
    "injection_0_4mg": ("naloxone 0.4 mg injection", 0.4, "intramuscular"),
}
"""product -> (the name documentation shows, dose in mg, its usual route): the incident page's list (DOMAIN.md: the
common kit, 4 mg nasal, first). ``NARCAN <code>`` alone is that kit; ``IM``/``IV`` alone an injection."""
DEFAULT_PRODUCT = "nasal_4mg"
GIVEN_BY = {"peer_coach": "peer_coach", "clinician": "clinician", "nurse": "clinician", "prescriber": "clinician"}
"""The roster role -> who gave the dose, as the incident page records it (anyone else: "responder")."""


@dataclass(frozen=True)
class OnScene:
    """One field report's circumstances: who (on which incident, by which code), the reply that said it, when."""

    work: UnitOfWork
    record: ResponderRecord
    incident: IncidentDispatch
    code: str
    received: Any  # the sms.received (or the voice keypad's event): its id causes everything recorded
    now: datetime
    channel: str = "sms"

    @property
    def message_sid(self) -> str | None:
        return getattr(self.received.data, "message_sid", None) if self.channel == "sms" else None


def backup_report_id(page_id: UUID) -> UUID:
    """The id of the BACKUP report that paged ``page_id``: a page is a backup page when a report has this id."""
    return derived_id("backup-page", page_id)


def is_backup_page(store: UnitOfWork | Repository, page_id: UUID) -> bool:
    """Whether ``page_id`` was sent because someone on the incident texted BACKUP: its acceptance joins them (a
    backup, whatever the policy for a second acceptance says) and is confirmed like an accept, with the link."""
    return _stored(store, backup_report_id(page_id))


def caller_asked_id(incident_id: UUID) -> UUID:
    """The id of the NOFIND report that texted the incident's caller: they are asked once per incident."""
    return derived_id("caller-asked", incident_id)


def _stored(store: UnitOfWork | Repository, report_id: UUID) -> bool:
    try:
        store.get(report_id)
    except AggregateNotFoundError:
        return False
    return True


class FieldReports:
    """Records each field report, with what the incident's deadlines need, and pages backup."""

    def __init__(self, cache: RosterCache, pager: Pager, stock: NaloxoneStock | None = None) -> None:
        self.cache = cache
        self.pager = pager
        self.stock = stock

    def eta(self, scene: OnScene, minutes: int) -> None:
        """``Y <code> <minutes>``, after the accept: the incident notes the ETA (late -> the supervisor is told)."""
        scene.incident.note_eta(
            responder_id=scene.record.responder_id,
            minutes=minutes,
            eta_at=scene.now + timedelta(minutes=minutes),
            message_sid=scene.message_sid,
            caused_by=scene.received.id,
            at=scene.now,
        )
        self._file(scene, "eta", {"minutes": minutes})

    def report(self, scene: OnScene, reply: Reply) -> None:
        """One of ``naloxone``, ``ems_arrived``, ``called_911``, ``nofind``, ``backup``, ``vitals``."""
        if reply.command == "naloxone":
            self._naloxone(scene, reply)
        elif reply.command == "ems_arrived":
            scene.incident.note_ems_arrived(arrived_at=scene.now, caused_by=scene.received.id, at=scene.now)
            self._file(scene, "ems_arrived", {"agency": reply.agency})
        elif reply.command == "called_911":
            scene.incident.note_ems_called(
                called_at=scene.now,
                responder_id=scene.record.responder_id,
                channel=scene.channel,
                message_sid=scene.message_sid,
                caused_by=scene.received.id,
                at=scene.now,
            )
            self._file(scene, "ems_called", {})
        elif reply.command == "nofind":
            self._cannot_locate(scene)
        elif reply.command == "backup":
            self._backup(scene)
        elif reply.command == "vitals":
            self._file(scene, "vitals", dict(reply.vitals or {}))

    def _naloxone(self, scene: OnScene, reply: Reply) -> None:
        product = reply.product or ("injection_0_4mg" if reply.route in ("intramuscular", "intravenous") else None)
        name, dose_mg, usual_route = NALOXONE_PRODUCTS[product or DEFAULT_PRODUCT]
        role = GIVEN_BY.get(scene.record.view().role, "responder")
        details = {"product": name, "dose_mg": dose_mg, "route": reply.route or usual_route, "given_by_role": role}
        self._file(scene, "naloxone", details | {"response": reply.response})
        if self.stock is not None:
            record, incident = scene.record, scene.incident
            self.stock.dose_given(
                scene.work,
                record,
                incident.id,
                scene.channel,
                scene.message_sid,
                scene.now,
                caused_by=scene.received.id,
            )

    def _cannot_locate(self, scene: OnScene) -> None:
        """The supervisor is told; a caller who left a callback number is texted, once per incident, to confirm
        where the person is."""
        supervisor = self._supervisor(scene.record.view(), scene.now)
        callback = getattr(scene.incident, "callback", None)  # an incident opened before callbacks were kept: none
        asked = caller_asked_id(scene.incident.id)
        if callback is not None and _stored(scene.work, asked):
            callback = None  # asked already: one text to a caller per incident
        details = {"supervisor": _person(supervisor), "caller": callback}
        self._file(scene, "cannot_locate", details, asked if callback else None)

    def _backup(self, scene: OnScene) -> None:
        """The next qualified responder is paged at once for the incident's primary response, from its candidates
        (someone already paged for it is not paged again); nobody left -> the supervisor is told."""
        incident = scene.incident
        before = set(incident.open_pages("primary"))
        at = Rung(incident.slot("primary").step, "candidates")
        self.pager.page_step(
            scene.work, incident, "primary", scene.received.id, scene.now, at=at, count=1, record_shortfall=False
        )
        paged = [page_id for page_id in incident.open_pages("primary") if page_id not in before]
        people = [str(incident.page(page_id).responder_id) for page_id in paged]
        supervisor = None if paged else self._supervisor(scene.record.view(), scene.now)
        details = {"paged": people, "supervisor": _person(supervisor)}
        self._file(scene, "backup", details, backup_report_id(paged[0]) if paged else None)

    def _supervisor(self, view: ResponderView, now: datetime) -> ResponderView | None:
        """The responder's supervisor, else the one on call."""
        supervisor = self.cache.roster.get(view.supervisor_id) if view.supervisor_id else None
        if supervisor is None or not supervisor.active:
            supervisor = next((v for v in self.cache.on_duty(now) if v.role == "supervisor" and v.active), None)
        if supervisor is None:
            log.warning("no supervisor to tell about a field report")
        return supervisor

    @staticmethod
    def _file(scene: OnScene, kind: ReportKind, details: dict[str, Any], report_id: UUID | None = None) -> None:
        view = scene.record.view()
        report = FieldReport(
            id=report_id or derived_id("field-report", scene.received.id, kind),
            kind=kind,
            incident_id=scene.incident.id,
            responder_id=view.responder_id,
            responder_name=view.name,
            code=scene.code,
            phone=view.phone,
            language=view.language,
            priority=scene.incident.priority,
            channel=scene.channel,
            message_sid=scene.message_sid,
            details=details,
            caused_by=scene.received.id,
            at=scene.now,
        )
        scene.work.add(report)


def _person(view: ResponderView | None) -> dict[str, str] | None:
    if view is None:
        return None
    return {"responder_id": str(view.responder_id), "phone": view.phone, "language": view.language}


# ---- the outbox: a stored report -> its contract event and texts (a row of contract_outbox.OUTBOX_HANDLERS) -------


def publish_field_report(outbox: Any, reported: FieldReport.Reported) -> Sequence[Envelope]:
    """The report's contract event, the responder's confirmation, and the alerts it raised."""
    kind, details = reported.kind, reported.details
    event = contract_event(*_contract(reported), reported, reported.incident_id)
    what = kind if kind != "backup" else "backup_paged" if details["paged"] else "backup_none"
    params: dict[str, Any] = {"code": reported.code, "what": what}  # a report's kind names what was noted
    if kind == "eta":
        params["minutes"] = details["minutes"]
    texts = [_text(reported, "sms", reported.phone, reported.language, "field_noted", params)]
    supervisor = details.get("supervisor")
    if supervisor is not None and kind in ("cannot_locate", "backup"):
        caller_asked = kind == "cannot_locate" and bool(details.get("caller"))
        alert = {"responder_name": reported.responder_name, "code": reported.code, "caller_asked": caller_asked}
        alert["what"] = "cannot_locate" if kind == "cannot_locate" else "backup_unfilled"
        texts.append(_text(reported, "supervisor", supervisor["phone"], supervisor["language"], "field_alert", alert))
    if kind == "cannot_locate" and details.get("caller"):
        texts.append(_text(reported, "caller", details["caller"], "en", "caller_confirm_location", {}))
    return (event, *texts)


def _contract(reported: FieldReport.Reported) -> tuple[type[Envelope], Any]:
    """The contract event class and data of a stored report."""
    kind, d = reported.kind, reported.details
    who = {"incident_id": reported.incident_id, "responder_id": reported.responder_id, "code": reported.code}
    sid = reported.message_sid
    recorded_by = reported.responder_name[:100]
    if kind == "eta":
        eta_at = reported.at + timedelta(minutes=d["minutes"])
        return EtaGiven, EtaGivenData(**who, minutes=d["minutes"], eta_at=eta_at, message_sid=sid)
    if kind == "naloxone":
        return NaloxoneAdministered, NaloxoneAdministeredData(
            incident_id=reported.incident_id, given_at=reported.at, **d, recorded_by=recorded_by
        )
    if kind == "ems_arrived":
        data = EmsArrivedData(
            incident_id=reported.incident_id, arrived_at=reported.at, agency=d["agency"], recorded_by=recorded_by
        )
        return EmsArrived, data
    if kind == "ems_called":
        return EmsCalled, EmsCalledData(
            incident_id=reported.incident_id,
            called_at=reported.at,
            responder_id=reported.responder_id,
            channel=reported.channel,
            message_sid=sid,
            recorded_by=recorded_by,
        )
    if kind == "cannot_locate":
        supervisor = d["supervisor"]["responder_id"] if d["supervisor"] else None
        data = CannotLocateData(**who, message_sid=sid, supervisor_id=supervisor, caller_asked=bool(d["caller"]))
        return CannotLocate, data
    if kind == "backup":
        return BackupRequested, BackupRequestedData(**who, message_sid=sid, paged=d["paged"])
    data = VitalsRecordedData(**who, taken_at=reported.at, **d, channel=reported.channel, message_sid=sid)
    return VitalsRecorded, data


def _text(
    reported: FieldReport.Reported, purpose: str, to: str, language: str, template: str, params: dict[str, Any]
) -> Envelope:
    return notification_requested(
        reported,
        notification_id=derived_id(reported.originator_id, reported.originator_version, purpose),
        to=to,
        language=language,
        template=template,
        params=params,
        priority=reported.priority,
        page_id=None,
        incident_id=reported.incident_id,
    )
