"""How far an incident got, and when: milestones, the durations that matter, and the on-scene SLA.

Everything here is a pure function of the incident's recorded events (and, for an SLA still running, of the
moment asked about), so "as known at time T" is the same function over the events recorded by T.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from services.contract.events import (
    CheckInConfirmed,
    CheckInEnded,
    CheckInMissed,
    CheckInStarted,
    DispatchAcknowledged,
    DispatchAlarmRaised,
    DispatchAlarmStopped,
    DispatchCompleted,
    DispatchEscalated,
    DispatchOffered,
    DispatchUnfilled,
    DocumentationFieldsCompleted,
    DocumentationSignedOff,
    Envelope,
    EtaGiven,
    IncidentCancelled,
    IncidentReassessed,
    IncidentRelocated,
    IncidentReported,
    Location,
    Priority,
    ResponderArrived,
    ResponderEnRoute,
    SmsSent,
)


@dataclass(frozen=True)
class RecordedEvent:
    """One event as the stream recorded it: its sequence and the time the stream stored it."""

    sequence: int
    recorded_at: datetime
    event: Envelope


def known_at(events: Iterable[RecordedEvent], as_of: datetime | None) -> list[RecordedEvent]:
    """The events the system had recorded by ``as_of`` (all of them when None), in stream order."""
    chosen = [e for e in events if as_of is None or e.recorded_at <= as_of]
    return sorted(chosen, key=lambda e: e.sequence)


@dataclass(frozen=True)
class SlaTargets:
    """Configurable response-time targets (DOMAIN.md: on site within 60 minutes of the request)."""

    on_scene_minutes: Mapping[str, int] = field(default_factory=lambda: {"P1": 60, "P2": 60, "P3": 60})
    default_on_scene_minutes: int = 60

    def on_scene(self, priority: Priority | str) -> timedelta:
        key = priority.value if isinstance(priority, Priority) else str(priority)
        return timedelta(minutes=self.on_scene_minutes.get(key, self.default_on_scene_minutes))


MILESTONES = ("first_page", "acknowledged", "en_route", "on_scene", "closed")


@dataclass(frozen=True)
class SlaStatus:
    target_minutes: int
    due_at: datetime
    state: Literal["met", "breached", "pending", "not_applicable"]
    minutes_late: float | None = None

    @property
    def breached(self) -> bool:
        return self.state == "breached"


class DispatchStage(StrEnum):
    """Where an incident's response stands, as the board shows it at a glance (most urgent first in ``URGENCY``)."""

    UNFILLED = "unfilled"  # every step of the ladder was tried and nobody accepted (the alarm, if any, still on)
    WAITING = "waiting"  # reported, nobody paged yet
    PAGING = "paging"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    NOBODY_WENT = "nobody_went"  # the alarm was stopped by a disposition recorded without anyone accepting
    DONE = "done"
    CANCELLED = "cancelled"


