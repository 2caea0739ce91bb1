"""The dispatcher's use cases: roster changes, reports, replies, failures and deadlines -> pages.

Stream events arrive through ``policy`` (saved atomically with the stream position); ``STREAM_HANDLERS``
at the bottom is the list of what the dispatcher handles. Deadlines fire through ``fire_due`` (saved with
optimistic concurrency, so two instances can't both fire one). Each use case is get -> call -> save over a
small unit of work. What other instances wrote reaches this one by following the store's notification log
(``catch_up``). After a restart the in-memory roster, schedule and open incidents come from the last roster
snapshot (``roster_cache.py``), and only the log after it is folded: a start costs the open work, not the history.

Where the rest lives: ``roster_cache.py`` (what is folded from the log), ``paging.py`` (pages and the
ladder, deciding with ``domain/ladder.py``), ``sms_replies.py`` (responders' replies), ``contract_outbox.py``
(stored domain events -> contract events and notification requests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, PersistenceError

from services.contract.events import (
    SUBJECT_PREFIX,
    CalendarImported,
    CallKeypadPressed,
    DocumentationFieldsCompleted,
    EmsArrived,
    EmsCalled,
    Envelope,
    IncidentCancelled,
    IncidentReassessed,
    IncidentReported,
    MessageDeadLettered,
    NaloxoneRestockReported,
    OverrideAdded,
    OverrideRemoved,
    ProgressReported,
    ResponderAvailabilityChanged,
    ResponderLocationReported,
    ResponderRegistered,
    ResponderRestEnded,
    ResponderRetired,
    ResponderUpdated,
    RotationDefined,
    RotationRemoved,
    SmsFailed,
    SmsOptOutChanged,
    SmsReceived,
)
from services.dispatcher.check_ins import CheckIns
from services.dispatcher.contract_outbox import PAGE_PURPOSES, ContractOutbox, page_notification_id
from services.dispatcher.domain.alerts import MessageAlert
from services.dispatcher.domain.field_policy import FieldPolicy
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.policy import PagingPolicy
from services.dispatcher.domain.referral_alert import ReferralAlert
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.domain.routing import DistanceKm, RoutingRules, haversine_km
from services.dispatcher.domain.schedule import OnCallSchedule
from services.dispatcher.naloxone_stock import NaloxoneStock
from services.dispatcher.outbox_events import PRODUCER
from services.dispatcher.paging import Pager, ReplyLimits
from services.dispatcher.referral_alerts import REFERRAL_HANDLERS, ReferralAlarms
from services.dispatcher.rest import end_rest, rest_after_hard_call
from services.dispatcher.roster_cache import FoldsWhatItStores, RosterCache, RosterSnapshots
from services.dispatcher.sms_replies import Locate, SmsReplies
from services.dispatcher.task_reassign import TASK_HANDLERS
from services.dispatcher.unit_of_work import UnitOfWork
from services.dispatcher.voice_keypad import VoiceKeypad
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor
from services.runtime.signed_links import ResponderLinks

__all__ = ["Dispatcher", "Landmark", "Locate", "ReplyLimits", "page_notification_id"]

log = logging.getLogger(__name__)

Landmark = Callable[[float, float], "str | None"]
"""The gazetteer's name for a point (an entry close enough to call the scene "near" it), or None.

