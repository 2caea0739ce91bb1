"""The dispatcher's use cases: roster changes, reports, replies, failures and deadlines -> pages.

Stream events arrive through ``policy`` (saved atomically with the stream position); deadlines fire
through ``fire_due`` (saved with optimistic concurrency, so two instances can't both fire one). Each use
case is get -> call -> save over a small unit of work. What other instances wrote reaches this one by
following the store's notification log (``catch_up``), which also rebuilds the in-memory roster, schedule
and deadline index after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError

from services.contract.events import (
    SUBJECT_PREFIX,
    CalendarImported,
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
    IncidentCancelled,
    IncidentReported,
    MessageDeadLettered,
    NotificationRequested,
    NotificationRequestedData,
    OverrideAdded,
    OverrideRemoved,
    PageReason,
    ResponderArrived,
    ResponderAvailabilityChanged,
    ResponderEnRoute,
    ResponderLocationReported,
    ResponderProgressData,
    ResponderRegistered,
    ResponderRetired,
    ResponderUpdated,
    RotationDefined,
    RotationRemoved,
    SmsFailed,
    SmsOptOutChanged,
    SmsReceived,
    derived_id,
    new_event,
)
from services.contract.templates import place_ref
from services.dispatcher.domain.alerts import MessageAlert
from services.dispatcher.domain.incident import IncidentDispatch, PageNotOpen
from services.dispatcher.domain.policy import FRONT_LINE, PagingPolicy, Rung, next_rung
from services.dispatcher.domain.replies import Reply, free_code, parse_reply
from services.dispatcher.domain.roster import ResponderRecord, ResponderView
from services.dispatcher.domain.routing import (
    DistanceKm,
    Request,
    RoutingRules,
    Selection,
    SpatialIndex,
    haversine_km,
    select_candidates,
)
from services.dispatcher.domain.schedule import OnCallSchedule, Rotation, Window, on_call
from services.runtime.clock import Clock
from services.runtime.processor import StreamProcessor

log = logging.getLogger(__name__)

PRODUCER = "dispatcher"

Locate = Callable[[str], "tuple[float, float] | None"]
"""Geocode a place or address a responder texted ("AT 5th and Main"); None when it can't be resolved."""

Landmark = Callable[[float, float], "str | None"]
"""The gazetteer's name for a point (an entry close enough to call the scene "near" it), or None.

What a page may call the scene: only a name from the organisation's gazetteer, never the report's text.
"""


@dataclass(frozen=True)
class ReplyLimits:
    """Answers to replies that change nothing: at most ``limit`` per ``window`` per responder."""

    limit: int = 5
    window: timedelta = timedelta(minutes=15)
    code_reuse_after: timedelta = timedelta(hours=24)


@dataclass
class KnownState:
    """What this instance has folded from the store's notification log: roster, schedule, deadlines."""

    position: int = 0
    roster: dict[UUID, ResponderView] = field(default_factory=dict)
    record_ids: dict[UUID, UUID] = field(default_factory=dict)  # responder id -> aggregate id
    by_phone: dict[str, UUID] = field(default_factory=dict)
    index: SpatialIndex = field(default_factory=SpatialIndex)
    rotations: list[Rotation] = field(default_factory=list)
    shifts: list[Window] = field(default_factory=list)
    overrides: list[Window] = field(default_factory=list)
    deadlines: dict[UUID, datetime] = field(default_factory=dict)  # incident id -> next deadline


class Work:
    """The aggregates one use case touches, loaded once each, saved together."""

    def __init__(self, app: Dispatcher) -> None:
        self.app = app
        self.loaded: dict[UUID, Aggregate] = {}

    def get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            self.loaded[aggregate_id] = self.app.repository.get(aggregate_id)
        return self.loaded[aggregate_id]

    def add(self, aggregate: Aggregate) -> Any:
        self.loaded[aggregate.id] = aggregate
        return aggregate

    def record(self, responder_id: UUID) -> ResponderRecord:
        return self.get(ResponderRecord.create_id(responder_id))

    def aggregates(self) -> list[Aggregate]:
        return list(self.loaded.values())


def page_notification_id(page_id: UUID, purpose: str) -> UUID:
    """Notification ids of a page are derived from it, so a failure report finds its page."""
    return derived_id("page", page_id, purpose)


PAGE_PURPOSES = ("offer", "reminder", "voice")


