"""An incident as the dispatcher sees it: every page, answer, deadline and escalation.

Every command is its own event with its guards inside; times and ids come in as arguments, so a rebuild
from the store replays exactly what happened. Deadlines live here, in the store, so a restarted
dispatcher finds every one that passed while it was down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.dispatcher.domain.incident_field import FieldReads
from services.dispatcher.domain.incident_pages import (  # re-exported: the incident's value types
    OPEN,
    DueAction,
    FieldDue,
    Page,
    PageNotOpen,
    PageStatus,
    SlotState,
)
from services.dispatcher.domain.policy import Rung

__all__ = ["OPEN", "DueAction", "FieldDue", "IncidentDispatch", "Page", "PageNotOpen", "PageStatus", "SlotState"]


class IncidentDispatch(FieldReads, Aggregate):
    @event("Opened")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - the incident id, given by the gateway
        short_code: str,
        kind: str,
        priority: str,
        lat: float,
        lon: float,
        area: str | None,  # retired: the address as reported, which pages printed; None since, never read
        zone: str | None,
        needs: list[str],
        call_911: bool,
        team: bool,
        caused_by: UUID,
        at: datetime,
        place: str | None = None,  # the gazetteer's name for the scene, if an entry is that close
        reported_at: datetime | None = None,  # when the report was made (None: opened before this was kept)
        risk_level: str | None = None,  # triage's risk level (C-SSRS for self_harm_risk), for the pairs-only rule
        field_deadlines: dict[str, int] | None = None,  # {"eta_grace_minutes", "ems_confirm_minutes"}; None: none
        callback: str | None = None,  # the reporter's callback number (F2: NOFIND asks them); never in a log line
    ) -> None:
        self.short_code, self.kind, self.priority = short_code, kind, priority
        self.reported_at = reported_at or at
        self.alarm: dict[str, Any] | None = None  # {"repeat", "next_at"} once NOBODY ACCEPTED sounded
        self.disposition: str | None = None  # the outcome a clinician or director recorded, if any
        self.lat, self.lon, self.zone, self.place = lat, lon, zone, place
        self.needs = needs
        self.call_911 = call_911
        self.status = OPEN  # open -> covered -> completed; or cancelled; exhausted when the ladder ran out
        self.pages: dict[str, dict[str, Any]] = {}
        self.slots: dict[str, dict[str, Any]] = {"primary": _slot()}
        if team:
            self.slots["peer"] = _slot()
        self.on_it: dict[str, str] = {}  # responder id -> code, for everyone who accepted and is not done
        self.risk_level = risk_level
        self.field_deadlines = field_deadlines
        self.callback = callback

    # ---- paging -----------------------------------------------------------------------------------

    @event("PageOffered")
    def offer(
        self,
        page_id: UUID,
        slot: str,
        responder_id: UUID,
        responder_role: str,
        phone: str,
        language: str,
        code: str,
        step: int,
        rung: str,
        ack_deadline: datetime,
        reminder_at: datetime | None,
        voice_at: datetime | None,
        distance_km: float,
        reason: dict[str, Any],
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self.pages[str(page_id)] = {
            "slot": slot,
            "responder_id": str(responder_id),
            "phone": phone,
            "language": language,
            "code": code,
            "step": step,
            "status": OPEN,
            "deadline": ack_deadline,
            "reminder_at": reminder_at,
            "voice_at": voice_at,
        }
        self.slots[slot]["tried"].append(str(responder_id))
        self.slots[slot]["step"], self.slots[slot]["rung"] = step, rung  # where the ladder is when it was asked

    @event("PageReminded")
    def remind(self, page_id: UUID, channel: str, caused_by: UUID | None, at: datetime) -> None:
        page = self._open_page(page_id)
        page["reminder_at" if channel == "sms" else "voice_at"] = None

    @event("PageTimedOut")
    def time_out(self, page_id: UUID, caused_by: UUID | None, at: datetime) -> None:
        self._close(page_id, "timed_out")

    @event("PageDeclined")
    def decline(self, page_id: UUID, message_sid: str, caused_by: UUID, at: datetime) -> None:
        self._close(page_id, "declined")

    @event("PageUnreachable")
    def mark_unreachable(
        self,
        page_id: UUID,
        notification_id: UUID | None,
        error_code: int | None,
        reason: str,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        self._close(page_id, "unreachable")

    @event("PageAccepted")
    def accept(self, page_id: UUID, message_sid: str, caused_by: UUID, at: datetime) -> None:
        """Accepting an open page, or one that timed out while nobody else took it: only this stops the clock."""
        page = self.pages[str(page_id)]
        slot = self.slots[page["slot"]]
        if slot["covered_by"] is not None or page["status"] in ("accepted", "withdrawn") or self.is_closed:
            raise PageNotOpen(page_id)
        page["status"] = "accepted"
        slot["covered_by"] = page["responder_id"]
        slot["active"] = True
        self.on_it[page["responder_id"]] = page["code"]
        if page["slot"] == "primary" and self.status in (OPEN, "exhausted"):
            self.status = "covered"

    @event("PageWithdrawn")
    def withdraw(self, page_id: UUID, reason: str, caused_by: UUID, at: datetime) -> None:
        self._close(page_id, "withdrawn")

    @event("ExtraAcceptance")
    def accept_extra(self, page_id: UUID, message_sid: str, outcome: str, caused_by: UUID, at: datetime) -> None:
        page = self.pages[str(page_id)]
        if outcome == "backup":
            self.on_it[page["responder_id"]] = page["code"]

    # ---- the ladder -------------------------------------------------------------------------------

    @event("Unfilled")
    def record_unfilled(
        self, slot: str, step: int, rung: str, shortfalls: list[str], reason: str, caused_by: UUID | None, at: datetime
    ) -> None:
        self.slots[slot]["step"], self.slots[slot]["rung"] = step, rung  # this step was asked, and nobody could be

    @event("Escalated")
    def escalate(
        self, slot: str, to_step: int, to_rung: str, reason: str, caused_by: UUID | None, at: datetime
    ) -> None:
        """The incident climbs one step (``slot`` is the one whose step ran out): one event per step."""
        state = self.slots[slot]
        state["from_step"] = state["step"]
        state["step"], state["rung"] = to_step, to_rung

    @event("Exhausted")
    def exhaust(self, slot: str, caused_by: UUID | None, at: datetime) -> None:
        self.slots[slot]["active"] = False
        if slot == "primary" and self.status == OPEN:
            self.status = "exhausted"

    # ---- nobody accepted --------------------------------------------------------------------------

    @event("AlarmRaised")
    def raise_alarm(
        self,
        repeat: int,
        minutes_since_report: int,
        voice: bool,
        notified: list[dict[str, Any]],  # responder_id, role, phone, language of each person alerted
        next_at: datetime,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        # whom it sounded for: told when it ends (an older snapshot's alarm has no list: nobody is told)
        self.alarm = {"repeat": repeat, "next_at": next_at, "notified": notified}

    @event("DispositionNoted")
    def note_disposition(self, disposition: str, caused_by: UUID, at: datetime) -> None:
        """Someone recorded how the incident ended: that answers a NOBODY ACCEPTED alarm."""
        self.disposition = disposition

    # ---- on scene ---------------------------------------------------------------------------------

    @event("Progressed")
    def progress(
        self,
        responder_id: UUID,
        stage: str,
        message_sid: str | None,
        caused_by: UUID,
        at: datetime,
        reported_by: str | None = None,  # pressed on the incident page (message_sid None) by this subject
        channel: str | None = None,  # "voice": keys pressed on a call in (None: stored before it was recorded)
    ) -> None:
        if stage == "arrived":
            self._prompts()["arrived"].setdefault(str(responder_id), at)
        if stage == "done":
            self.on_it.pop(str(responder_id), None)
            if not self.on_it:
                self.status = "completed"

    @event("Cancelled")
    def cancel(self, reason: str, caused_by: UUID, at: datetime) -> None:
        self.status = "cancelled"
        self.on_it.clear()

    # ---- field reports (read by the check-in and field deadlines) ---------------------------------------

    @event("EtaNoted")
    def note_eta(
        self, responder_id: UUID, minutes: int, eta_at: datetime, message_sid: str | None, caused_by: UUID, at: datetime
    ) -> None:
        """``Y <code> <minutes>``: the responder's estimate of arrival (the latest one counts)."""
        self._field()["etas"][str(responder_id)] = eta_at

    @event("EmsCallNoted")
    def note_ems_called(
        self,
        called_at: datetime,
        responder_id: UUID | None,
        channel: str,
        message_sid: str | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """911 was called (the first report of it counts)."""
        field = self._field()
        if field["ems_called_at"] is None:
            field["ems_called_at"] = called_at

    @event("EmsArrivalNoted")
    def note_ems_arrived(self, arrived_at: datetime, caused_by: UUID, at: datetime) -> None:
        """EMS is on scene (the first report of it counts)."""
        field = self._field()
        if field["ems_arrived_at"] is None:
            field["ems_arrived_at"] = arrived_at

    # ---- safety check-ins and field deadlines (check_ins.py; the times come from field_policy.py) ----------

    @event("CheckInStarted")
    def start_check_in(
        self,
        responder_id: UUID,
        code: str,
        phone: str,
        language: str,
        channel: str,
        minutes: int,
        due_at: datetime,
        prompt_at: datetime | None,
        next_at: datetime | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """``ARRIVED``: the responder's check-in timer runs (``next_at``: the first missed step)."""
        self._check_ins()[str(responder_id)] = {
            "code": code,
            "phone": phone,
            "language": language,
            "minutes": minutes,
            "due_at": due_at,
            "prompt_at": prompt_at,
            "missed": 0,
            "next_at": next_at,
            "active": True,
        }

    @event("CheckInPrompted")
    def prompt_check_in(self, responder_id: UUID, caused_by: UUID | None, at: datetime) -> None:
        self._check_ins()[str(responder_id)]["prompt_at"] = None

    @event("CheckInConfirmed")
    def confirm_check_in(
        self,
        responder_id: UUID,
        channel: str,
        message_sid: str | None,
        minutes: int,
        due_at: datetime,
        prompt_at: datetime | None,
        next_at: datetime | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """``OK`` (or a duress word, which looks the same here): the timer restarts, nothing is missed."""
        state = self._check_ins()[str(responder_id)]
        state.update(minutes=minutes, due_at=due_at, prompt_at=prompt_at, missed=0, next_at=next_at, active=True)

    @event("CheckInMissed")
    def miss_check_in(
        self,
        responder_id: UUID,
        step: str,
        responder_name: str,
        minutes_overdue: int,
        last_known: dict[str, Any] | None,
        notified: list[dict[str, Any]],  # responder_id, role, phone, language, name of each person paged
        next_at: datetime | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        """One step of a missed check-in was taken (one event per step; ``next_at``: the step after, if any)."""
        state = self._check_ins()[str(responder_id)]
        state["missed"] += 1
        state["next_at"] = next_at
        state["prompt_at"] = None  # past due: the reminder says it now

    @event("DuressSignalled")
    def signal_duress(
        self,
        responder_id: UUID,
        responder_name: str,
        last_known: dict[str, Any] | None,
        notified: list[dict[str, Any]],
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """A duress word was in the responder's reply (the word itself is never kept): the supervisor is paged."""

    @event("CheckInEnded")
    def end_check_in(self, responder_id: UUID, reason: str, channel: str | None, caused_by: UUID, at: datetime) -> None:
        self._check_ins()[str(responder_id)]["active"] = False

    @event("PairWaitNoted")
    def note_pair_wait(
        self,
        responder_id: UUID,
        responder_name: str,
        code: str,
        rule: str,
        supervisor: dict[str, Any] | None,
        caused_by: UUID,
        at: datetime,
    ) -> None:
        """A responder alone on a pairs-only incident was told to wait for the partner; the supervisor was told."""

    @event("EtaOverdueNoted")
    def note_eta_overdue(
        self,
        responder_id: UUID,
        responder_name: str,
        eta_at: datetime,
        minutes_late: int,
        supervisor: dict[str, Any] | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        self._prompts()["eta_overdue"].append(str(responder_id))

    @event("EmsOverdueNoted")
    def note_ems_overdue(
        self,
        since: datetime,
        minutes_waited: int,
        supervisor: dict[str, Any] | None,
        caused_by: UUID | None,
        at: datetime,
    ) -> None:
        self._prompts()["ems_overdue"] = True

    # ---- queries ----------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.status in ("completed", "cancelled")

    def open_pages(self, slot: str | None = None) -> list[UUID]:
        return [
            UUID(page_id)
            for page_id, page in self.pages.items()
            if page["status"] == OPEN and (slot is None or page["slot"] == slot)
        ]

    def page(self, page_id: UUID) -> Page:
        return Page.of(str(page_id), self.pages[str(page_id)])

    def find_page(self, page_id: UUID) -> Page | None:
        stored = self.pages.get(str(page_id))
        return Page.of(str(page_id), stored) if stored is not None else None

    def slot(self, name: str) -> SlotState:
        return SlotState.of(name, self.slots[name])

    def slot_names(self) -> list[str]:
        return list(self.slots)

    def position(self) -> Rung:
        """The incident's one position on the ladder: the highest step any of its slots was asked at.

        A slot that waited while the ladder climbed (its pages were still open) is asked where the ladder is,
        without another escalation.
        """
        top = max((Rung(state["step"], state["rung"]) for state in self.slots.values()), key=Rung.key, default=None)
        return top or Rung(1, "candidates")

    def tried(self) -> frozenset[UUID]:
        """Everyone paged for any slot of this incident: nobody is paged twice for one incident."""
        return frozenset(UUID(r) for state in self.slots.values() for r in state["tried"])

    def page_by_code(self, responder_id: UUID, code: str) -> UUID | None:
        for page_id, page in self.pages.items():
            if page["responder_id"] == str(responder_id) and page["code"] == code:
                return UUID(page_id)
        return None

    def needs_escalation(self, slot: str) -> bool:
        """Nobody accepted, nobody is still open, and the ladder is still running."""
        state = self.slots[slot]
        return state["active"] and state["covered_by"] is None and not self.open_pages(slot) and not self.is_closed

    def due(self, now: datetime) -> list[DueAction]:
        """What the clock asks for now. A passed deadline wins over a reminder that was never sent."""
        actions = []
        for page_id, page in self.pages.items():
            if page["status"] != OPEN:
                continue
            if page["deadline"] <= now:
                actions.append(DueAction(UUID(page_id), "time_out"))
            elif page["voice_at"] is not None and page["voice_at"] <= now and page["reminder_at"] is None:
                actions.append(DueAction(UUID(page_id), "call"))
            elif page["reminder_at"] is not None and page["reminder_at"] <= now:
                actions.append(DueAction(UUID(page_id), "remind"))
        return actions

    def next_deadline(self) -> datetime | None:
        times = [
            t
            for page in self.pages.values()
            if page["status"] == OPEN
            for t in (page["reminder_at"], page["voice_at"] if page["reminder_at"] is None else None, page["deadline"])
            if t is not None
        ]
        if self.alarm_sounding():
            times.append(self._alarm()["next_at"])
        times.extend(self._field_deadlines())
        return min(times, default=None)

    def alarm_sounding(self) -> bool:
        """NOBODY ACCEPTED sounded and nothing answered it yet: no acceptance, cancellation or disposition."""
        return self._alarm() is not None and self.status == "exhausted" and self.recorded_disposition() is None

    def alarm_due(self, now: datetime) -> bool:
        alarm = self._alarm()
        return alarm is not None and self.alarm_sounding() and alarm["next_at"] <= now

    def alarm_repeats(self) -> int:
        """How many times NOBODY ACCEPTED sounded for this incident (0: never)."""
        alarm = self._alarm()
        return alarm["repeat"] if alarm is not None else 0

    def recorded_disposition(self) -> str | None:
        return getattr(self, "disposition", None)  # a snapshot stored before dispositions were noted has none

    def report_time(self) -> datetime:
        """When the report was made (for a snapshot stored before this was kept: when the incident was opened)."""
        return getattr(self, "reported_at", None) or self.created_on

    def _alarm(self) -> dict[str, Any] | None:
        return getattr(self, "alarm", None)

    def _open_page(self, page_id: UUID) -> dict[str, Any]:
        page = self.pages[str(page_id)]
        if page["status"] != OPEN:
            raise PageNotOpen(page_id)
        return page

    def _close(self, page_id: UUID, status: str) -> None:
        self._open_page(page_id)["status"] = status

    # ---- re-assessment on scene (F4: incident.reassessed) ------------------------------------------------

    @event("Reprioritized")
    def reprioritize(self, priority: str, caused_by: UUID, at: datetime) -> None:
        """A clinician re-scored the person on scene and triage gave ``priority`` (the reported one stays in
        ``Opened``; pages already offered keep theirs)."""
        self.priority = priority


def _slot() -> dict[str, Any]:
    return {"step": 1, "rung": "candidates", "tried": [], "covered_by": None, "active": True}