What a page may call the scene: only a name from the organisation's gazetteer, never the report's text.
"""

OPTED_OUT_ERROR = 21610  # Twilio's "the recipient replied STOP", which an opt-out amounts to


class Dispatcher(FoldsWhatItStores, StreamProcessor):
    producer, partitioned = PRODUCER, True  # instances share the partitions (runtime/partitions.py)
    snapshotting_intervals = {ResponderRecord: 50, IncidentDispatch: 50, OnCallSchedule: 20}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        policy: PagingPolicy | None = None,
        rules: RoutingRules | None = None,
        distance_km: DistanceKm = haversine_km,
        locate: Locate | None = None,
        landmark: Landmark | None = None,
        reply_limits: ReplyLimits | None = None,
        links: ResponderLinks | None = None,
        naloxone_low_stock: int = 1,
        roster_snapshots: Callable[[Any], RosterSnapshots | None] | None = None,
        field_policy: FieldPolicy | None = None,  # check-ins, pairs only, late ETA, EMS (F1)
        time_zone: str = "UTC",  # the organisation's: times in texts ("by 14:05")
    ) -> None:
        super().__init__(env, clock=clock)
        self.paging = policy or PagingPolicy()
        self.landmark = landmark
        limits = reply_limits or ReplyLimits()
        self.known = RosterCache(snapshots=roster_snapshots(self) if roster_snapshots else None)
        self.pager = Pager(self.known, clock, self.paging, rules or RoutingRules(), distance_km, limits)
        self.stock = NaloxoneStock(self.known, naloxone_low_stock, limits)  # naloxone in the bag (F3)
        self.check_ins = CheckIns(self.known, clock, field_policy or FieldPolicy(), landmark)  # F1
        self.pager.field_deadlines = self.check_ins
        self.replies = SmsReplies(
            self.known, self.pager, clock, self.paging, limits, locate, check_ins=self.check_ins, stock=self.stock
        )
        self.keypad = VoiceKeypad(self.known, self.replies, self.check_ins)  # keys pressed on our calls (F5)
        self.referral_alarms = ReferralAlarms(self.known, self.paging.referral_alarm, self.check_ins.duress_words)
        self.contract_outbox = ContractOutbox(self.repository, links, time_zone)
        self.known.restore(self.repository)  # from the last roster snapshot, if any: then fold only what follows
        self.catch_up()

    @classmethod
    def handled_types(cls) -> frozenset[type[Envelope]]:
        """The events ``STREAM_HANDLERS`` names: all the dispatcher's durable consumer is sent."""
        return frozenset(STREAM_HANDLERS)

    def catch_up(self) -> None:  # fold everything stored since the last look (by any instance) into ``known``
        self.known.catch_up(self.recorder, self.repository)

    def on_call_now(self, zone: str | None, at: datetime | None = None) -> frozenset[UUID]:
        return self.known.on_call(zone, at or self.clock.now())  # who is on call for ``zone`` at ``at`` (or now)

    # ---- stream events --------------------------------------------------------------------------------

    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Run the handler ``STREAM_HANDLERS`` names. The durable's subject filter (``handled_types``) sends only those
        types; any other event (e.g. a redelivery from before the filter) only advances the tracking position."""
        handler = STREAM_HANDLERS.get(type(domain_event))
        if handler is None:
            return
        self.catch_up()
        work = UnitOfWork(self.repository)
        handler(self, work, domain_event)
        processing_event.collect_events(*work.aggregates())

    # ---- roster and schedule --------------------------------------------------------------------------

    def on_responder_profile(self, work: UnitOfWork, changed: ResponderRegistered | ResponderUpdated) -> None:
        profile = changed.data.model_dump(mode="json")
        try:
            work.record(changed.data.responder_id).update_profile(profile=profile)
        except AggregateNotFoundError:
            work.add(ResponderRecord(responder_id=changed.data.responder_id, profile=profile))

    def on_responder_retired(self, work: UnitOfWork, retired: ResponderRetired) -> None:
        if (record := _record_or_none(work, retired.data.responder_id)) is not None:
            record.retire(reason=retired.data.reason)

    def on_location_reported(self, work: UnitOfWork, reported: ResponderLocationReported) -> None:
        data = reported.data
        if (record := _record_or_none(work, data.responder_id)) is not None:
            record.report_location(
                lat=data.location.lat, lon=data.location.lon, at=data.reported_at, label=data.label, source=data.source
            )

    def on_availability_changed(self, work: UnitOfWork, changed: ResponderAvailabilityChanged) -> None:
        data = changed.data
        if (record := _record_or_none(work, data.responder_id)) is not None:
            record.change_availability(available=data.availability == "available", reason=data.reason)

    def on_rotation_defined(self, work: UnitOfWork, defined: RotationDefined) -> None:
        _schedule(work).define_rotation(spec=defined.data.model_dump(mode="json"))

    def on_rotation_removed(self, work: UnitOfWork, removed: RotationRemoved) -> None:
        _schedule(work).remove_rotation(rotation_id=str(removed.data.rotation_id))

    def on_override_added(self, work: UnitOfWork, added: OverrideAdded) -> None:
        _schedule(work).add_override(spec=added.data.model_dump(mode="json"))

    def on_override_removed(self, work: UnitOfWork, removed: OverrideRemoved) -> None:
        _schedule(work).remove_override(override_id=str(removed.data.override_id))

    def on_calendar_imported(self, work: UnitOfWork, imported: CalendarImported) -> None:
        _schedule(work).import_calendar(spec=imported.data.model_dump(mode="json"))

    # ---- incidents ------------------------------------------------------------------------------------

    def on_incident_reported(self, work: UnitOfWork, reported: IncidentReported) -> None:
        data = reported.data
        if work.incident_or_none(data.incident_id) is not None:
            return  # the same report re-published past the de-duplication window
        now = self.clock.now()
        location = data.location
        kind = data.kind.value
        incident = work.add(
            IncidentDispatch(
                id=data.incident_id,
                short_code=data.short_code,
                kind=kind,
                priority=data.priority.value,
                lat=location.lat,
                lon=location.lon,
                # what the reporter typed never reaches a page: the scene is named by the gazetteer or its zone
                area=None,
                place=self.landmark(location.lat, location.lon) if self.landmark else None,
                zone=_zone_of(data),
                needs=list(data.needs),
                call_911="ems_now" in data.needs and not (data.overdose and data.overdose.ems_called),
                team=kind in self.paging.team_kinds,
                caused_by=reported.id,
                at=now,
                reported_at=reported.occurred_at,
                risk_level=data.assessment.risk_level if data.assessment else None,
                field_deadlines=self.check_ins.opened_with(),
                callback=data.reporter.callback,  # F2: NOFIND asks the caller to confirm where the person is
            )
        )
        self.pager.page_first_step(work, incident, reported.id, now)

    def on_incident_cancelled(self, work: UnitOfWork, cancelled: IncidentCancelled) -> None:
        incident = work.incident_or_none(cancelled.data.incident_id)
        if incident is None or incident.is_closed:
            return
        now = self.clock.now()
        on_it = list(incident.on_it)
        self.pager.withdraw_open(work, incident, None, "cancelled", cancelled.id, now)
        self.check_ins.end_all(incident, "cancelled", cancelled.id, now)
        incident.cancel(reason=cancelled.data.reason, caused_by=cancelled.id, at=now)
        for responder_id in on_it:
            work.record(UUID(responder_id)).release(incident_id=incident.id)

    def on_documentation_completed(self, work: UnitOfWork, completed: DocumentationFieldsCompleted) -> None:
        """A disposition recorded (the first one) answers a NOBODY ACCEPTED alarm; a death or a reversal: rest."""
        disposition = completed.data.fields.disposition
        incident = work.incident_or_none(completed.data.incident_id)
        if incident is not None:  # issue 19: rest.py
            rest_after_hard_call(work, incident, completed, self.paging.rest_hours, self.clock.now())
        if disposition is None or incident is None or incident.recorded_disposition() is not None:
            return
        incident.note_disposition(disposition=disposition, caused_by=completed.id, at=self.clock.now())

    # ---- re-assessment on scene (F4) ------------------------------------------------------------------

    def on_incident_reassessed(self, work: UnitOfWork, reassessed: IncidentReassessed) -> None:
        """A clinician re-scored the person on scene and triage gave another priority: recorded, and the
        supervisor (of the clinician, else the one on duty) is told; the same priority changes nothing."""
        data = reassessed.data
        incident = work.incident_or_none(data.incident_id)
        if incident is None or incident.is_closed or data.priority.value == incident.priority:
            return
        now, previous = self.clock.now(), incident.priority
        incident.reprioritize(priority=data.priority.value, caused_by=reassessed.id, at=now)
        clinician = self.known.roster.get(data.responder_id) if data.responder_id else None
        supervisor = self.known.roster.get(clinician.supervisor_id) if clinician and clinician.supervisor_id else None
        if supervisor is None or not supervisor.active:
            supervisor = next((v for v in self.known.on_duty(now) if v.role == "supervisor"), None)
        if supervisor is None:
            log.warning("no supervisor to tell that a re-assessment changed an incident's priority")
            return
        work.record(supervisor.responder_id).notify(
            to=supervisor.phone,
            language=supervisor.language,
            template="priority_changed",
            params={"code": incident.short_code, "from_priority": previous, "to_priority": data.priority.value},
            priority=data.priority.value,
            incident_id=incident.id,
            caused_by=reassessed.id,
            at=now,
        )

    # ---- naloxone in the bag (F3): naloxone_stock.py ---------------------------------------------------

    def on_restock_reported(self, work: UnitOfWork, reported: NaloxoneRestockReported) -> None:
        """Kits restocked, entered on the incident page: added to the responder's bag (the page shows it)."""
        if (record := _record_or_none(work, reported.data.responder_id)) is not None:
            self.stock.restock(work, record, reported.data.kits, "app", None, self.clock.now(), caused_by=reported.id)

    def on_ems_called(self, work: UnitOfWork, called: EmsCalled) -> None:
        """911 called, pressed on the incident page (a text's ``911`` is noted by ``field_reports``): noted on the
        incident, the first report counting; the dispatcher's own ``field.ems_called`` is not taken in again."""
        data = called.data
        if called.producer == PRODUCER or data.channel != "app":
            return
        incident = work.incident_or_none(data.incident_id)
        if incident is None or incident.field_state()["ems_called_at"] is not None:
            return
        incident.note_ems_called(
            called_at=data.called_at,
            responder_id=data.responder_id,
            channel="app",
            message_sid=None,
            caused_by=called.id,
            at=self.clock.now(),
        )

    def on_ems_arrived(self, work: UnitOfWork, arrived: EmsArrived) -> None:
        """EMS on scene, recorded on the incident page or through the gateway (a text's ``EMS`` is noted by
        ``field_reports``, F2): noted on the incident, the first report counting, so EMS is no longer awaited."""
        if arrived.producer == PRODUCER:
            return
        incident = work.incident_or_none(arrived.data.incident_id)
        if incident is None or incident.field_state()["ems_arrived_at"] is not None:
            return
        incident.note_ems_arrived(arrived_at=arrived.data.arrived_at, caused_by=arrived.id, at=self.clock.now())

    # ---- messaging ------------------------------------------------------------------------------------

    def on_keypad_pressed(self, work: UnitOfWork, pressed: CallKeypadPressed) -> None:
        """A key pressed on a page or check-in call: the command it stands for, as if texted (voice_keypad.py)."""
        self.keypad.on_pressed(work, pressed, self.clock.now())

    def on_sms_received(self, work: UnitOfWork, received: SmsReceived) -> None:
        if not self.referral_alarms.on_reply(work, received, self.clock.now()):  # Y <a referral's code>: taken
            self.replies.on_reply(work, received)

    def on_progress_reported(self, work: UnitOfWork, reported: ProgressReported) -> None:
        """En route, on scene or done pressed on the responder's incident page: recorded as the same words
        texted would be, while that responder is on the incident; otherwise nothing is recorded."""
        data = reported.data
        incident = work.incident_or_none(data.incident_id)
        if incident is None or str(data.responder_id) not in incident.on_it:
            log.info("progress reported on the incident page by a responder not on it: nothing recorded")
            return
        now = self.clock.now()
        incident.progress(
            responder_id=data.responder_id,
            stage=data.stage,
            message_sid=None,
            caused_by=reported.id,
            at=now,
            reported_by=data.reported_by,
        )
        self.check_ins.after_progress(incident, data.responder_id, data.stage, "app", reported.id, now)
        if data.stage == "done":
            work.record(data.responder_id).release(incident_id=incident.id)
            if incident.is_closed:
                self.pager.withdraw_open(work, incident, None, "completed", reported.id, now)

    def on_sms_failed(self, work: UnitOfWork, failed: SmsFailed) -> None:
        """A page's text or call could not be delivered: that page is unreachable."""
        if failed.incident_id is None or (incident := work.incident_or_none(failed.incident_id)) is None:
            return
        notification_id = failed.data.notification_id
        for page_id in incident.open_pages():
            if notification_id in {page_notification_id(page_id, purpose) for purpose in PAGE_PURPOSES}:
                reason = f"message could not be delivered: {failed.data.error_message}"[:300]
                self.pager.mark_unreachable(work, incident, page_id, failed.id, failed.data.error_code, reason)

    def on_opt_out_changed(self, work: UnitOfWork, changed: SmsOptOutChanged) -> None:
        """A responder who texts STOP can't be paged: their open pages are unreachable, their supervisor told."""
        data = changed.data
        responder_id = self.known.by_phone.get(data.phone)
        if responder_id is None:
            return
        record = work.record(responder_id)
        if record.opted_out == data.opted_out:
            return
        now = self.clock.now()
        record.change_opt_out(opted_out=data.opted_out, at=now)
        if not data.opted_out:
            return
        for held in record.open_held_codes():
            incident = work.incident(held.incident_id)
            reason = "the responder opted out of SMS"
            self.pager.mark_unreachable(work, incident, held.page_id, changed.id, OPTED_OUT_ERROR, reason)
        self.pager.tell_supervisor(record, "opted_out", changed.id, now)

    def on_message_dead_lettered(self, work: UnitOfWork, dead: MessageDeadLettered) -> None:
        """A consumer gave up on a message, which may have been an incident: a person must look now.

        The on-call supervisor gets an urgent, PHI-free system alert naming the service and the message's
        stream sequence (the clinical directors when no supervisor is on call), once per message however many
        consumers gave up on it. A dead letter about a dead letter alerts nobody, so a failure here cannot
        feed itself.
        """
        data = dead.data
        if data.original_subject == f"{SUBJECT_PREFIX}.{MessageDeadLettered.TYPE}":
            log.error("a dead-letter event itself could not be processed (seq %s)", data.stream_sequence)
            return
        try:
            alert: MessageAlert = work.get(MessageAlert.create_id(data.stream_sequence))
        except AggregateNotFoundError:
            work.add(MessageAlert(stream_sequence=data.stream_sequence, consumer=data.consumer))
        else:
            alert.also_given_up(consumer=data.consumer)  # already paged about this message
            return
        now = self.clock.now()
        supervisors = [v for v in self.known.on_duty(now) if v.role == "supervisor" and v.active]
        people = supervisors[:1] or self.known.active_with_role("director")
        if not people:
            log.error("nobody to alert about dead letter seq %s", data.stream_sequence)
        for person in people:
            work.record(person.responder_id).notify(
                to=person.phone,
                language=person.language,
                template="system_alert",
                params={"reference": f"DL-{data.stream_sequence}", "service": data.consumer},
                priority="P1",
                incident_id=data.original_incident_id(),
                caused_by=dead.id,
                at=now,
            )

    # ---- deadlines ------------------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        return self.known.next_deadline()

    def fire_due(self) -> int:
        """Fire every reminder, voice call, acknowledgement deadline and NOBODY ACCEPTED or referral alarm repeat
        that has passed; how many. Safe on several instances at once: saving is optimistic, so when two fire the
        same deadline one save conflicts and is dropped, and the other's events reach it via ``catch_up``."""
        fired = 0
        with self.processing_lock:
            self.catch_up()
            now = self.clock.now()
            for incident_id in self.known.due_incidents(now):
                try:
                    fired += self._fire(incident_id, now)
                except IntegrityError:
                    log.info("a deadline was fired by another instance first")
                except (PersistenceError, OSError):
                    raise  # the store is down: every deadline is still in it; the ticker tries again
                except Exception:  # one broken incident must not hold back every other incident's deadlines
                    log.exception("the deadlines of one incident could not be fired; the others still are")
            self.catch_up()
        return fired

    def _fire(self, incident_id: UUID, now: datetime) -> int:
        work = UnitOfWork(self.repository)
        due = work.get(incident_id)  # an incident, or a referral's alarm (referral_alerts.py)
        fired = (self.referral_alarms if isinstance(due, ReferralAlert) else self.pager).fire_due(work, due, now)
        self.save(*work.aggregates())
        return fired

    # ---- outbox ---------------------------------------------------------------------------------------

    def outbox(self, domain_event: Any) -> Sequence[Envelope]:  # what to publish for it: OUTBOX_HANDLERS
        return self.contract_outbox.translate(domain_event)