class Dispatcher(StreamProcessor):
    producer = PRODUCER
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
    ) -> None:
        super().__init__(env, clock=clock)
        self.paging = policy or PagingPolicy()
        self.rules = rules or RoutingRules()
        self.distance_km = distance_km
        self.locate = locate
        self.landmark = landmark
        self.reply_limits = reply_limits or ReplyLimits()
        self.known = KnownState()
        self.catch_up()

    # ---- following our own log: roster, schedule and deadlines in memory ----------------------------

    def catch_up(self) -> None:
        """Fold everything stored since the last look (by this instance or another) into ``known``."""
        while True:
            notifications = self.recorder.select_notifications(start=self.known.position + 1, limit=500)
            if not notifications:
                return
            changed: dict[UUID, str] = {}
            for notification in notifications:
                changed[notification.originator_id] = notification.topic
            for aggregate_id, topic in changed.items():
                self._refresh(aggregate_id, topic)
            self.known.position = notifications[-1].id

    def _refresh(self, aggregate_id: UUID, topic: str) -> None:
        aggregate = self.repository.get(aggregate_id)
        known = self.known
        if isinstance(aggregate, ResponderRecord):
            view = aggregate.view()
            old = known.roster.get(view.responder_id)
            if old is not None and known.by_phone.get(old.phone) == view.responder_id:
                del known.by_phone[old.phone]
            known.roster[view.responder_id] = view
            known.record_ids[view.responder_id] = aggregate.id
            if view.active:
                known.by_phone[view.phone] = view.responder_id
                known.index.place(view)
            else:
                known.index.remove(view.responder_id)
        elif isinstance(aggregate, OnCallSchedule):
            known.rotations = aggregate.rotations()
            known.shifts = aggregate.shifts()
            known.overrides = aggregate.overrides()
        elif isinstance(aggregate, IncidentDispatch):
            deadline = aggregate.next_deadline()
            if deadline is None or aggregate.is_closed:
                known.deadlines.pop(aggregate.id, None)
            else:
                known.deadlines[aggregate.id] = deadline

    def on_call_now(self, zone: str | None, at: datetime | None = None) -> frozenset[UUID]:
        """Who is on call for ``zone`` at ``at`` (default: now)."""
        known = self.known
        return on_call(known.rotations, known.shifts, known.overrides, at or self.clock.now(), zone)

    # ---- stream events --------------------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other events only advance the tracking position."""

    def _apply(self, processing_event: ProcessingEvent, use_case: Callable[[Work], None]) -> None:
        self.catch_up()
        work = Work(self)
        use_case(work)
        processing_event.collect_events(*work.aggregates())

    @policy.register
    def _(self, registered: ResponderRegistered, processing_event: ProcessingEvent) -> None:
        self._apply(processing_event, lambda work: self._set_profile(work, registered.data))

    @policy.register
    def _(self, updated: ResponderUpdated, processing_event: ProcessingEvent) -> None:
        self._apply(processing_event, lambda work: self._set_profile(work, updated.data))

    def _set_profile(self, work: Work, profile: Any) -> None:
        try:
            work.record(profile.responder_id).update_profile(profile=profile.model_dump(mode="json"))
        except AggregateNotFoundError:
            work.add(ResponderRecord(responder_id=profile.responder_id, profile=profile.model_dump(mode="json")))

    @policy.register
    def _(self, retired: ResponderRetired, processing_event: ProcessingEvent) -> None:
        def use_case(work: Work) -> None:
            if (record := self._record_or_none(work, retired.data.responder_id)) is not None:
                record.retire(reason=retired.data.reason)

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, reported: ResponderLocationReported, processing_event: ProcessingEvent) -> None:
        data = reported.data

        def use_case(work: Work) -> None:
            if (record := self._record_or_none(work, data.responder_id)) is not None:
                record.report_location(
                    lat=data.location.lat,
                    lon=data.location.lon,
                    at=data.reported_at,
                    label=data.label,
                    source=data.source,
                )

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, changed: ResponderAvailabilityChanged, processing_event: ProcessingEvent) -> None:
        data = changed.data

        def use_case(work: Work) -> None:
            if (record := self._record_or_none(work, data.responder_id)) is not None:
                record.change_availability(available=data.availability == "available", reason=data.reason)

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, defined: RotationDefined, processing_event: ProcessingEvent) -> None:
        spec = defined.data.model_dump(mode="json")
        self._apply(processing_event, lambda work: self._schedule(work).define_rotation(spec=spec))

    @policy.register
    def _(self, removed: RotationRemoved, processing_event: ProcessingEvent) -> None:
        rotation_id = str(removed.data.rotation_id)
        self._apply(processing_event, lambda work: self._schedule(work).remove_rotation(rotation_id=rotation_id))

    @policy.register
    def _(self, added: OverrideAdded, processing_event: ProcessingEvent) -> None:
        spec = added.data.model_dump(mode="json")
        self._apply(processing_event, lambda work: self._schedule(work).add_override(spec=spec))

    @policy.register
    def _(self, removed: OverrideRemoved, processing_event: ProcessingEvent) -> None:
        override_id = str(removed.data.override_id)
        self._apply(processing_event, lambda work: self._schedule(work).remove_override(override_id=override_id))

    @policy.register
    def _(self, imported: CalendarImported, processing_event: ProcessingEvent) -> None:
        spec = imported.data.model_dump(mode="json")
        self._apply(processing_event, lambda work: self._schedule(work).import_calendar(spec=spec))

    def _schedule(self, work: Work) -> OnCallSchedule:
        try:
            return work.get(OnCallSchedule.create_id())
        except AggregateNotFoundError:
            return work.add(OnCallSchedule())

    def _record_or_none(self, work: Work, responder_id: UUID) -> ResponderRecord | None:
        try:
            return work.record(responder_id)
        except AggregateNotFoundError:
            log.warning("roster event for an unknown responder ignored")
            return None

    @policy.register
    def _(self, reported: IncidentReported, processing_event: ProcessingEvent) -> None:
        data = reported.data
        if self._exists(data.incident_id):
            return  # the same report re-published past the de-duplication window

        def use_case(work: Work) -> None:
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
                    # what the reporter typed (address, place, access notes) never reaches a page: the
                    # scene is named from the coordinates, by the gazetteer, or by its zone
                    area=None,
                    place=self.landmark(location.lat, location.lon) if self.landmark else None,
                    zone=_zone_of(data),
                    needs=list(data.needs),
                    call_911="ems_now" in data.needs and not (data.overdose and data.overdose.ems_called),
                    team=kind in self.paging.team_kinds,
                    caused_by=reported.id,
                    at=now,
                )
            )
            for slot in incident.slots:
                self._page_or_escalate(work, incident, slot, reported.id, now)

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, received: SmsReceived, processing_event: ProcessingEvent) -> None:
        self._apply(processing_event, lambda work: self._reply(work, received))

    @policy.register
    def _(self, failed: SmsFailed, processing_event: ProcessingEvent) -> None:
        if failed.incident_id is None:
            return

        def use_case(work: Work) -> None:
            try:
                incident: IncidentDispatch = work.get(failed.incident_id)
            except AggregateNotFoundError:
                return
            notification_id = failed.data.notification_id
            for page_id in incident.open_pages():
                if notification_id in {page_notification_id(page_id, p) for p in PAGE_PURPOSES}:
                    reason = f"message could not be delivered: {failed.data.error_message}"[:300]
                    self._unreachable(work, incident, page_id, failed.id, failed.data.error_code, reason)
                    self._replace_or_advance(work, incident, incident.page(page_id)["slot"], "unreachable", failed.id)

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, changed: SmsOptOutChanged, processing_event: ProcessingEvent) -> None:
        data = changed.data

        def use_case(work: Work) -> None:
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
            for held in list(record.open_codes.values()):
                incident: IncidentDispatch = work.get(UUID(held["incident_id"]))
                page_id = UUID(held["page_id"])
                self._unreachable(work, incident, page_id, changed.id, 21610, "the responder opted out of SMS")
                self._replace_or_advance(work, incident, incident.page(page_id)["slot"], "unreachable", changed.id)
            self._tell_supervisor(work, record, "opted_out", changed.id, now)

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, dead: MessageDeadLettered, processing_event: ProcessingEvent) -> None:
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

        def use_case(work: Work) -> None:
            try:
                alert: MessageAlert = work.get(MessageAlert.create_id(data.stream_sequence))
            except AggregateNotFoundError:
                work.add(MessageAlert(stream_sequence=data.stream_sequence, consumer=data.consumer))
            else:
                alert.also_given_up(consumer=data.consumer)  # already paged about this message
                return
            now = self.clock.now()
            on_duty = [v for r in sorted(self.on_call_now(None), key=str) if (v := self.known.roster.get(r))]
            supervisors = [v for v in on_duty if v.role == "supervisor" and v.active]
            people = supervisors[:1] or [v for v in self.known.roster.values() if v.role == "director" and v.active]
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

        self._apply(processing_event, use_case)

    @policy.register
    def _(self, cancelled: IncidentCancelled, processing_event: ProcessingEvent) -> None:
        incident_id = cancelled.data.incident_id

        def use_case(work: Work) -> None:
            try:
                incident: IncidentDispatch = work.get(incident_id)
            except AggregateNotFoundError:
                return
            if incident.is_closed:
                return
            now = self.clock.now()
            on_it = list(incident.on_it)
            self._withdraw_open(work, incident, None, "cancelled", cancelled.id, now)
            incident.cancel(reason=cancelled.data.reason, caused_by=cancelled.id, at=now)
            for responder_id in on_it:
                work.record(UUID(responder_id)).release(incident_id=incident.id)

        self._apply(processing_event, use_case)

    # ---- paging and the ladder ------------------------------------------------------------------------

    def _page_or_escalate(self, work: Work, incident: IncidentDispatch, slot: str, cause: UUID, now: datetime) -> None:
        """Page the slot's current step; when nobody can be paged, climb the ladder at once."""
        selection = self._page_step(work, incident, slot, cause, now)
        if not selection.candidates:
            reason = "nobody_qualified" if "nobody_with_skill" in selection.shortfalls else "nobody_to_page"
            self._advance(work, incident, slot, reason, cause)

    def _replace_or_advance(
        self, work: Work, incident: IncidentDispatch, slot: str, reason: str, cause: UUID | None
    ) -> None:
        """One of several pages of a step said no or can't be reached: page a replacement at once.

        With nobody else still open, that is the ladder's next step instead.
        """
        state = incident.slots[slot]
        if incident.open_pages(slot) and state["covered_by"] is None and not incident.is_closed:
            self._page_step(work, incident, slot, cause, self.clock.now(), count=1, record_shortfall=False)
        else:
            self._advance(work, incident, slot, reason, cause)

    def _advance(self, work: Work, incident: IncidentDispatch, slot: str, reason: str, cause: UUID | None) -> None:
        """Nobody holds this slot and nobody is left waiting for: go up the ladder until someone is paged."""
        now = self.clock.now()
        while incident.needs_escalation(slot):
            state = incident.slots[slot]
            following = next_rung(
                Rung(state["step"], state["rung"]), slot, self.paging, nobody_qualified=reason == "nobody_qualified"
            )
            if following is None:
                incident.record_unfilled(
                    slot=slot,
                    step=state["step"],
                    rung=state["rung"],
                    shortfalls=["ladder_exhausted"],
                    reason="every step of the escalation ladder was tried without an acceptance",
                    caused_by=cause,
                    at=now,
                )
                incident.exhaust(slot=slot, caused_by=cause, at=now)
                return
            incident.escalate(
                slot=slot, to_step=following.step, to_rung=following.rung, reason=reason, caused_by=cause, at=now
            )
            selection = self._page_step(work, incident, slot, cause, now)
            if selection.candidates:
                return
            reason = "nobody_to_page"

    def _page_step(
        self,
        work: Work,
        incident: IncidentDispatch,
        slot: str,
        cause: UUID | None,
        now: datetime,
        *,
        count: int | None = None,
        record_shortfall: bool = True,
    ) -> Selection:
        """Page the slot's current step (or ``count`` replacements in it); record why when nobody can be."""
        state = incident.slots[slot]
        rung = state["rung"]
        step_policy = self.paging.step(incident.priority)
        exclude = frozenset(UUID(r) for s in incident.slots.values() for r in s["tried"])
        location = (incident.lat, incident.lon)
        rules = self.rules
        if rung == "candidates" and slot == "primary":
            wanted = count or step_policy.pages_at_once
            request = Request(location, now, wanted, tuple(incident.needs), FRONT_LINE, exclude)
            pool, rule = (
                self.on_call_now(incident.zone),
                f"{incident.priority}: best {step_policy.pages_at_once} on call",
            )
        elif rung == "candidates":
            request = Request(
                location,
                now,
                1,
                ("naloxone_carrier",) if incident.kind == "overdose" else (),
                frozenset({"peer_coach"}),
                exclude,
            )
            pool, rule = self.on_call_now(incident.zone), "two-person team: nearest peer coach on call"
        else:
            roles = frozenset({rung})
            request = Request(location, now, 1, (), roles, exclude)
            rules = RoutingRules(rules.stale_after, float("inf"), busy_at_load=10**6, measured=rules.measured)
            pool = self.on_call_now(incident.zone) or self.on_call_now(None)
            if rung == "director" and not self._any_with_role(pool, "director"):
                pool = frozenset(r for r, v in self.known.roster.items() if v.role == "director" and v.active)
            rule = f"escalation: the on-call {'supervisor' if rung == 'supervisor' else 'clinical director'}"
        selection = select_candidates(self.known.roster, pool, request, rules, self.distance_km, self.known.index)
        if not selection.candidates and record_shortfall:
            incident.record_unfilled(
                slot=slot,
                step=state["step"],
                rung=rung,
                shortfalls=list(selection.shortfalls),
                reason=_shortfall_sentence(selection.shortfalls, rung),
                caused_by=cause,
                at=now,
            )
        if not selection.candidates:
            return selection
        for candidate in selection.candidates:
            responder = candidate.responder
            record = work.record(responder.responder_id)
            code = free_code(incident.short_code, record.codes_in_use(now, self.reply_limits.code_reuse_after))
            page_id = derived_id("page", incident.id, slot, state["step"], responder.responder_id)
            incident.offer(
                page_id=page_id,
                slot=slot,
                responder_id=responder.responder_id,
                responder_role=responder.role,
                phone=responder.phone,
                language=responder.language,
                code=code,
                step=state["step"],
                rung=rung,
                ack_deadline=now + step_policy.ack_timeout,
                reminder_at=now + step_policy.reminder_after if step_policy.reminder_after else None,
                voice_at=now + step_policy.voice_after if step_policy.voice_after else None,
                distance_km=candidate.distance_km,
                reason={
                    "on_call": True,
                    "skills_matched": list(candidate.skills_matched),
                    "distance_km": candidate.distance_km,
                    "load": responder.load,
                    "rule": rule,
                    "rung": rung,
                    "team_role": {"supervisor": "supervisor", "director": "director"}.get(
                        rung, "peer" if slot == "peer" else "primary"
                    ),
                    "location_source": candidate.location_source,
                    "location_age_minutes": candidate.location_age_minutes,
                },
                caused_by=cause,
                at=now,
            )
            record.open_code(code=code, incident_id=incident.id, page_id=page_id)
        return selection

    def _any_with_role(self, pool: Iterable[UUID], role: str) -> bool:
        return any((v := self.known.roster.get(r)) is not None and v.role == role and v.active for r in pool)

    def _close_code(self, work: Work, incident: IncidentDispatch, page_id: UUID, now: datetime) -> None:
        page = incident.page(page_id)
        work.record(UUID(page["responder_id"])).close_code(code=page["code"], at=now)

    def _unreachable(
        self, work: Work, incident: IncidentDispatch, page_id: UUID, cause: UUID, error: int | None, reason: str
    ) -> None:
        now = self.clock.now()
        incident.mark_unreachable(
            page_id=page_id, notification_id=None, error_code=error, reason=reason, caused_by=cause, at=now
        )
        self._close_code(work, incident, page_id, now)

    def _withdraw_open(
        self, work: Work, incident: IncidentDispatch, slot: str | None, reason: str, cause: UUID, now: datetime
    ) -> None:
        for other in incident.open_pages(slot):
            incident.withdraw(page_id=other, reason=reason, caused_by=cause, at=now)
            self._close_code(work, incident, other, now)

    def _tell_supervisor(self, work: Work, record: ResponderRecord, why: str, cause: UUID, now: datetime) -> None:
        view = record.view()
        supervisor = self.known.roster.get(view.supervisor_id) if view.supervisor_id else None
        if supervisor is None or not supervisor.active:
            on_duty = self.on_call_now(None)
            supervisor = next(
                (v for r in sorted(on_duty, key=str) if (v := self.known.roster.get(r)) and v.role == "supervisor"),
                None,
            )
        if supervisor is None:
            log.warning("no supervisor to tell that a responder is unreachable")
            return
        record.notify(
            to=supervisor.phone,
            language=supervisor.language,
            template="responder_unreachable",
            params={"responder_name": view.name, "reason": why},
            priority="P2",
            incident_id=None,
            caused_by=cause,
            at=now,
        )

    # ---- replies --------------------------------------------------------------------------------------

    def _reply(self, work: Work, received: SmsReceived) -> None:
        responder_id = self.known.by_phone.get(received.data.from_number)
        if responder_id is None:
            return  # an unknown number: the sms.received event on the stream is the record
        record = work.record(responder_id)
        reply = parse_reply(received.data.body)
        now = self.clock.now()
        if reply.command in ("accept", "decline"):
            self._answer_page(work, record, reply, received, now)
        elif reply.command in ("en_route", "arrived", "done"):
            self._progress(work, record, reply, received, now)
        elif reply.command == "status":
            codes = sorted(set(record.open_codes) | set(record.assignments.values()))
            self._quiet(record, "status_summary", {"codes": codes}, received, now)
        elif reply.command == "help":
            self._quiet(record, "reply_help", {}, received, now)
        elif reply.command == "at":
            self._located(record, reply.place or "", received, now)
        else:
            self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)

    def _answer_page(
        self, work: Work, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        code = self._resolve(record, reply, sorted(record.open_codes), received, now)
        if code is None:
            return
        held = record.open_codes.get(code) or record.recent_codes.get(code)
        if held is None:
            self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)
            return
        incident: IncidentDispatch = work.get(UUID(held["incident_id"]))
        page_id = UUID(held["page_id"])
        page = incident.page(page_id)
        sid = received.data.message_sid
        if reply.command == "decline":
            if page["status"] != "open":
                self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)
                return
            incident.decline(page_id=page_id, message_sid=sid, caused_by=received.id, at=now)
            record.close_code(code=code, at=now)
            self._replace_or_advance(work, incident, page["slot"], "declined", received.id)
            return
        try:
            incident.accept(page_id=page_id, message_sid=sid, caused_by=received.id, at=now)
        except PageNotOpen:
            if page["status"] == "accepted" or incident.is_closed:
                self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)
                return
            outcome = self.paging.second_acceptance
            incident.accept_extra(page_id=page_id, message_sid=sid, outcome=outcome, caused_by=received.id, at=now)
            if code in record.open_codes:
                record.close_code(code=code, at=now)
            if outcome == "backup":
                record.assign(incident_id=incident.id, code=code)
            return
        if code in record.open_codes:
            record.close_code(code=code, at=now)
        record.assign(incident_id=incident.id, code=code)
        self._withdraw_open(work, incident, page["slot"], "covered", received.id, now)

    def _progress(
        self, work: Work, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        by_code = {code: incident_id for incident_id, code in record.assignments.items()}
        code = self._resolve(record, reply, sorted(by_code), received, now)
        if code is None:
            return
        if code not in by_code:
            self._quiet(record, "reply_unknown", {"codes": sorted(record.open_codes)}, received, now)
            return
        incident: IncidentDispatch = work.get(UUID(by_code[code]))
        stage = reply.command
        incident.progress(
            responder_id=record.responder_id,
            stage=stage,
            message_sid=received.data.message_sid,
            caused_by=received.id,
            at=now,
        )
        if stage == "done":
            record.release(incident_id=incident.id)
            if incident.is_closed:
                self._withdraw_open(work, incident, None, "completed", received.id, now)

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
        self._answer_responder(record, "location_noted", {}, received, now)

    def _quiet(
        self, record: ResponderRecord, template: str, params: dict, received: SmsReceived, now: datetime
    ) -> None:
        """Answer a reply that changed nothing, unless this number already had its share of those."""
        limits = self.reply_limits
        if not record.may_answer_quiet_reply(now, limits.window, limits.limit):
            log.info("reply left unanswered: the per-number cap for no-op replies was reached")
            return
        record.count_quiet_reply(at=now, window_seconds=int(limits.window.total_seconds()))
        self._answer_responder(record, template, params, received, now)

    def _answer_responder(
        self, record: ResponderRecord, template: str, params: dict, received: SmsReceived, now: datetime
    ) -> None:
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

    # ---- deadlines ------------------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        return min(self.known.deadlines.values(), default=None)

    def fire_due(self) -> int:
        """Fire every reminder, voice call and acknowledgement deadline that has passed. Returns how many.

        Safe to run on several instances at once: saving is optimistic, so when two fire the same
        deadline one save conflicts and is dropped, and the other's events reach it via ``catch_up``.
        """
        fired = 0
        with self.processing_lock:
            self.catch_up()
            now = self.clock.now()
            for incident_id in [i for i, t in self.known.deadlines.items() if t <= now]:
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
        work = Work(self)
        incident: IncidentDispatch = work.get(incident_id)
        actions = incident.due(now)
        for due in actions:
            if due.action == "time_out":
                incident.time_out(page_id=due.page_id, caused_by=None, at=now)
                self._close_code(work, incident, due.page_id, now)
            else:
                channel = "sms" if due.action == "remind" else "voice"
                incident.remind(page_id=due.page_id, channel=channel, caused_by=None, at=now)
        for slot in {incident.page(d.page_id)["slot"] for d in actions if d.action == "time_out"}:
            self._advance(work, incident, slot, "timed_out", None)
        self.save(*work.aggregates())
        return len(actions)

    # ---- helpers --------------------------------------------------------------------------------------

    def _exists(self, aggregate_id: UUID) -> bool:
        try:
            self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    # ---- outbox: stored domain events -> contract events ----------------------------------------------

    @singledispatchmethod
    def outbox(self, domain_event: Any) -> Sequence[Envelope]:
        return ()

    @outbox.register
    def _(self, offered: IncidentDispatch.PageOffered) -> Sequence[Envelope]:
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
        return (
            self._event(DispatchOffered, data, offered, incident),
            self._message(
                offered,
                offered.phone,
                offered.language,
                "page_offer",
                params,
                priority,
                offered.page_id,
                page_notification_id(offered.page_id, "offer"),
                incident_id=incident,
            ),
        )

    @outbox.register
    def _(self, reminded: IncidentDispatch.PageReminded) -> Sequence[Envelope]:
        page = self._page_at(reminded)
        priority = self._opened(reminded).priority
        params = {"priority": priority, "code": page["code"]}
        if reminded.channel == "sms":
            return (
                self._message(
                    reminded,
                    page["phone"],
                    page["language"],
                    "page_reminder",
                    params,
                    priority,
                    reminded.page_id,
                    page_notification_id(reminded.page_id, "reminder"),
                    incident_id=reminded.originator_id,
                ),
            )
        return (
            self._message(
                reminded,
                page["phone"],
                page["language"],
                "voice_page",
                params,
                priority,
                reminded.page_id,
                page_notification_id(reminded.page_id, "voice"),
                incident_id=reminded.originator_id,
                channel="voice",
            ),
        )

    @outbox.register
    def _(self, accepted: IncidentDispatch.PageAccepted) -> Sequence[Envelope]:
        page = self._page_at(accepted)
        data = DispatchAcknowledgedData(**self._answer(accepted, page), message_sid=accepted.message_sid)
        return (
            self._event(DispatchAcknowledged, data, accepted, accepted.originator_id),
            self._reply_message(accepted, page, "ack_confirmed", {"code": page["code"]}),
        )

    @outbox.register
    def _(self, declined: IncidentDispatch.PageDeclined) -> Sequence[Envelope]:
        page = self._page_at(declined)
        data = DispatchDeclinedData(**self._answer(declined, page), message_sid=declined.message_sid)
        return (
            self._event(DispatchDeclined, data, declined, declined.originator_id),
            self._reply_message(declined, page, "decline_confirmed", {"code": page["code"]}),
        )

    @outbox.register
    def _(self, timed_out: IncidentDispatch.PageTimedOut) -> Sequence[Envelope]:
        page = self._page_at(timed_out)
        data = DispatchTimedOutData(**self._answer(timed_out, page), deadline=page["deadline"])
        return (self._event(DispatchTimedOut, data, timed_out, timed_out.originator_id),)

    @outbox.register
    def _(self, unreachable: IncidentDispatch.PageUnreachable) -> Sequence[Envelope]:
        page = self._page_at(unreachable)
        data = DispatchUnreachableData(
            **self._answer(unreachable, page),
            notification_id=unreachable.notification_id,
            error_code=unreachable.error_code,
            reason=unreachable.reason,
        )
        return (self._event(DispatchUnreachable, data, unreachable, unreachable.originator_id),)

    @outbox.register
    def _(self, withdrawn: IncidentDispatch.PageWithdrawn) -> Sequence[Envelope]:
        page = self._page_at(withdrawn)
        data = DispatchWithdrawnData(**self._answer(withdrawn, page), reason=withdrawn.reason)
        template = "page_covered" if withdrawn.reason == "covered" else "page_withdrawn"
        return (
            self._event(DispatchWithdrawn, data, withdrawn, withdrawn.originator_id),
            self._reply_message(withdrawn, page, template, {"code": page["code"]}),
        )

    @outbox.register
    def _(self, extra: IncidentDispatch.ExtraAcceptance) -> Sequence[Envelope]:
        page = self._page_at(extra)
        data = DispatchExtraAcceptanceData(
            **self._answer(extra, page), message_sid=extra.message_sid, outcome=extra.outcome
        )
        return (
            self._event(DispatchExtraAcceptance, data, extra, extra.originator_id),
            self._reply_message(extra, page, "already_taken", {"code": page["code"], "outcome": extra.outcome}),
        )

    @outbox.register
    def _(self, unfilled: IncidentDispatch.Unfilled) -> Sequence[Envelope]:
        data = DispatchUnfilledData(
            incident_id=unfilled.originator_id,
            reason=unfilled.reason,
            shortfalls=unfilled.shortfalls,
            step=unfilled.step,
            rung=unfilled.rung,
        )
        return (self._event(DispatchUnfilled, data, unfilled, unfilled.originator_id),)

    @outbox.register
    def _(self, escalated: IncidentDispatch.Escalated) -> Sequence[Envelope]:
        incident = self.repository.get(escalated.originator_id, version=escalated.originator_version)
        data = DispatchEscalatedData(
            incident_id=escalated.originator_id,
            from_step=incident.slots[escalated.slot]["from_step"],
            to_step=escalated.to_step,
            rung=escalated.to_rung,
            reason=escalated.reason,
        )
        return (self._event(DispatchEscalated, data, escalated, escalated.originator_id),)

    @outbox.register
    def _(self, progressed: IncidentDispatch.Progressed) -> Sequence[Envelope]:
        incident = self.repository.get(progressed.originator_id, version=progressed.originator_version)
        before = self.repository.get(progressed.originator_id, version=progressed.originator_version - 1)
        code = before.on_it.get(str(progressed.responder_id), "0000")
        page_id = before.page_by_code(progressed.responder_id, code) or derived_id("no-page", code)
        common = {
            "incident_id": progressed.originator_id,
            "page_id": page_id,
            "responder_id": progressed.responder_id,
            "code": code,
            "message_sid": progressed.message_sid,
        }
        page = before.pages.get(str(page_id), {"phone": None})
        if progressed.stage == "done":
            event = self._event(
                DispatchCompleted,
                DispatchCompletedData(**common, closes_incident=incident.is_closed),
                progressed,
                progressed.originator_id,
            )
            template = "done_confirmed"
        else:
            event_class = ResponderEnRoute if progressed.stage == "en_route" else ResponderArrived
            event = self._event(event_class, ResponderProgressData(**common), progressed, progressed.originator_id)
            template = f"{progressed.stage}_confirmed"
        if page["phone"] is None:
            return (event,)
        return (event, self._reply_message(progressed, page, template, {"code": code}))

    @outbox.register
    def _(self, notice: ResponderRecord.NoticeRequested) -> Sequence[Envelope]:
        return (
            self._message(
                notice,
                notice.to,
                notice.language,
                notice.template,
                notice.params,
                notice.priority,
                None,
                derived_id(notice.originator_id, notice.originator_version, "notice"),
                incident_id=notice.incident_id,
            ),
        )

    # ---- outbox helpers -------------------------------------------------------------------------------

    def _incident_at(self, stored: Any) -> IncidentDispatch:
        return self.repository.get(stored.originator_id, version=stored.originator_version)

    def _page_at(self, stored: Any) -> dict[str, Any]:
        return self._incident_at(stored).page(stored.page_id)

    def _opened(self, stored: Any) -> IncidentDispatch:
        """The incident as it was opened: priority, area and the 911 advice never change after that."""
        return self.repository.get(stored.originator_id, version=1)

    @staticmethod
    def _answer(stored: Any, page: dict[str, Any]) -> dict[str, Any]:
        return {
            "incident_id": stored.originator_id,
            "page_id": stored.page_id,
            "responder_id": UUID(page["responder_id"]),
            "code": page["code"],
        }

    def _reply_message(self, stored: Any, page: dict[str, Any], template: str, params: dict) -> Envelope:
        return self._message(
            stored,
            page["phone"],
            page["language"],
            template,
            params,
            self._opened(stored).priority,
            getattr(stored, "page_id", None),
            derived_id(stored.originator_id, stored.originator_version, "sms"),
            incident_id=stored.originator_id,
        )

    def _event(self, event_class: type[Envelope], data: Any, stored: Any, incident_id: UUID | None) -> Envelope:
        return new_event(
            event_class,
            data,
            event_id=derived_id(stored.originator_id, stored.originator_version, event_class.TYPE),
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=incident_id,
            causation_id=stored.caused_by,
        )

    def _message(
        self,
        stored: Any,
        to: str,
        language: str,
        template: str,
        params: dict[str, Any],
        priority: str,
        page_id: UUID | None,
        notification_id: UUID,
        *,
        incident_id: UUID | None,
        channel: str = "sms",
    ) -> Envelope:
        data = NotificationRequestedData(
            notification_id=notification_id,
            incident_id=incident_id,
            page_id=page_id,
            to=to,
            channel=channel,
            template=template,
            params=params,
            language=language if language in ("en", "es") else "en",
            priority=priority,
        )
        return new_event(
            NotificationRequested,
            data,
            event_id=notification_id,
            occurred_at=stored.at,
            producer=PRODUCER,
            incident_id=incident_id,
            causation_id=stored.caused_by,
        )


def _where(opened: IncidentDispatch) -> dict[str, str | None]:
    """A page's place parameters: references to the gazetteer entry and the zone of the scene, no text.

    An incident opened before pages named places this way has no gazetteer entry: its zone only.
    """
    place, zone = getattr(opened, "place", None), opened.zone
    return {"place": place_ref(place) if place else None, "zone": place_ref(zone) if zone else None}


def _zone_of(data: Any) -> str | None:
    """The service zone intake resolved, if any (None: outside every zone, or not resolved)."""
    return getattr(data, "zone", None) or getattr(data.location, "zone", None)


def _shortfall_sentence(shortfalls: Sequence[str], rung: str) -> str:
    words = {
        "nobody_on_call": "nobody is on call",
        "all_busy": "everyone on call is busy",
        "locations_stale": "responders' last known locations are stale",
        "outside_radius": "nobody on call is within reach",
        "nobody_with_skill": "nobody on call has the needed skills",
        "all_unreachable": "everyone on call is unreachable (opted out or off)",
    }
    who = {"candidates": "", "supervisor": " (supervisor rung)", "director": " (clinical director rung)"}[rung]
    return ("; ".join(words.get(s, s) for s in shortfalls) or "nobody could be paged") + who
