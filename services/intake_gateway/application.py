"""The gateway's intake use cases: check, locate, triage and append reports; append updates to open incidents.

Ports (implemented in ``adapters/``): ``domain.places.Geocoder`` resolves addresses and named places;
``IncidentStates`` knows which incidents are open (durable, shared by every gateway instance);
``RecentReports`` holds the last minutes' reports for the possible-duplicate rule (durable too, so a
restarted gateway still links a report to one made just before the restart).

Every use case appends its event to the stream before it answers; if the append fails, nothing was
recorded and the caller gets the exception (the entrypoint answers 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
    Location,
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
from services.intake_gateway.domain.places import AddressNotFound, Geocoder, Zone, zone_of
from services.intake_gateway.domain.triage import (
    Thresholds,
    Triage,
    triage_overdose,
    triage_self_harm_risk,
    triage_withdrawal,
)
from services.runtime.clock import Clock

PRODUCER = "intake_gateway"
log = logging.getLogger(__name__)

Publish = Callable[[Envelope], Awaitable[int]]
IncidentStatus = Literal["open", "cancelled", "completed"]
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of phones and laptops drift; beyond this a time is a typo


class InvalidInput(Exception):
    """Input that breaks an intake rule: answered 422, naming each field (a path in the request body)."""

    def __init__(self, errors: Sequence[tuple[str, str]], **extensions: object) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = list(errors)
        self.extensions = extensions


class IncidentNotFound(Exception):
    """No report with this id reached the gateway's incident state (404)."""


class NotYours(Exception):
    """The caller has no relation to the incident that lets them change it, or the incident is not known to
    them (answered 403 either way, so that a stranger cannot tell which ids exist); the refusal is audited."""


class IncidentClosed(Exception):
    """The incident was cancelled or completed: no more updates (409)."""

    def __init__(self, status: IncidentStatus) -> None:
        super().__init__(f"the incident is {status}")
        self.status = status


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
class LocationGiven:
    """What the reporter said about where: coordinates, or an address, or a named place (checked in that order)."""

    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    place: str | None = None
    access_notes: str | None = None


@dataclass(frozen=True)
class ReportIncident:
    kind: CrisisKind
    location: LocationGiven
    reporter: Reporter
    details: OverdoseDetails | WithdrawalDetails | SelfHarmRiskDetails
    caller: Caller
    incident_id: UUID | None = None  # set (from an Idempotency-Key's seed) so a retry is the same incident


@dataclass(frozen=True)
class ReportAccepted:
    event: IncidentReported
    triage: Triage
    duplicates: list[PossibleDuplicate] = field(default_factory=list)
    """The possible duplicates the caller may know of (the event links them all, for directors)."""


@dataclass(frozen=True)
class Placed:
    location: Location
    zone: str | None

    @property
    def outside_service_area(self) -> bool:
        return self.zone is None