def _schedule(work: UnitOfWork) -> OnCallSchedule:
    try:
        return work.get(OnCallSchedule.create_id())
    except AggregateNotFoundError:
        return work.add(OnCallSchedule())


def _record_or_none(work: UnitOfWork, responder_id: UUID) -> ResponderRecord | None:
    try:
        return work.record(responder_id)
    except AggregateNotFoundError:
        log.warning("roster event for an unknown responder ignored")
        return None


def _zone_of(data: Any) -> str | None:
    """The service zone intake resolved, if any (None: outside every zone, or not resolved)."""
    return getattr(data, "zone", None) or getattr(data.location, "zone", None)


StreamHandler = Callable[[Dispatcher, UnitOfWork, Any], None]

STREAM_HANDLERS: dict[type[Envelope], StreamHandler] = {
    ResponderRegistered: Dispatcher.on_responder_profile,
    ResponderUpdated: Dispatcher.on_responder_profile,
    ResponderRetired: Dispatcher.on_responder_retired,
    ResponderLocationReported: Dispatcher.on_location_reported,
    ResponderAvailabilityChanged: Dispatcher.on_availability_changed,
    RotationDefined: Dispatcher.on_rotation_defined,
    RotationRemoved: Dispatcher.on_rotation_removed,
    OverrideAdded: Dispatcher.on_override_added,
    OverrideRemoved: Dispatcher.on_override_removed,
    CalendarImported: Dispatcher.on_calendar_imported,
    IncidentReported: Dispatcher.on_incident_reported,
    IncidentCancelled: Dispatcher.on_incident_cancelled,
    DocumentationFieldsCompleted: Dispatcher.on_documentation_completed,
    SmsReceived: Dispatcher.on_sms_received,
    CallKeypadPressed: Dispatcher.on_keypad_pressed,  # F5: the voice keypad
    ProgressReported: Dispatcher.on_progress_reported,
    SmsFailed: Dispatcher.on_sms_failed,
    SmsOptOutChanged: Dispatcher.on_opt_out_changed,
    MessageDeadLettered: Dispatcher.on_message_dead_lettered,
    NaloxoneRestockReported: Dispatcher.on_restock_reported,  # F3
    IncidentReassessed: Dispatcher.on_incident_reassessed,  # F4
    EmsCalled: Dispatcher.on_ems_called,  # F4: 911 called on the incident page
    EmsArrived: Dispatcher.on_ems_arrived,  # F2: EMS on scene from the incident page or the gateway
    **REFERRAL_HANDLERS,  # a referral nobody accepted in time, paged until taken (issue 17): referral_alerts.py
    ResponderRestEnded: lambda dispatcher, work, ended: end_rest(work, ended, dispatcher.clock.now()),  # rest.py
    **TASK_HANDLERS,  # overdue follow-up tasks go to someone on call (issue 19): task_reassign.py
}
"""What the dispatcher does for each contract event it consumes; its durable is filtered to exactly these types."""
