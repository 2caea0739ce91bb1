"""Paging and the ladder: page a slot's step, replace a page that said no, climb when a step ran out.

The decisions are the domain's (``domain/ladder.py``); this module asks routing for candidates from the
roster cache and applies each decision to the incident and the responders' records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from services.contract.events import derived_id
from services.dispatcher.alarms import NobodyAcceptedAlarm
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.ladder import (
    LadderDecision,
    Move,
    StepPlan,
    decide_escalation,
    page_reason,
    plan_step,
    reason_nobody_was_paged,
    shortfall_sentence,
)
from services.dispatcher.domain.policy import PagingPolicy, Rung
from services.dispatcher.domain.replies import free_code
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.domain.routing import (
    DistanceKm,
    RoutingRules,
    Selection,
    after_hours,
    select_candidates,
)
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork
from services.runtime.clock import Clock

log = logging.getLogger(__name__)


class FieldDeadlines(Protocol):
    """Fires an incident's field deadlines (``check_ins.CheckIns``): returns how many fired."""

    def fire_due(self, work: UnitOfWork, incident: IncidentDispatch, now: datetime) -> int: ...


@dataclass(frozen=True)
class ReplyLimits:
    """Answers to replies that change nothing: at most ``limit`` per ``window`` per responder."""

    limit: int = 5
    window: timedelta = timedelta(minutes=15)
    code_reuse_after: timedelta = timedelta(hours=24)


