"""Crisis documentation assembled from an incident's events (DOMAIN.md), with an explicit list of gaps.

Nothing required is silently left blank: each missing item is a ``Gap`` naming the field a clinician can fill
(``documentation.fields_completed``). Attestation is only possible with no gaps left; a director's sign-off
only after an attestation. Pure: the caller passes the events, the staff directory and the follow-up tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from services.contract.events import (
    DocumentationAttested,
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationSignedOff,
    EmsArrived,
    EmsCalled,
    IncidentReassessed,
    IncidentRelocated,
    IncidentReported,
    NaloxoneAdministered,
    NaloxoneDoseRecord,
    VitalsRecorded,
)
from services.projections.domain.progress import Progress, RecordedEvent
from services.projections.domain.referral_handoff import handoff_from_referrals

LICENSED_ROLES = frozenset({"clinician", "nurse", "prescriber", "supervisor", "director"})
"""Roster roles that may attest documentation (a peer coach may not: DOMAIN.md)."""

NO_RESPONSE_DISPOSITIONS = frozenset({"false_alarm"})
HANDOFF_DISPOSITIONS = frozenset({"transported_to_ed", "admitted", "referred_to_treatment"})
NO_PLAN_DISPOSITIONS = frozenset({"deceased", "false_alarm"})

DOCUMENTED_TIMES = ("acknowledged_at", "en_route_at", "on_scene_at", "handed_off_at", "cleared_at")

ATTESTATION_STATEMENT = "I attest that this crisis documentation is complete and accurate to the best of my knowledge."


@dataclass(frozen=True)
class StaffInfo:
    name: str
    role: str


@dataclass(frozen=True)
class Gap:
    key: str
    label: str
    section: str


@dataclass
class NaloxoneDose:
    given_at: datetime | None
    product: str | None
    dose_mg: float | None
    route: str | None
    given_by_role: str | None
    response: str | None
    source: str


@dataclass
class Documentation:
    incident_id: UUID
    status: Literal["draft", "attested", "signed_off", "returned"]
    when: dict[str, Any]
    where: dict[str, Any]
    who: dict[str, Any]
    what: dict[str, Any]
    outcome: dict[str, Any]
    minutes: dict[str, Any]
    part2_disclosures: list[dict[str, Any]]
    sign_off: dict[str, Any]
    gaps: list[Gap] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    """Every note a clinician saved, oldest first, each with when and by whom: a later note adds to the earlier."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _merge_fields(events: Sequence[RecordedEvent]) -> tuple[dict[str, Any], list[NaloxoneDoseRecord], list[Any]]:
    """Later completions win field by field; dose records, disclosures and notes accumulate (``merged['notes']``
    is the list of every note saved, with its time and author)."""
    merged: dict[str, Any] = {}
    doses: list[NaloxoneDoseRecord] = []
    disclosures: list[Any] = []
    notes: list[dict[str, Any]] = []
    for recorded in events:
        if isinstance(recorded.event, DocumentationFieldsCompleted):
            fields: DocumentationFields = recorded.event.data.fields
            for name in fields.model_fields_set:
                value = getattr(fields, name)
                if name == "naloxone_doses":
                    doses.extend(value)
                elif name == "part2_disclosure":
                    if value is not None:
                        disclosures.append(value)
                elif name == "notes":
                    if value:
                        event = recorded.event
                        notes.append({"at": event.occurred_at, "by": event.data.completed_by, "text": value})
                elif name == "safety_plan" and value is not None and merged.get("safety_plan") is not None:
                    previous = merged["safety_plan"]
                    merged["safety_plan"] = previous.model_copy(update=value.model_dump(exclude_none=True))
                else:
                    merged[name] = value
    merged["notes"] = notes
    return merged, doses, disclosures


def _intake_doses(events: Sequence[RecordedEvent]) -> list[NaloxoneDose]:
    """Doses intake recorded as they happened (incident.naloxone_administered)."""
    return [
        NaloxoneDose(
            given_at=r.event.data.given_at,
            product=r.event.data.product,
            dose_mg=r.event.data.dose_mg,
            route=r.event.data.route,
            given_by_role=r.event.data.given_by_role,
            response=r.event.data.response,
            source="intake",
        )
        for r in events
        if isinstance(r.event, NaloxoneAdministered)
    ]