class IntakeGateway:
    def __init__(
        self,
        publish: Publish,
        clock: Clock,
        *,
        geocoder: Geocoder,
        zones: Sequence[Zone],
        thresholds: Thresholds,
        duplicate_rule: DuplicateRule,
        incidents: IncidentStates,
        recent: RecentReports,
    ) -> None:
        self.publish = publish
        self.clock = clock
        self.geocoder = geocoder
        self.zones = tuple(zones)
        self.thresholds = thresholds
        self.duplicate_rule = duplicate_rule
        self.incidents = incidents
        self.recent = recent

    # ---- reports ---------------------------------------------------------------------------------------

    async def report(self, command: ReportIncident) -> ReportAccepted:
        """Check, locate, triage, link possible duplicates, append. Raises InvalidInput (422),
        GeocoderUnavailable (503), or the stream's error (503: nothing was recorded)."""
        triage = self.triage(command.kind, command.details)
        placed = await self.place(command.location, "location")
        now = self.clock.now()
        incident_id = command.incident_id or uuid4()
        location = placed.location
        duplicates = possible_duplicates(
            command.kind.value,
            location.lat,
            location.lon,
            now,
            self.recent.near(command.kind.value, location.lat, location.lon),
            self.duplicate_rule,
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
        visible = [d for d in duplicates if await self._may_know(command.caller, d.incident_id)]
        return ReportAccepted(event, triage, visible)  # type: ignore[arg-type]

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

    async def place(self, given: LocationGiven, path: str) -> Placed:
        """Coordinates as given, or the geocoded address / place; with its service zone (None: outside)."""
        if (given.lat is None) != (given.lon is None):
            missing = "lon" if given.lon is None else "lat"
            raise InvalidInput([(f"{path}.{missing}", "give both lat and lon, or an address or a place instead")])
        if given.lat is not None and given.lon is not None:
            location = Location(
                lat=given.lat,
                lon=given.lon,
                address=given.address,
                place=given.place,
                access_notes=given.access_notes,
                resolved_from="coordinates",
            )
        else:
            kind: Literal["address", "place"] = "address" if given.address else "place"
            query = given.address or given.place
            if not query or not query.strip():
                raise InvalidInput([(path, "give coordinates (lat and lon), an address or a named place")])
            try:
                resolved = await self.geocoder.locate(query, kind)
            except AddressNotFound as exc:
                hint = f"; did you mean: {', '.join(exc.suggestions)}" if exc.suggestions else ""
                raise InvalidInput(
                    [(f"{path}.{kind}", f"this {kind} is not known here{hint}")], suggestions=exc.suggestions
                ) from exc
            location = Location(
                lat=resolved.lat,
                lon=resolved.lon,
                address=(resolved.address or (given.address if kind == "address" else None)),
                place=resolved.place or given.place,
                access_notes=given.access_notes,
                resolved_from=kind,
            )
        return Placed(location, zone_of(location.lat, location.lon, self.zones))

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
        event_id: UUID | None = None,
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
        return await self._append(NaloxoneAdministered, data, incident_id, event_id)

    async def record_ems_arrived(
        self,
        incident_id: UUID,
        *,
        arrived_at: datetime | None,
        agency: str | None,
        caller: Caller,
        event_id: UUID | None = None,
    ) -> Envelope:
        await self._require_changeable(incident_id, caller, EmsArrived.TYPE)
        now = self.clock.now()
        data = EmsArrivedData(
            incident_id=incident_id,
            arrived_at=self._not_future(arrived_at or now, now, "arrived_at"),
            agency=agency,
            recorded_by=caller.subject,
        )
        return await self._append(EmsArrived, data, incident_id, event_id)

    async def relocate(
        self,
        incident_id: UUID,
        *,
        location: LocationGiven,
        reason: str | None,
        caller: Caller,
        event_id: UUID | None = None,
    ) -> Envelope:
        await self._require_changeable(incident_id, caller, IncidentRelocated.TYPE)
        placed = await self.place(location, "location")
        data = IncidentRelocatedData(
            incident_id=incident_id,
            location=placed.location,
            zone=placed.zone,
            outside_service_area=placed.outside_service_area,
            reason=reason,
            recorded_by=caller.subject,
        )
        return await self._append(IncidentRelocated, data, incident_id, event_id)

    async def cancel(self, incident_id: UUID, *, reason: str, caller: Caller) -> Envelope:
        """Cancel as a false alarm. The event id is derived from the incident: two cancels at once are one event."""
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

    async def _append(self, event_class: type[Envelope], data, incident_id: UUID, event_id: UUID | None) -> Envelope:  # noqa: ANN001
        event = new_event(
            event_class,
            data,
            event_id=event_id or uuid4(),
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
        try:
            await step
        except Exception as exc:  # noqa: BLE001 - logged, and the stream remains the record
            log.warning("could not update %s: %s", what, type(exc).__name__)