@dataclass
class Pager:
    """Pages responders for an incident's slots and walks the escalation ladder."""

    cache: RosterCache
    clock: Clock
    policy: PagingPolicy
    rules: RoutingRules
    distance_km: DistanceKm
    reply_limits: ReplyLimits
    alarm: NobodyAcceptedAlarm = field(init=False)
    field_deadlines: FieldDeadlines | None = field(default=None, init=False)  # the check-ins' (F1), set by the wiring

    def __post_init__(self) -> None:
        self.alarm = NobodyAcceptedAlarm(self.cache, self.policy.alarm)

    def page_first_step(self, work: UnitOfWork, incident: IncidentDispatch, cause: UUID, now: datetime) -> None:
        """Page the first step of every slot; then each slot nobody could be paged for climbs the ladder."""
        selections = {slot: self.page_step(work, incident, slot, cause, now) for slot in incident.slot_names()}
        for slot, selection in selections.items():
            if not selection.candidates:
                self.climb(work, incident, slot, reason_nobody_was_paged(selection.shortfalls), cause)

    def replace_or_climb(
        self, work: UnitOfWork, incident: IncidentDispatch, slot: str, reason: str, cause: UUID | None
    ) -> None:
        """One of several pages of a step said no or can't be reached: page a replacement at once.

        With nobody else still open, that is the ladder's next step instead.
        """
        if incident.open_pages(slot) and incident.slot(slot).covered_by is None and not incident.is_closed:
            self.page_step(work, incident, slot, cause, self.clock.now(), count=1, record_shortfall=False)
        else:
            self.climb(work, incident, slot, reason, cause)

    def climb(self, work: UnitOfWork, incident: IncidentDispatch, slot: str, reason: str, cause: UUID | None) -> None:
        """Nobody holds this slot and nobody is left waiting for: move it up the incident's one ladder until
        someone is paged, the slot ends (a team's peer) or the ladder is exhausted (then the alarm sounds)."""
        now = self.clock.now()
        while incident.needs_escalation(slot):
            decision = decide_escalation(incident.position(), incident.slot(slot), self.policy, reason)
            if decision.move in (Move.EXHAUSTED, Move.SLOT_ENDS):
                self._give_up(incident, slot, decision, cause, now)
                return
            if decision.move == Move.CLIMB and decision.to is not None:
                incident.escalate(
                    slot=slot,
                    to_step=decision.to.step,
                    to_rung=decision.to.rung,
                    reason=decision.reason,
                    caused_by=cause,
                    at=now,
                )
            selection = self.page_step(work, incident, slot, cause, now, at=decision.to)
            if selection.candidates:
                return
            reason = reason_nobody_was_paged(selection.shortfalls)

    def _give_up(
        self, incident: IncidentDispatch, slot: str, decision: LadderDecision, cause: UUID | None, now: datetime
    ) -> None:
        """The slot has no step left: ``ladder_exhausted`` (the primary response; NOBODY ACCEPTED sounds) or
        ``peer_steps_exhausted`` (a team's peer)."""
        state = incident.slot(slot)
        exhausted = decision.move == Move.EXHAUSTED
        incident.record_unfilled(
            slot=slot,
            step=state.step,
            rung=state.rung,
            shortfalls=["ladder_exhausted" if exhausted else "peer_steps_exhausted"],
            reason=decision.reason,
            caused_by=cause,
            at=now,
        )
        incident.exhaust(slot=slot, caused_by=cause, at=now)
        if exhausted:
            self.alarm.sound(incident, cause, now)

    def page_step(
        self,
        work: UnitOfWork,
        incident: IncidentDispatch,
        slot: str,
        cause: UUID | None,
        now: datetime,
        *,
        at: Rung | None = None,
        count: int | None = None,
        record_shortfall: bool = True,
    ) -> Selection:
        """Page the slot's step at ladder position ``at`` (default: where the slot was last asked), or ``count``
        replacements in it; record why when nobody can be."""
        state = incident.slot(slot)
        at = at or Rung(state.step, state.rung)  # type: ignore[arg-type]
        plan = plan_step(incident, slot, at, self.policy, self.rules, now, count=count)
        cache = self.cache
        selection = select_candidates(
            cache.roster, self._pool(incident, plan, now), plan.request, plan.rules, self.distance_km, cache.index
        )
        if not selection.candidates:
            if record_shortfall:
                incident.record_unfilled(
                    slot=slot,
                    step=at.step,
                    rung=at.rung,
                    shortfalls=list(selection.shortfalls),
                    reason=shortfall_sentence(selection.shortfalls, at.rung),
                    caused_by=cause,
                    at=now,
                )
            return selection
        step_policy = self.policy.step(incident.priority)
        for candidate in selection.candidates:
            responder = candidate.responder
            record = work.record(responder.responder_id)
            code = free_code(incident.short_code, record.codes_in_use(now, self.reply_limits.code_reuse_after))
            page_id = derived_id("page", incident.id, slot, at.step, responder.responder_id)
            incident.offer(
                page_id=page_id,
                slot=slot,
                responder_id=responder.responder_id,
                responder_role=responder.role,
                phone=responder.phone,
                language=responder.language,
                code=code,
                step=at.step,
                rung=at.rung,
                ack_deadline=now + step_policy.ack_timeout,
                reminder_at=now + step_policy.reminder_after if step_policy.reminder_after else None,
                voice_at=now + step_policy.voice_after if step_policy.voice_after else None,
                distance_km=candidate.distance_km,
                reason=page_reason(
                    candidate, plan, slot, at, selection.passed_over_resting, selection.passed_over_capped
                ),
                caused_by=cause,
                at=now,
            )
            record.open_code(code=code, incident_id=incident.id, page_id=page_id)
            if after_hours(now, self.rules.zone):  # the weekly after-hours cap counts it (issue 19)
                record.note_after_hours_page(at=now)
        return selection

    def _pool(self, incident: IncidentDispatch, plan: StepPlan, now: datetime) -> frozenset[UUID]:
        """Whom routing may choose from: on call for the incident's zone, widened as the plan allows."""
        cache = self.cache
        pool = cache.on_call(incident.zone, now)
        if plan.anywhere_if_zone_empty and not pool:
            pool = cache.on_call(None, now)
        if plan.any_director and not cache.active_with_role("director", pool):
            pool = frozenset(view.responder_id for view in cache.active_with_role("director"))
        return pool

    # ---- closing pages ------------------------------------------------------------------------------

    def close_code(self, work: UnitOfWork, incident: IncidentDispatch, page_id: UUID, now: datetime) -> None:
        page = incident.page(page_id)
        work.record(page.responder_id).close_code(code=page.code, at=now)

    def mark_unreachable(
        self, work: UnitOfWork, incident: IncidentDispatch, page_id: UUID, cause: UUID, error: int | None, reason: str
    ) -> None:
        """The page can't reach its responder: close it, then replace it or climb."""
        now = self.clock.now()
        incident.mark_unreachable(
            page_id=page_id, notification_id=None, error_code=error, reason=reason, caused_by=cause, at=now
        )
        self.close_code(work, incident, page_id, now)
        self.replace_or_climb(work, incident, incident.page(page_id).slot, "unreachable", cause)

    def withdraw_open(
        self, work: UnitOfWork, incident: IncidentDispatch, slot: str | None, reason: str, cause: UUID, now: datetime
    ) -> None:
        for other in incident.open_pages(slot):
            incident.withdraw(page_id=other, reason=reason, caused_by=cause, at=now)
            self.close_code(work, incident, other, now)

    def fire_due(self, work: UnitOfWork, incident: IncidentDispatch, now: datetime) -> int:
        """Send the reminders and voice calls that are due, time out passed pages, climb where they ran out, and
        sound NOBODY ACCEPTED again when its interval passed."""
        actions = incident.due(now)
        timed_out_slots: dict[str, None] = {}
        for due in actions:
            if due.action == "time_out":
                incident.time_out(page_id=due.page_id, caused_by=None, at=now)
                self.close_code(work, incident, due.page_id, now)
                timed_out_slots[incident.page(due.page_id).slot] = None
            else:
                channel = "sms" if due.action == "remind" else "voice"
                incident.remind(page_id=due.page_id, channel=channel, caused_by=None, at=now)
        for slot in timed_out_slots:
            self.climb(work, incident, slot, "timed_out", None)
        fired = len(actions)
        if self.field_deadlines is not None:  # check-in prompts and steps, late ETA, EMS not confirmed
            fired += self.field_deadlines.fire_due(work, incident, now)
        if incident.alarm_due(now) and self.alarm.sound(incident, None, now):
            return fired + 1
        return fired

    def tell_supervisor(self, record: ResponderRecord, why: str, cause: UUID, now: datetime) -> None:
        """Text the responder's supervisor (else the on-call one) that the responder can't be reached."""
        view = record.view()
        supervisor = self.cache.roster.get(view.supervisor_id) if view.supervisor_id else None
        if supervisor is None or not supervisor.active:
            supervisor = next((v for v in self.cache.on_duty(now) if v.role == "supervisor"), None)
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