def _people(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def stage_words(
    stage: DispatchStage,
    *,
    step: int = 0,
    alarm_repeats: int = 0,
    accepted: Sequence[str] = (),
    en_route: Sequence[str] = (),
    on_scene: Sequence[str] = (),
) -> str:
    """The board's words for a dispatch stage, with the names of the people at it ('accepted by Cleo Clinician')."""
    who = {DispatchStage.ACCEPTED: accepted, DispatchStage.EN_ROUTE: en_route, DispatchStage.ON_SCENE: on_scene}
    if stage in who:
        names = who[stage]
        prefix = "accepted by" if stage is DispatchStage.ACCEPTED else f"{stage.value.replace('_', ' ')}:"
        return f"{prefix} {_people(names)}" if names else stage.value.replace("_", " ")
    if stage is DispatchStage.UNFILLED:
        sounded = {0: "", 1: "; alarm sounded once"}.get(alarm_repeats, f"; alarm sounded {alarm_repeats} times")
        return f"UNFILLED: nobody accepted{sounded}"
    if stage is DispatchStage.PAGING:
        return f"paging, step {step}"
    return {
        DispatchStage.WAITING: "not paged yet",
        DispatchStage.NOBODY_WENT: "nobody went; disposition recorded",
        DispatchStage.DONE: "done",
        DispatchStage.CANCELLED: "cancelled",
    }[stage]


def location_text(location: Location) -> str:
    """Where the person is, in a few words: the address given, else the named place, else the coordinates."""
    return location.address or location.place or f"{location.lat:.5f}, {location.lon:.5f}"


@dataclass
class Progress:
    """An incident as known from its events. Times are the events' own (clinical) times."""

    incident_id: UUID
    short_code: str | None = None
    kind: str | None = None
    priority: str | None = None
    zone: str | None = None
    reported_at: datetime | None = None
    first_page_at: datetime | None = None
    responder_notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    en_route_at: datetime | None = None
    on_scene_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled: bool = False
    escalations: int = 0
    closed_by: UUID | None = None
    paged: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    acknowledged_by: list[UUID] = field(default_factory=list)
    en_route_by: list[UUID] = field(default_factory=list)
    on_scene_by: list[UUID] = field(default_factory=list)
    signed_off: bool = False
    location: str | None = None
    step: int = 0
    """The ladder step paged last (0: nobody paged yet)."""
    ladder_exhausted: bool = False
    """Every step, up to the clinical director, was tried (``dispatch.unfilled`` with ``ladder_exhausted``); a
    ``dispatch.unfilled`` for one empty step is not this: the ladder goes on."""
    alarm_repeats: int = 0
    alarm_stopped: str | None = None
    """Why the NOBODY ACCEPTED alarm stopped (accepted, cancelled, disposition_recorded); None while it sounds."""
    etas: dict[UUID, datetime] = field(default_factory=dict)
    """Responder -> the arrival they estimated (``Y <code> <minutes>``; the latest counts), until they are on scene."""
    check_ins: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    """Responder -> their running check-in: ``due_at`` and ``missed`` (a step was taken for a missed one); gone
    once ended. A duress signal is not here: to the board it looks like the OK it pretends to be."""

    @property
    def status(self) -> Literal["open", "closed", "cancelled"]:
        if self.cancelled:
            return "cancelled"
        return "closed" if self.closed_at is not None else "open"

    @property
    def dispatch_stage(self) -> DispatchStage:
        """How far the response got: the furthest stage anyone reached, or unfilled while nobody accepted a
        ladder that ran out (an alarm that was raised and not stopped)."""
        if self.cancelled:
            return DispatchStage.CANCELLED
        if self.closed_at is not None:
            return DispatchStage.DONE
        reached = (
            (self.on_scene_by or self.on_scene_at, DispatchStage.ON_SCENE),
            (self.en_route_by or self.en_route_at, DispatchStage.EN_ROUTE),
            (self.acknowledged_by or self.acknowledged_at, DispatchStage.ACCEPTED),
        )
        for done, stage in reached:
            if done:
                return stage
        if self.alarm_stopped == "disposition_recorded":
            return DispatchStage.NOBODY_WENT
        if self.ladder_exhausted or (self.alarm_repeats and self.alarm_stopped is None):
            return DispatchStage.UNFILLED
        return DispatchStage.PAGING if self.step else DispatchStage.WAITING

    @property
    def unfilled(self) -> bool:
        """Nobody accepted and nobody more will be paged: the board shows it red, first."""
        return self.dispatch_stage is DispatchStage.UNFILLED

    @property
    def check_in_missed(self) -> bool:
        """Someone on the incident missed a check-in and has not answered since: red and first, like unfilled."""
        return self.status == "open" and any(c["missed"] for c in self.check_ins.values())

    def field_facts(self) -> dict[str, Any]:
        """The board's field cell: ETAs of those not yet on scene, and running check-ins (times as ISO text)."""
        return {
            "etas": {str(r): at.isoformat() for r, at in self.etas.items() if r not in self.on_scene_by},
            "check_ins": {
                str(r): {"due_at": c["due_at"].isoformat(), "missed": c["missed"]} for r, c in self.check_ins.items()
            },
        }

    def board_facts(self) -> dict[str, Any]:
        """What the board shows besides times and counts (sealed at rest: it says where, and what kind)."""
        return {
            "kind": self.kind,
            "zone": self.zone,
            "location": self.location,
            "dispatch": {
                "stage": self.dispatch_stage.value,
                "step": self.step,
                "accepted": [str(r) for r in self.acknowledged_by],
                "en_route": [str(r) for r in self.en_route_by],
                "on_scene": [str(r) for r in self.on_scene_by],
                "alarm_repeats": self.alarm_repeats,
            },
            "field": self.field_facts() if self.status == "open" else {},
        }

    def milestone(self, name: str) -> datetime | None:
        return getattr(self, f"{name}_at")

    def durations(self) -> dict[str, float | None]:
        """Seconds from the report to each milestone (None when not reached)."""
        result: dict[str, float | None] = {}
        for name in MILESTONES:
            at = self.milestone(name)
            result[name] = (at - self.reported_at).total_seconds() if at and self.reported_at else None
        return result

    def sla(self, targets: SlaTargets, now: datetime) -> SlaStatus | None:
        """The on-scene SLA at ``now``: met, breached (late or still not there), pending, or not applicable."""
        if self.reported_at is None or self.priority is None:
            return None
        target = targets.on_scene(self.priority)
        due = self.reported_at + target
        minutes = int(target.total_seconds() // 60)
        if self.on_scene_at is not None:
            late = (self.on_scene_at - due).total_seconds() / 60
            return SlaStatus(minutes, due, "breached" if late > 0 else "met", max(late, 0.0))
        ended = self.closed_at if self.closed_at is not None else (now if not self.cancelled else None)
        if self.cancelled and self.closed_at is None:
            return SlaStatus(minutes, due, "not_applicable")
        if ended is not None and ended > due:
            return SlaStatus(minutes, due, "breached", (ended - due).total_seconds() / 60)
        if self.status == "open":
            return SlaStatus(minutes, due, "pending")
        return SlaStatus(minutes, due, "not_applicable")

    def people(self) -> dict[UUID, str]:
        """Responder id -> how they were involved ('acknowledged' beats 'paged')."""
        involved = {rid: "paged" for rid in self.paged}
        involved.update({rid: "acknowledged" for rid in self.acknowledged_by})
        return involved


def _first(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _add_once(people: list[UUID], responder_id: UUID) -> None:
    if responder_id not in people:
        people.append(responder_id)


def incident_progress(events: Sequence[RecordedEvent]) -> Progress | None:
    """Fold an incident's recorded events (stream order) into its progress; None before the report is known."""
    progress: Progress | None = None
    documented: dict[str, datetime] = {}
    pages: set[UUID] = set()
    for recorded in events:
        event = recorded.event
        if isinstance(event, IncidentReported):
            data = event.data
            progress = Progress(
                incident_id=data.incident_id,
                short_code=data.short_code,
                kind=data.kind.value,
                priority=data.priority.value,
                zone=data.zone,
                reported_at=event.occurred_at,
                location=location_text(data.location),
            )
            continue
        if progress is None:
            if event.incident_id is None:
                continue
            progress = Progress(incident_id=event.incident_id)
        at = event.occurred_at
        if isinstance(event, DispatchOffered):
            progress.first_page_at = _first(progress.first_page_at, at)
            progress.step = max(progress.step, event.data.step)
            pages.add(event.data.page_id)
            progress.paged.setdefault(
                event.data.responder_id,
                {"role": event.data.responder_role, "team_role": event.data.reason.team_role, "paged_at": at},
            )
        elif isinstance(event, SmsSent) and progress.first_page_at is not None:
            progress.responder_notified_at = _first(progress.responder_notified_at, at)
        elif isinstance(event, DispatchAcknowledged):
            progress.acknowledged_at = _first(progress.acknowledged_at, at)
            _add_once(progress.acknowledged_by, event.data.responder_id)
        elif isinstance(event, ResponderEnRoute):
            progress.en_route_at = _first(progress.en_route_at, at)
            _add_once(progress.en_route_by, event.data.responder_id)
        elif isinstance(event, ResponderArrived):
            progress.on_scene_at = _first(progress.on_scene_at, at)
            _add_once(progress.on_scene_by, event.data.responder_id)
        elif isinstance(event, DispatchCompleted):
            # the incident closes when the last responder still on it is done
            if progress.closed_at is None and event.data.closes_incident:
                progress.closed_at = at
                progress.closed_by = event.data.responder_id
        elif isinstance(event, DispatchEscalated):
            progress.escalations += 1
            progress.step = max(progress.step, event.data.to_step)
        elif isinstance(event, DispatchUnfilled):
            progress.ladder_exhausted |= "ladder_exhausted" in event.data.shortfalls
        elif isinstance(event, DispatchAlarmRaised):
            progress.alarm_repeats = max(progress.alarm_repeats, event.data.repeat)
            progress.alarm_stopped = None
        elif isinstance(event, DispatchAlarmStopped):
            progress.alarm_stopped = event.data.reason
        elif isinstance(event, DocumentationFieldsCompleted):
            fields = event.data.fields
            for name in ("acknowledged_at", "en_route_at", "on_scene_at", "cleared_at"):
                if (value := getattr(fields, name)) is not None:
                    documented[name] = value
        elif isinstance(event, DocumentationSignedOff):
            progress.signed_off = event.data.decision == "approved"
        elif isinstance(event, IncidentRelocated):
            progress.zone = event.data.zone or progress.zone
            progress.location = location_text(event.data.location)
        elif isinstance(event, IncidentCancelled):
            progress.cancelled = True
            progress.closed_at = progress.closed_at or at
        else:
            _fold_field(progress, event)
    if progress is None:
        return None
    # times documented by a clinician fill in what nobody texted; texted times stay authoritative
    progress.acknowledged_at = progress.acknowledged_at or documented.get("acknowledged_at")
    progress.en_route_at = progress.en_route_at or documented.get("en_route_at")
    progress.on_scene_at = progress.on_scene_at or documented.get("on_scene_at")
    progress.closed_at = progress.closed_at or documented.get("cleared_at")
    return progress


def _fold_field(progress: Progress, event: Envelope) -> None:
    """What the field reports change on the board: ETAs, check-ins, and a priority a re-assessment changed."""
    data = event.data
    if isinstance(event, EtaGiven):
        progress.etas[data.responder_id] = data.eta_at
    elif isinstance(event, CheckInStarted):
        progress.check_ins[data.responder_id] = {"due_at": data.due_at, "missed": False}
    elif isinstance(event, CheckInConfirmed):
        progress.check_ins[data.responder_id] = {"due_at": data.next_due_at, "missed": False}
    elif isinstance(event, CheckInMissed):
        progress.check_ins[data.responder_id] = {"due_at": data.due_at, "missed": True}
    elif isinstance(event, CheckInEnded):
        progress.check_ins.pop(data.responder_id, None)
    elif isinstance(event, IncidentReassessed):
        progress.priority = data.priority.value


@dataclass(frozen=True)
class SlaMark:
    """A synthetic timeline mark: the moment the on-scene target passed with nobody on scene."""

    at: datetime
    summary: str


def sla_marks(progress: Progress, targets: SlaTargets, now: datetime) -> list[SlaMark]:
    status = progress.sla(targets, now)
    if status is None or status.state != "breached":
        return []
    if progress.on_scene_at is not None:
        return [
            SlaMark(
                progress.on_scene_at,
                f"SLA breach: on scene {status.minutes_late:.0f} min after the {status.target_minutes} min target",
            )
        ]
    return [SlaMark(status.due_at, f"SLA breach: nobody on scene within {status.target_minutes} min")]
