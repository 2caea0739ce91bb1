"""Responders' safety in the field: check-ins, the duress word, pairs only, and the clock's field prompts.

``ARRIVED`` (by text, the voice keypad or the incident page) starts the responder's check-in timer; ``OK`` restarts
it, ``CLEAR``/``DONE`` ends it, and a cancelled or completed incident ends every timer it had. The clock asks
"Reply OK <code> by <time>" before it is due; once it passed unanswered, the steps of ``field_policy.py`` fire one
by one: reminder, voice call, the supervisor and the team partner paged with the last known location, the
supervisor told to call 911. A responder alone on a pairs-only incident is told to wait for the partner; a
responder much later than their ETA, and EMS not confirmed on a P1 that needed it, prompt the supervisor once.

Every step is one event on the incident (``IncidentDispatch``), so it survives restarts and fires once however
many dispatchers run (the incident's save is optimistic). ``check_in_outbox.py`` turns each into its contract event and
texts; the times in texts are "HH:MM" in the organisation's time zone.

The duress word is never kept: the reply is answered exactly as an ``OK`` (the same event, the same text), and
``signal_duress`` (which holds no word) pages the supervisor with the location.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from services.contract.events import SmsReceived
from services.dispatcher.check_in_outbox import place_params
from services.dispatcher.domain.field_policy import CHECK_IN_STEPS, FieldPolicy
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.replies import Reply
from services.dispatcher.domain.roster import ResponderRecord, ResponderView
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.unit_of_work import UnitOfWork
from services.runtime.clock import Clock

log = logging.getLogger(__name__)

Landmark = Callable[[float, float], "str | None"]
Channel = Literal["sms", "voice", "app"]
QUIET_WINDOW = timedelta(minutes=15)
QUIET_LIMIT = 5


def person(view: ResponderView) -> dict[str, Any]:
    """Whom a step pages, as the incident stores it (so the outbox sends to them however late it runs)."""
    return {
        "responder_id": str(view.responder_id),
        "role": view.role,
        "phone": view.phone,
        "language": view.language,
        "name": view.name,
    }


class CheckIns:
    """The dispatcher's side of field safety: hooks on arrival, acceptance, done and cancel; OK and CLEAR replies;
    and the field deadlines (``fire_due``, called by the pager's deadline firing)."""

    def __init__(self, cache: RosterCache, clock: Clock, policy: FieldPolicy, landmark: Landmark | None = None) -> None:
        self.cache = cache
        self.clock = clock
        self.policy = policy
        self.landmark = landmark

    @property
    def duress_words(self) -> tuple[str, ...]:
        """The configured duress words, for the reply parser (empty: off)."""
        return self.policy.duress_words

    def opened_with(self) -> dict[str, Any]:
        """What a new incident keeps of this policy: the grace after an ETA and the wait for EMS (minutes)."""
        return {
            "eta_grace_minutes": int(self.policy.eta_grace.total_seconds() // 60),
            "ems_confirm_minutes": int(self.policy.ems_confirm.total_seconds() // 60),
        }

    # ---- hooks ----------------------------------------------------------------------------------------

    def arrived(
        self, incident: IncidentDispatch, responder_id: UUID, channel: Channel, cause: UUID, now: datetime
    ) -> None:
        """``ARRIVED``: the responder's check-in timer starts (a second ARRIVED leaves a running one alone)."""
        if incident.is_closed or str(responder_id) not in incident.on_it:
            return
        if str(responder_id) not in incident.active_check_ins():
            self._start(incident, responder_id, channel, cause, now)

    def after_progress(
        self, incident: IncidentDispatch, responder_id: UUID, stage: str, channel: Channel, cause: UUID, now: datetime
    ) -> None:
        """Called after every ``progress`` (text, keypad or incident page): arrival starts the check-in, done ends
        the responder's, and the incident's completion ends every one still running."""
        if stage == "arrived":
            self.arrived(incident, responder_id, channel, cause, now)
        elif stage == "done":
            if str(responder_id) in incident.active_check_ins():
                incident.end_check_in(
                    responder_id=responder_id, reason="done", channel=channel, caused_by=cause, at=now
                )
            if incident.is_closed:
                self.end_all(incident, "completed", cause, now)

    def end_all(self, incident: IncidentDispatch, reason: str, cause: UUID, now: datetime) -> None:
        """Cancelled or completed: every running check-in of the incident ends."""
        for responder_id in list(incident.active_check_ins()):
            incident.end_check_in(responder_id=UUID(responder_id), reason=reason, channel=None, caused_by=cause, at=now)

    def after_accept(self, incident: IncidentDispatch, record: ResponderRecord, cause: UUID, now: datetime) -> None:
        """A responder accepted: alone on a pairs-only incident, they are told to wait and the supervisor is told."""
        rule = self.policy.pairs_only.rule_for(incident.kind, getattr(incident, "risk_level", None))
        responder_id = str(record.responder_id)
        if rule is None or responder_id not in incident.on_it or len(incident.on_it) != 1:
            return
        view = record.view()
        supervisor = self._supervisor(view, now)
        incident.note_pair_wait(
            responder_id=record.responder_id,
            responder_name=view.name,
            code=incident.on_it[responder_id],
            rule=rule,
            supervisor=person(supervisor) if supervisor else None,
            caused_by=cause,
            at=now,
        )

    # ---- replies: OK (and the duress word), CLEAR ---------------------------------------------------------

    def on_reply(
        self, work: UnitOfWork, record: ResponderRecord, reply: Reply, received: SmsReceived, now: datetime
    ) -> None:
        """``OK`` restarts the check-in of the incident it names (or the only one the responder is on), ``CLEAR``
        ends it. A duress word is answered exactly like OK, and silently pages the supervisor."""
        by_code = {code: UUID(incident_id) for incident_id, code in record.assignments.items()}
        code = reply.code if reply.code is not None else (next(iter(by_code)) if len(by_code) == 1 else None)
        incident = work.incident(by_code[code]) if code in by_code else None
        if incident is not None and (incident.is_closed or str(record.responder_id) not in incident.on_it):
            incident = None  # no longer on it: nothing to check in for
        if incident is None:
            template = "reply_ambiguous" if reply.code is None and by_code else "reply_unknown"
            codes = sorted(by_code) if template == "reply_ambiguous" else sorted(record.open_codes)
            self._quiet(record, template, {"codes": codes}, received, now)
        elif reply.command == "clear":
            self._clear(incident, record, received, now)
        else:
            self._confirm(incident, record.responder_id, "sms", received.data.message_sid, received.id, now)
        if getattr(reply, "duress", False):
            self._duress(record, incident, received.id, now)

    def confirm(
        self, incident: IncidentDispatch, responder_id: UUID, channel: Channel, cause: UUID, now: datetime
    ) -> None:
        """OK from another channel (the voice keypad's 1): the same as the text, while they are on the incident."""
        if not incident.is_closed and str(responder_id) in incident.on_it:
            self._confirm(incident, responder_id, channel, None, cause, now)

    def clear(
        self, incident: IncidentDispatch, responder_id: UUID, channel: Channel, cause: UUID, now: datetime
    ) -> None:
        """CLEAR from another channel (the voice keypad's 2): the check-in ends."""
        if str(responder_id) in incident.active_check_ins():
            incident.end_check_in(responder_id=responder_id, reason="clear", channel=channel, caused_by=cause, at=now)

    def _confirm(
        self,
        incident: IncidentDispatch,
        responder_id: UUID,
        channel: Channel,
        message_sid: str | None,
        cause: UUID,
        now: datetime,
    ) -> None:
        if str(responder_id) not in incident.active_check_ins():
            self._start(incident, responder_id, channel, cause, now)  # OK before ARRIVED: the timer runs from now
            if str(responder_id) not in incident.active_check_ins():
                return  # not on the roster any more: nobody to check in
        timer = self._timer(incident, now)
        incident.confirm_check_in(
            responder_id=responder_id, channel=channel, message_sid=message_sid, **timer, caused_by=cause, at=now
        )

    def _clear(self, incident: IncidentDispatch, record: ResponderRecord, received: SmsReceived, now: datetime) -> None:
        if str(record.responder_id) in incident.active_check_ins():
            self.clear(incident, record.responder_id, "sms", received.id, now)
        else:
            self._quiet(record, "checkin_cleared", {"code": incident.on_it[str(record.responder_id)]}, received, now)

    def _duress(self, record: ResponderRecord, incident: IncidentDispatch | None, cause: UUID, now: datetime) -> None:
        """Page the supervisor at once with the last known location. Nothing about it reaches the responder."""
        view = record.view()
        supervisor = self._supervisor(view, now)
        notified = [person(supervisor)] if supervisor else []
        if supervisor is None:
            log.error("a duress signal found no supervisor to page")
        last_known = self._last_known(record, incident)
        if incident is not None:
            incident.signal_duress(
                responder_id=record.responder_id,
                responder_name=view.name,
                last_known=last_known,
                notified=notified,
                caused_by=cause,
                at=now,
            )
            return
        for to in notified:  # on no incident: the alert is all there is to record
            record.notify(
                to=to["phone"],
                language=to["language"],
                template="duress_alert",
                params={"responder_name": view.name, **place_params(last_known)},
                priority="P1",
                incident_id=None,
                caused_by=cause,
                at=now,
            )

    def _quiet(
        self, record: ResponderRecord, template: str, params: dict[str, Any], received: SmsReceived, now: datetime
    ) -> None:
        """A reply that changed nothing is answered, within the per-number cap on such answers."""
        if not record.may_answer_quiet_reply(now, QUIET_WINDOW, QUIET_LIMIT):
            return
        record.count_quiet_reply(at=now, window_seconds=int(QUIET_WINDOW.total_seconds()))
        view = record.view()
        to_them = {"to": view.phone, "language": view.language, "priority": "P3", "incident_id": None}
        record.notify(**to_them, template=template, params=params, caused_by=received.id, at=now)

    # ---- the clock ------------------------------------------------------------------------------------

    def fire_due(self, work: UnitOfWork, incident: IncidentDispatch, now: datetime) -> int:
        """Fire the field deadlines of ``incident`` that passed: check-in prompts and missed steps (every step that
        is due, in order), the late-ETA and EMS prompts. Returns how many."""
        fired = 0
        for due in incident.field_due(now):
            responder_id = due.responder_id
            if due.action == "prompt" and responder_id is not None:
                incident.prompt_check_in(responder_id=responder_id, caused_by=None, at=now)
                fired += 1
            elif due.action == "missed" and responder_id is not None:
                fired += self._missed(work, incident, responder_id, now)
            elif due.action == "eta_overdue" and responder_id is not None:
                self._eta_overdue(incident, responder_id, now)
                fired += 1
            elif due.action == "ems_overdue":
                self._ems_overdue(incident, now)
                fired += 1
        return fired

    def _missed(self, work: UnitOfWork, incident: IncidentDispatch, responder_id: UUID, now: datetime) -> int:
        fired = 0
        record = work.record(responder_id)
        view = record.view()
        while (state := incident.active_check_ins().get(str(responder_id))) is not None and (
            state["next_at"] is not None and state["next_at"] <= now and state["missed"] < len(CHECK_IN_STEPS)
        ):
            index = state["missed"]
            step = CHECK_IN_STEPS[index]
            incident.miss_check_in(
                responder_id=responder_id,
                step=step,
                responder_name=view.name,
                minutes_overdue=max(0, int((now - state["due_at"]) / self.policy.check_in.minute)),  # policy minutes
                last_known=self._last_known(record, incident),
                notified=self._notified(step, incident, view, state, now),
                next_at=self.policy.check_in.step_at(state["due_at"], index + 1),
                caused_by=None,
                at=now,
            )
            fired += 1
        return fired

    def _notified(
        self, step: str, incident: IncidentDispatch, view: ResponderView, state: dict[str, Any], now: datetime
    ) -> list[dict[str, Any]]:
        """Whom a step reaches: the responder (reminder, call), the supervisor and the partner, the supervisor."""
        if step in ("reminder", "call"):
            return [{**person(view), "phone": state["phone"], "language": state["language"]}]
        supervisor = self._supervisor(view, now)
        people = [person(supervisor)] if supervisor else []
        if step == "supervisor_paged":
            partners = (self.cache.roster.get(UUID(r)) for r in incident.on_it if r != str(view.responder_id))
            people += [person(p) for p in partners if p is not None]
        if not people:
            log.error("a missed check-in found nobody to page at step %s", step)
        return people

    def _eta_overdue(self, incident: IncidentDispatch, responder_id: UUID, now: datetime) -> None:
        eta_at = incident.field_state()["etas"][str(responder_id)]
        view = self.cache.roster.get(responder_id)
        supervisor = self._supervisor(view, now) if view else self._on_duty_supervisor(now)
        incident.note_eta_overdue(
            responder_id=responder_id,
            responder_name=view.name if view else "-",
            eta_at=eta_at,
            minutes_late=max(0, int((now - eta_at).total_seconds() // 60)),
            supervisor=person(supervisor) if supervisor else None,
            caused_by=None,
            at=now,
        )

    def _ems_overdue(self, incident: IncidentDispatch, now: datetime) -> None:
        since, _ = incident.ems_deadline() or (now, now)
        on_it = [view for r in incident.on_it if (view := self.cache.roster.get(UUID(r)))]
        supervisor = self._supervisor(on_it[0], now) if on_it else self._on_duty_supervisor(now)
        incident.note_ems_overdue(
            since=since,
            minutes_waited=max(0, int((now - since).total_seconds() // 60)),
            supervisor=person(supervisor) if supervisor else None,
            caused_by=None,
            at=now,
        )

    # ---- reading ------------------------------------------------------------------------------------

    def _start(
        self, incident: IncidentDispatch, responder_id: UUID, channel: Channel, cause: UUID, now: datetime
    ) -> None:
        code = incident.on_it[str(responder_id)]
        page_id = incident.page_by_code(responder_id, code)
        view = self.cache.roster.get(responder_id)
        if page_id is not None:
            page = incident.page(page_id)
            phone, language = page.phone, page.language
        elif view is not None:
            phone, language = view.phone, view.language
        else:
            log.warning("a check-in could not start: the responder is not on the roster")
            return
        timer = self._timer(incident, now)
        who = {"responder_id": responder_id, "code": code, "phone": phone, "language": language}
        incident.start_check_in(**who, channel=channel, **timer, caused_by=cause, at=now)

    def _timer(self, incident: IncidentDispatch, now: datetime) -> dict[str, Any]:
        """A check-in timer starting now: its ``minutes``, ``due_at``, ``prompt_at`` and ``next_at`` (the first
        missed step)."""
        policy = self.policy.check_in
        due_at = policy.due_at(incident.kind, incident.priority, now)
        return {
            "minutes": policy.interval(incident.kind, incident.priority),
            "due_at": due_at,
            "prompt_at": policy.prompt_at(due_at, now),
            "next_at": policy.step_at(due_at, 0),
        }

    def _supervisor(self, view: ResponderView, now: datetime) -> ResponderView | None:
        """The responder's supervisor, else the supervisor on duty (never the responder themself)."""
        supervisor = self.cache.roster.get(view.supervisor_id) if view.supervisor_id else None
        if supervisor is not None and supervisor.active and supervisor.responder_id != view.responder_id:
            return supervisor
        return self._on_duty_supervisor(now, besides=view.responder_id)

    def _on_duty_supervisor(self, now: datetime, besides: UUID | None = None) -> ResponderView | None:
        on_duty = (v for v in self.cache.on_duty(now) if v.role == "supervisor" and v.responder_id != besides)
        return next(on_duty, None) or next(iter(self.cache.active_with_role("director")), None)

    def _last_known(self, record: ResponderRecord, incident: IncidentDispatch | None) -> dict[str, Any] | None:
        """Where the responder was last known to be: the scene once they said they arrived (unless they reported a
        place since), else their last reported location, else their home base. Named only by the gazetteer."""
        arrived = incident.arrived_at(record.responder_id) if incident is not None else None
        reported = record.location
        if incident is not None and arrived is not None and (reported is None or reported["at"] <= arrived):
            return {
                "lat": incident.lat,
                "lon": incident.lon,
                "as_of": arrived,
                "source": "scene",
                "place_name": getattr(incident, "place", None),
                "zone": incident.zone,
            }
        if reported is not None:
            lat, lon = reported["lat"], reported["lon"]
            name = self.landmark(lat, lon) if self.landmark else None
            return {"lat": lat, "lon": lon, "as_of": reported["at"], "source": "reported", "place_name": name}
        view = record.view()
        return {"lat": view.home[0], "lon": view.home[1], "as_of": None, "source": "home_base", "place_name": None}
