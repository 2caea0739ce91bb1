"""Crisis intake use cases: check, locate, triage and append reports; append updates to open incidents.

Ports (implemented in ``adapters/``): ``IncidentStates`` knows which incidents are open (durable, shared by
every gateway instance); ``RecentReports`` holds the last minutes' reports for the possible-duplicate rule
(durable too, so a restarted gateway still links a report to one made just before the restart); the
``Locator`` (``locator.py``) places a report.

Every use case appends its event to the stream before it answers; if the append fails, nothing was
recorded and the caller gets the exception (the entrypoint answers 503). The ids of what a use case records come
from the request's ``RequestIds``, so a retry with the same Idempotency-Key records under the same ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID, uuid4

from services.contract.events import (
    AccessRefused,
    AccessRefusedData,
    Assessment,
    CrisisKind,
    EmsArrived,
    EmsArrivedData,
    Envelope,
    IncidentCancelled,
    IncidentCancelledData,
    IncidentRelocated,
    IncidentRelocatedData,
    IncidentReported,
    IncidentReportedData,
    NaloxoneAdministered,
    NaloxoneAdministeredData,
    OverdoseDetails,
    Reporter,
    SelfHarmRiskDetails,
    WithdrawalDetails,
    derived_id,
    new_event,
)
from services.intake_gateway.domain.access import Caller, IncidentRelations, may_change_incident
from services.intake_gateway.domain.consistency import (
    overdose_contradictions,
    self_harm_contradictions,
    withdrawal_contradictions,
)
from services.intake_gateway.domain.duplicates import (
    DuplicateRule,
    PossibleDuplicate,
    RecentReport,
    possible_duplicates,
)
from services.intake_gateway.domain.triage import (
    Thresholds,
    Triage,
    triage_overdose,
    triage_self_harm_risk,
    triage_withdrawal,
)
from services.intake_gateway.locator import LocationGiven, Locator
from services.intake_gateway.refusals import IncidentClosed, IncidentNotFound, IncidentStatus, InvalidInput, NotYours
from services.runtime.clock import Clock
from services.runtime.request_ids import FRESH, RequestIds
from services.runtime.stream import ANSWER_BY

PRODUCER = "intake_gateway"
log = logging.getLogger(__name__)

Publish = Callable[[Envelope], Awaitable[int]]
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of phones and laptops drift; beyond this a time is a typo


class IncidentStates(Protocol):
    """Open or closed, and who is related to it, per incident; durable and shared by every gateway instance."""

    async def opened(self, incident_id: UUID, kind: str, at: datetime, reported_by: str | None = None) -> None:
        """Record a new open incident (no change if it is already known)."""

    async def relations(self, incident_id: UUID) -> tuple[IncidentStatus, IncidentRelations] | None:
        """The incident's status and who reported it and was paged for it; None when the gateway never heard
        of it."""

    async def close(self, incident_id: UUID, status: Literal["cancelled", "completed"], at: datetime) -> None:
        """Mark the incident closed; closing a closed incident changes nothing."""


class RecentReports(Protocol):
    """The reports of the last few minutes, for the possible-duplicate rule."""

    def near(self, kind: str, lat: float, lon: float) -> Iterable[RecentReport]:
        """Recent reports of ``kind`` around the point: at least every one within the duplicate radius (more
        is fine, the rule filters exactly). Never blocks."""

    def hold(self, report: RecentReport) -> None:
        """Make ``report`` visible at once to the next report handled here, before it is recorded."""

    def drop(self, incident_id: UUID) -> None:
        """Undo ``hold`` for a report that could not be appended."""

    async def record(self, report: RecentReport) -> None:
        """Make ``report`` durable and visible to every instance."""


@dataclass(frozen=True)
class ReportIncident:
    kind: CrisisKind
    location: LocationGiven
    reporter: Reporter
    details: OverdoseDetails | WithdrawalDetails | SelfHarmRiskDetails
    caller: Caller
    ids: RequestIds = FRESH  # from an Idempotency-Key's seed: a retry is the same incident


@dataclass(frozen=True)
class ReportAccepted:
    event: IncidentReported
    triage: Triage
    duplicates: list[PossibleDuplicate] = field(default_factory=list)
    """The possible duplicates the caller may know of (the event links them all, for directors)."""


@dataclass
class IncidentIntake:
    """Reports in (checked, located, triaged, linked to possible duplicates) and the four updates, appended."""

    publish: Publish
    clock: Clock
    _: KW_ONLY
    locator: Locator
    thresholds: Thresholds
    duplicate_rule: DuplicateRule
    incidents: IncidentStates
    recent: RecentReports

    # ---- reports ---------------------------------------------------------------------------------------

    async def report(self, command: ReportIncident) -> ReportAccepted:
        """Check, locate, triage, link possible duplicates, append. Raises InvalidInput (422),
        GeocoderUnavailable (503), or the stream's error (503: nothing was recorded)."""
        triage = self.triage(command.kind, command.details)
        placed = await self.locator.place(command.location, "location")
        now = self.clock.now()
        incident_id = command.ids.id_for("incident")
        location = placed.location
        nearby = self.recent.near(command.kind.value, location.lat, location.lon)
        duplicates = possible_duplicates(
            command.kind.value, location.lat, location.lon, now, nearby, self.duplicate_rule, excluding=incident_id
        )
        short_code = f"{1000 + incident_id.int % 9000}"
        data = IncidentReportedData(
            incident_id=incident_id,
            short_code=short_code,
            kind=command.kind,
            priority=triage.priority,
            needs=list(triage.needs),
            guidance=list(triage.guidance),
            location=location,
            reporter=command.reporter,
            overdose=command.details if isinstance(command.details, OverdoseDetails) else None,
            withdrawal=command.details if isinstance(command.details, WithdrawalDetails) else None,
            self_harm_risk=command.details if isinstance(command.details, SelfHarmRiskDetails) else None,
            assessment=Assessment(risk_level=triage.risk_level, reasons=list(triage.reasons)),
            zone=placed.zone,
            outside_service_area=placed.outside_service_area,
            possible_duplicate_of=[d.incident_id for d in duplicates],
            reported_by=command.caller.subject,
        )
        event = new_event(
            IncidentReported,
            data,
            # derived: a retried report with the same Idempotency-Key is the same event, stored once
            event_id=derived_id("incident.reported", incident_id),
            occurred_at=now,
            producer=PRODUCER,
            incident_id=incident_id,
        )
        recent = RecentReport(incident_id, command.kind.value, location.lat, location.lon, now, short_code)
        if command.ids.seed is not None and await self._already_reported(incident_id):
            # a retry of a report an earlier attempt under this key recorded (its answer could not be kept):
            # answered again, never appended twice, even after the stream's de-duplication window
            return ReportAccepted(event, triage, await self._visible(command.caller, duplicates))  # type: ignore[arg-type]
        # held before the append, so two reports handled at the same moment still see each other
        self.recent.hold(recent)
        try:
            await self.publish(event)
        except BaseException:
            self.recent.drop(incident_id)
            raise
        opened = self.incidents.opened(incident_id, command.kind.value, now, command.caller.subject)
        await asyncio.gather(
            self._best_effort("incident state", opened),
            self._best_effort("recent reports", self.recent.record(recent)),
        )
        return ReportAccepted(event, triage, await self._visible(command.caller, duplicates))  # type: ignore[arg-type]

    async def _visible(self, caller: Caller, duplicates: list[PossibleDuplicate]) -> list[PossibleDuplicate]:
        """The possible duplicates ``caller`` may know of (each looked up at once, not one after another)."""
        known = await asyncio.gather(*(self._may_know(caller, d.incident_id) for d in duplicates))
        return [d for d, may in zip(duplicates, known, strict=True) if may]

    async def _already_reported(self, incident_id: UUID) -> bool:
        """Whether the gateway's incident state knows this incident (its report is on the stream)."""
        try:
            return await self.incidents.relations(incident_id) is not None
        except Exception as exc:  # noqa: BLE001 - unknown: the append below is de-duplicated within the window
            log.warning("could not check for an earlier attempt: %s", type(exc).__name__)
            return False

    async def _may_know(self, caller: Caller, incident_id: UUID) -> bool:
        if caller.role == "director":
            return True
        try:
            known = await self.incidents.relations(incident_id)
        except Exception as exc:  # noqa: BLE001 - not naming a duplicate is the safe side
            log.warning("could not check a possible duplicate: %s", type(exc).__name__)
            return False
        return known is not None and may_change_incident(caller, known[1])

    def triage(self, kind: CrisisKind, details: OverdoseDetails | WithdrawalDetails | SelfHarmRiskDetails) -> Triage:
        """The triage of ``details``; InvalidInput if they contradict themselves or do not fit ``kind``."""
        expected = {
            CrisisKind.OVERDOSE: OverdoseDetails,
            CrisisKind.WITHDRAWAL: WithdrawalDetails,
            CrisisKind.SELF_HARM_RISK: SelfHarmRiskDetails,
        }[kind]
        if not isinstance(details, expected):
            raise InvalidInput([("details", f"{kind.value} needs {kind.value} details")])
        if isinstance(details, OverdoseDetails):
            contradictions, result = overdose_contradictions(details), triage_overdose(details)
        elif isinstance(details, WithdrawalDetails):
            contradictions, result = withdrawal_contradictions(details), triage_withdrawal(details, self.thresholds)
        else:
            contradictions, result = self_harm_contradictions(details), triage_self_harm_risk(details)
        if contradictions:
            raise InvalidInput([(f"details.{c.field}", c.message) for c in contradictions])
        return result

    # ---- updates ---------------------------------------------------------------------------------------

    async def record_naloxone(
        self,
        incident_id: UUID,
        *,
        given_at: datetime | None,
        product: str,
        dose_mg: float | None,
        route: str,
        given_by_role: str | None,
        response: str | None,
        caller: Caller,
        ids: RequestIds = FRESH,
    ) -> Envelope:
        await self._require_changeable(incident_id, caller, NaloxoneAdministered.TYPE)
        now = self.clock.now()
        given_at = self._not_future(given_at or now, now, "given_at")
        data = NaloxoneAdministeredData(
            incident_id=incident_id,
            given_at=given_at,
            product=product,
            dose_mg=dose_mg,
            route=route,  # type: ignore[arg-type]
            given_by_role=given_by_role,  # type: ignore[arg-type]
            response=response,  # type: ignore[arg-type]
            recorded_by=caller.subject,
        )
        return await self._append(NaloxoneAdministered, data, incident_id, ids.id_for(NaloxoneAdministered.TYPE))

    async def record_ems_arrived(
        self,
        incident_id: UUID,
        *,
        arrived_at: datetime | None,
        agency: str | None,
        caller: Caller,
        ids: RequestIds = FRESH,
    ) -> Envelope:
        await self._require_changeable(incident_id, caller, EmsArrived.TYPE)
        now = self.clock.now()
        data = EmsArrivedData(
            incident_id=incident_id,
            arrived_at=self._not_future(arrived_at or now, now, "arrived_at"),
            agency=agency,
            recorded_by=caller.subject,
        )
        return await self._append(EmsArrived, data, incident_id, ids.id_for(EmsArrived.TYPE))

    async def relocate(
        self,
        incident_id: UUID,
        *,
        location: LocationGiven,
        reason: str | None,
        caller: Caller,
        ids: RequestIds = FRESH,
    ) -> Envelope:
        await self._require_changeable(incident_id, caller, IncidentRelocated.TYPE)
        placed = await self.locator.place(location, "location")
        data = IncidentRelocatedData(
            incident_id=incident_id,
            location=placed.location,
            zone=placed.zone,
            outside_service_area=placed.outside_service_area,
            reason=reason,
            recorded_by=caller.subject,
        )
        return await self._append(IncidentRelocated, data, incident_id, ids.id_for(IncidentRelocated.TYPE))

    async def cancel(self, incident_id: UUID, *, reason: str, caller: Caller, ids: RequestIds = FRESH) -> Envelope:
        """Cancel as a false alarm. The event id is derived from the incident, not from ``ids``: two cancels at
        once, with keys or without, are one event."""
        await self._require_changeable(incident_id, caller, IncidentCancelled.TYPE)
        data = IncidentCancelledData(incident_id=incident_id, reason=reason, recorded_by=caller.subject)
        event = await self._append(IncidentCancelled, data, incident_id, derived_id("incident.cancelled", incident_id))
        await self._best_effort("incident state", self.incidents.close(incident_id, "cancelled", self.clock.now()))
        return event

    async def _require_changeable(self, incident_id: UUID, caller: Caller, event_type: str) -> None:
        """The incident is open and ``caller`` may change it. Unknown: 404 for a director, who may know every
        id; for anyone else unknown and not theirs are the same 403, and audited alike."""
        known = await self.incidents.relations(incident_id)
        if known is None and caller.role == "director":
            raise IncidentNotFound(str(incident_id))
        if known is None or not may_change_incident(caller, known[1]):
            await self._audit_refusal(caller, f"write:{event_type}", incident_id)
            raise NotYours(str(incident_id))
        status = known[0]
        if status != "open":
            raise IncidentClosed(status)

    async def _audit_refusal(self, caller: Caller, action: str, incident_id: UUID) -> None:
        data = AccessRefusedData(
            subject=caller.subject,
            role=caller.role,
            responder_id=caller.responder_id,
            action=action,
            record_type="incident",
            record_id=str(incident_id),
        )
        event = new_event(AccessRefused, data, event_id=uuid4(), occurred_at=self.clock.now(), producer=PRODUCER)
        # the refusal stands whether or not its audit entry could be appended; a failure is logged
        await self._best_effort("audit log", self.publish(event))

    def _not_future(self, value: datetime, now: datetime, name: str) -> datetime:
        if value > now + FUTURE_TOLERANCE:
            raise InvalidInput([(name, "is in the future")])
        return value

    async def _append(self, event_class: type[Envelope], data, incident_id: UUID, event_id: UUID) -> Envelope:  # noqa: ANN001
        event = new_event(
            event_class,
            data,
            event_id=event_id,
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            incident_id=incident_id,
        )
        await self.publish(event)
        return event

    async def _best_effort(self, what: str, step: Awaitable[None]) -> None:
        """After the append, the stream has the fact: a failed index write must not turn the answer into an error.
        The incident-state follower rebuilds the state from the stream; a lost recent-report entry only
        means one possible-duplicate link less on another instance."""
        answer_by = ANSWER_BY.get()
        timeout = None if answer_by is None else max(0.2, answer_by - asyncio.get_running_loop().time())
        try:  # within the answer deadline: a stalled bucket may not hold the answer back
            await asyncio.wait_for(step, timeout)
        except Exception as exc:  # noqa: BLE001 - logged, and the stream remains the record
            log.warning("could not update %s: %s", what, type(exc).__name__)