def _triage(report: IncidentReported | None) -> dict[str, Any]:
    """Triage inputs and scores as reported: the details block of the report's kind."""
    if report is None:
        return {}
    data = report.data
    blocks = {"overdose": data.overdose, "withdrawal": data.withdrawal, "self_harm_risk": data.self_harm_risk}
    return {name: block.model_dump(mode="json") for name, block in blocks.items() if block is not None}


def assemble_documentation(
    events: Sequence[RecordedEvent],
    progress: Progress,
    staff: Mapping[UUID, StaffInfo],
    follow_ups: Sequence[Mapping[str, Any]] = (),
) -> Documentation:
    """The documentation as the events tell it, with every required-but-missing item listed as a gap."""
    report = next((r.event for r in events if isinstance(r.event, IncidentReported)), None)
    fields, dose_records, disclosures = _merge_fields(events)
    referral_pending = handoff_from_referrals(events, fields)  # issue 17: a confirmed admission is the hand-off
    gaps: list[Gap] = []

    def need(condition: bool, key: str, label: str, section: str) -> None:
        if condition:
            gaps.append(Gap(key, label, section))

    disposition = fields.get("disposition")
    no_response = disposition in NO_RESPONSE_DISPOSITIONS or progress.cancelled

    when = {
        "reported_at": progress.reported_at,
        "dispatch_notified_at": progress.first_page_at,
        "responder_notified_at": progress.responder_notified_at,
        "acknowledged_at": progress.acknowledged_at,
        "en_route_at": progress.en_route_at,
        "on_scene_at": progress.on_scene_at,
        "handed_off_at": fields.get("handed_off_at"),
        "cleared_at": fields.get("cleared_at") or progress.closed_at,
    }
    # a time texted as it happened stays the time; one a clinician documented differently is kept beside it
    when["as_documented"] = {k: fields[k] for k in DOCUMENTED_TIMES if fields.get(k) is not None}
    need(when["acknowledged_at"] is None and not no_response, "acknowledged_at", "time acknowledged", "when")
    need(when["on_scene_at"] is None and not no_response, "on_scene_at", "time on scene", "when")
    need(when["cleared_at"] is None, "cleared_at", "time cleared", "when")

    location = report.data.location if report else None
    moves = [r.event for r in events if isinstance(r.event, IncidentRelocated)]
    if moves:
        location = moves[-1].data.location
    where = {
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "address": location.address if location else None,
        "place": location.place if location else None,
        "access_notes": location.access_notes if location else None,
        "zone": progress.zone,
        "outside_service_area": (moves[-1].data if moves else report.data).outside_service_area if report else None,
        "relocations": [
            {"at": m.occurred_at, "address": m.data.location.address, "reason": m.data.reason} for m in moves
        ],
    }
    need(where["address"] is None and not no_response, "address", "response address", "where")

    responders = []
    for responder_id, how in progress.people().items():
        info = staff.get(responder_id)
        paged = progress.paged.get(responder_id, {})
        responders.append(
            {
                "responder_id": responder_id,
                "name": info.name if info else None,
                "role": info.role if info else paged.get("role"),
                "team_role": paged.get("team_role"),
                "involvement": how,
            }
        )
    closed_by = staff.get(progress.closed_by) if progress.closed_by else None
    reporter = report.data.reporter if report else None
    who = {
        "reporter": {
            "channel": reporter.channel if reporter else None,
            "relation": reporter.relation if reporter else None,
            "callback": reporter.callback if reporter else None,
        },
        "responders": responders,
        "supervisor": fields.get("supervisor_name"),
        "closed_by": closed_by.name if closed_by else (str(progress.closed_by) if progress.closed_by else None),
    }
    need(
        not any(r["involvement"] == "acknowledged" for r in responders) and not no_response,
        "responders",
        "a responder who took the call",
        "who",
    )

    triage = _triage(report)
    assessment = report.data.assessment if report else None
    doses = _intake_doses(events) + [
        NaloxoneDose(d.given_at, d.product, d.dose_mg, d.route, d.given_by_role, d.response, "clinician")
        for d in dose_records
    ]
    doses.sort(key=lambda d: d.given_at.isoformat() if d.given_at else "")
    reported_doses = (report.data.overdose.naloxone_doses_given if report and report.data.overdose else 0) or 0
    need(
        len(doses) < reported_doses,
        "naloxone_doses",
        f"details of {reported_doses - len(doses)} naloxone dose(s) given before arrival",
        "what",
    )
    for index, dose in enumerate(doses, start=1):
        need(dose.response is None, f"naloxone_doses[{index}].response", f"response to naloxone dose {index}", "what")

    ems_events = [r.event for r in events if isinstance(r.event, EmsArrived)]
    calls = [r.event for r in events if isinstance(r.event, EmsCalled)]
    ems = _ems(report, ems_events, fields, calls)
    what = {
        "kind": progress.kind,
        "priority": progress.priority,
        "needs": list(report.data.needs) if report else [],
        "triage": triage,
        "risk_level": assessment.risk_level if assessment else None,
        "triage_reasons": list(assessment.reasons) if assessment else [],
        "possible_duplicate_of": list(report.data.possible_duplicate_of) if report else [],
        "interventions": {"naloxone_doses": [asdict(d) for d in doses]},
        "ems": ems | {"arrived_at": ems_events[0].data.arrived_at if ems_events else None},
        "vitals": _vitals(events, staff),
        "reassessments": _reassessments(events),
        "handoff": {
            "organisation": fields.get("handoff_organisation"),
            "receiving_person": fields.get("handoff_receiving_person"),
            "at": fields.get("handed_off_at"),
        },
    }
    unknown = ems["activated"] is None and ems["needed"] and not no_response
    need(unknown, "ems_activated", "whether EMS (911) was activated", "what")
    need(bool(ems["activated"]) and not ems["agency"], "ems_agency", "EMS agency", "what")
    if referral_pending and not fields.get("handoff_organisation"):
        need(True, "handoff_organisation", f"hand-off organisation ({referral_pending})", "what")
    elif disposition in HANDOFF_DISPOSITIONS:
        need(not fields.get("handoff_organisation"), "handoff_organisation", "hand-off organisation", "what")
        need(
            not fields.get("handoff_receiving_person"), "handoff_receiving_person", "hand-off receiving person", "what"
        )

    safety_plan = fields.get("safety_plan")
    outcome = {
        "disposition": disposition,
        "follow_up_plan": fields.get("follow_up_plan"),
        "follow_ups": [dict(task) for task in follow_ups],
        "safety_plan": safety_plan.model_dump() if safety_plan is not None else None,
    }
    need(disposition is None, "disposition", "disposition", "outcome")
    need(
        not fields.get("follow_up_plan") and not follow_ups and disposition not in NO_PLAN_DISPOSITIONS,
        "follow_up_plan",
        "follow-up plan",
        "outcome",
    )
    if progress.kind == "self_harm_risk" and disposition not in NO_PLAN_DISPOSITIONS:
        missing_steps = [k for k, v in (safety_plan.model_dump() if safety_plan else {}).items() if not v]
        need(safety_plan is None, "safety_plan", "safety plan (Stanley-Brown, 6 steps)", "outcome")
        for step in missing_steps:
            need(True, f"safety_plan.{step}", f"safety plan step: {step.replace('_', ' ')}", "outcome")

    travel = (
        (progress.on_scene_at - progress.en_route_at).total_seconds() / 60
        if progress.on_scene_at and progress.en_route_at
        else None
    )
    cleared = when["cleared_at"]
    on_scene = (cleared - progress.on_scene_at).total_seconds() / 60 if cleared and progress.on_scene_at else None
    minutes = {
        "travel": travel,
        "on_scene": on_scene,
        "documentation": fields.get("documentation_minutes"),
        "language": fields.get("language"),
        "interpreter_used": fields.get("interpreter_used"),
    }
    need(minutes["documentation"] is None, "documentation_minutes", "minutes spent documenting", "minutes")
    need(minutes["language"] is None, "language", "language used", "minutes")

    sign_off, status = _signatures(events)
    return Documentation(
        incident_id=progress.incident_id,
        status=status,
        when=when,
        where=where,
        who=who,
        what=what,
        outcome=outcome,
        minutes=minutes,
        part2_disclosures=[d.model_dump() for d in disclosures],
        sign_off=sign_off,
        gaps=gaps,
        notes=fields["notes"],
    )


def _ems(
    report: IncidentReported | None,
    arrivals: Sequence[EmsArrived],
    fields: Mapping[str, Any],
    calls: Sequence[EmsCalled] = (),
) -> dict[str, Any]:
    """Whether EMS was activated, as recorded: the clinician's answer when given; else yes when the report said 911
    was already called, a responder reported calling 911 (``field.ems_called``: by text or the incident page), EMS
    was recorded arriving or an EMS agency was named; else not known (None). Triage asking for EMS now
    (``ems_now``) is advice to call, not a call: it only makes the answer needed."""
    called = bool(report and report.data.overdose and report.data.overdose.ems_called)
    agency = fields.get("ems_agency") or next((e.data.agency for e in arrivals if e.data.agency), None)
    activated = fields.get("ems_activated")
    if activated is None and (called or calls or arrivals or agency):
        activated = True
    return {
        "activated": activated,
        "called_before_dispatch": called,
        "called_at": min((c.data.called_at for c in calls), default=None),
        "needed": bool(report and "ems_now" in report.data.needs),
        "agency": agency,
    }


def _vitals(events: Sequence[RecordedEvent], staff: Mapping[UUID, StaffInfo]) -> list[dict[str, Any]]:
    """Vitals responders reported on scene (``field.vitals_recorded``), in the order taken."""
    taken = [r.event for r in events if isinstance(r.event, VitalsRecorded)]
    rows = []
    for event in sorted(taken, key=lambda e: e.data.taken_at):
        d = event.data
        info = staff.get(d.responder_id)
        rows.append(
            {
                "taken_at": d.taken_at,
                "respiratory_rate": d.respiratory_rate,
                "spo2": d.spo2,
                "pulse": d.pulse,
                "responsiveness": d.responsiveness,
                "recorded_by": info.name if info else None,
                "responder_id": d.responder_id,
                "channel": d.channel,
            }
        )
    return rows


def _reassessments(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """Scores a clinician recorded on scene (``incident.reassessed``) and what triage made of them."""
    return [
        {
            "at": r.event.occurred_at,
            "instrument": r.event.data.instrument,
            "score": r.event.data.score,
            "c_ssrs_risk": r.event.data.c_ssrs_risk,
            "risk_level": r.event.data.risk_level,
            "previous_priority": r.event.data.previous_priority.value,
            "priority": r.event.data.priority.value,
            "reasons": list(r.event.data.reasons),
            "recorded_by": r.event.data.recorded_by,
        }
        for r in events
        if isinstance(r.event, IncidentReassessed)
    ]


def _signatures(
    events: Sequence[RecordedEvent],
) -> tuple[dict[str, Any], Literal["draft", "attested", "signed_off", "returned"]]:
    sign_off: dict[str, Any] = {
        "attested_by": None,
        "attester_role": None,
        "attested_at": None,
        "statement": None,
        "signed_off_by": None,
        "signed_off_at": None,
        "decision": None,
        "comment": None,
    }
    status: Literal["draft", "attested", "signed_off", "returned"] = "draft"
    for recorded in events:
        event = recorded.event
        if isinstance(event, DocumentationAttested):
            sign_off |= {
                "attested_by": event.data.attested_by,
                "attester_role": event.data.attester_role,
                "attested_at": event.occurred_at,
                "statement": event.data.statement,
                "signed_off_by": None,
                "signed_off_at": None,
                "decision": None,
                "comment": None,
            }
            status = "attested"
        elif isinstance(event, DocumentationSignedOff) and status == "attested":
            sign_off |= {
                "signed_off_by": event.data.signed_off_by,
                "signed_off_at": event.occurred_at,
                "decision": event.data.decision,
                "comment": event.data.comment,
            }
            status = "signed_off" if event.data.decision == "approved" else "returned"
    return sign_off, status


class DocumentationRefused(Exception):
    """A signature that the documentation's state does not allow; the message says why."""


def check_attestation(doc: Documentation, attester_role: str) -> None:
    """Raises DocumentationRefused unless ``attester_role`` may attest ``doc`` now."""
    if attester_role not in LICENSED_ROLES:
        raise DocumentationRefused(f"a {attester_role.replace('_', ' ')} may not attest crisis documentation")
    if doc.status in ("attested", "signed_off"):
        raise DocumentationRefused(f"the documentation is already {doc.status.replace('_', ' ')}")
    if doc.gaps:
        raise DocumentationRefused(f"{len(doc.gaps)} gap(s) remain: " + ", ".join(g.label for g in doc.gaps))


def check_sign_off(doc: Documentation) -> None:
    """Raises DocumentationRefused unless a director may sign ``doc`` off now."""
    if doc.status != "attested":
        raise DocumentationRefused(f"only attested documentation can be signed off (it is {doc.status})")
