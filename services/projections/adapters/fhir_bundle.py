"""The crisis documentation as an HL7 FHIR R4 Bundle (type ``collection``).

Resources: Patient (an unidentified person: the record carries no name), Encounter (status, class FLD, period,
location, participants, discharge disposition; NEMSIS eTimes as extensions and statusHistory), Observation
(C-SSRS overall risk, LOINC 93374-7; CIWA-Ar and COWS totals, also as re-assessed on scene; vital signs reported
from the field, LOINC with UCUM units), QuestionnaireResponse (C-SSRS answers by LOINC),
MedicationAdministration (each naloxone dose, RxNorm 7242), Task (each follow-up), Communication (each SMS,
with its template name only: no message text, no phone number) and CarePlan (the safety plan).

The JSON follows R4; the tests validate it with the ``fhir.resources`` R4B models (R4B changed none of these
resources' elements used here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.contract.events import (
    DispatchAcknowledged,
    DispatchCompleted,
    DispatchDeclined,
    NotificationRequested,
    ResponderArrived,
    ResponderEnRoute,
    SmsFailed,
    SmsSent,
    derived_id,
)
from services.projections.adapters.fhir_referrals import referral_resources
from services.projections.domain.documentation import Documentation
from services.projections.domain.followups import TaskState
from services.projections.domain.progress import Progress, RecordedEvent

EXTENSION_BASE = "https://crisis-dispatch.example.org/fhir/StructureDefinition"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CSSRS_LOINC = {
    "q1": "93246-7",
    "q2": "93247-5",
    "q3": "93248-3",
    "q4": "93249-1",
    "q5": "93250-9",
    "q6_ever": "93267-3",
    "q6_past_3_months": "93269-9",
}
CSSRS_OVERALL_RISK = "93374-7"
ETIMES = (
    ("eTimes.01", "reported_at", "PSAP call date/time"),
    ("eTimes.02", "dispatch_notified_at", "dispatch notified"),
    ("eTimes.03", "responder_notified_at", "unit notified by dispatch"),
    ("eTimes.04", "acknowledged_at", "dispatch acknowledged"),
    ("eTimes.05", "en_route_at", "unit en route"),
    ("eTimes.06", "on_scene_at", "unit arrived on scene"),
    ("eTimes.08", "handed_off_at", "transfer of care"),
    ("eTimes.13", "cleared_at", "unit back in service"),
)
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = {
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "pulse": ("8867-4", "Heart rate", "/min"),
    "responsiveness": ("67775-7", "Level of responsiveness", None),
}
"""Vitals reported on scene -> LOINC code, display, UCUM unit (None: a coded answer, AVPU)."""
PRIORITY = {"P1": ("EM", "emergency"), "P2": ("UR", "urgent"), "P3": ("R", "routine")}
TASK_PRIORITY = {"P1": "stat", "P2": "urgent", "P3": "routine"}
TASK_STATUS = {"open": "requested", "done": "completed", "cancelled": "cancelled"}


def _time(at: Any) -> str | None:
    return at.isoformat() if isinstance(at, datetime) else (str(at) if at else None)


def _ref(resource_type: str, resource_id: UUID) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}", "type": resource_type}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _id(*parts: object) -> UUID:
    return derived_id("fhir", *parts)


def _find_block(triage: dict[str, Any], *names: str) -> dict[str, Any] | None:
    for name in names:
        if isinstance(triage.get(name), dict):
            return triage[name]
    return None


def _score(block: dict[str, Any] | None, *names: str) -> int | None:
    for name in names:
        value = (block or {}).get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def fhir_bundle(
    doc: Documentation,
    progress: Progress,
    events: Sequence[RecordedEvent],
    tasks: Sequence[TaskState],
    staff_names: dict[UUID, str],
    programs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle for one incident's documentation (a plain JSON-ready dict); its referrals as
    ServiceRequest and Task, with ``programs`` (program id -> directory profile) for their Organization, Location
    and HealthcareService (fhir_referrals.py)."""
    incident = doc.incident_id
    patient_id, encounter_id = _id(incident, "patient"), _id(incident, "encounter")
    patient = {"resourceType": "Patient", "id": str(patient_id), "active": True}
    resources: list[dict[str, Any]] = [patient, _encounter(doc, progress, patient_id, encounter_id)]
    subject, encounter = _ref("Patient", patient_id), _ref("Encounter", encounter_id)
    triage = doc.what.get("triage") or {}
    issued = _time(max((r.recorded_at for r in events), default=progress.reported_at))

    cssrs = _find_block(triage, "self_harm", "self_harm_risk", "cssrs", "c_ssrs")
    risk = doc.what.get("risk_level")
    if progress.kind == "self_harm_risk" and risk:
        resources.append(
            {
                "resourceType": "Observation",
                "id": str(_id(incident, "cssrs-risk")),
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": CSSRS_OVERALL_RISK}], "text": "C-SSRS overall risk"},
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": _time(progress.reported_at),
                "issued": issued,
                "valueCodeableConcept": {"text": str(risk)},
            }
        )
    if cssrs:
        answers = [
            {"linkId": code, "answer": [{"valueBoolean": bool(cssrs[key])}]}
            for key, code in CSSRS_LOINC.items()
            if isinstance(cssrs.get(key), bool)
        ]
        if answers:
            resources.append(
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": str(_id(incident, "cssrs")),
                    "status": "completed",
                    "subject": subject,
                    "encounter": encounter,
                    "authored": _time(progress.reported_at),
                    "item": answers,
                }
            )
    withdrawal = _find_block(triage, "withdrawal")
    for name, keys in (
        ("CIWA-Ar", ("ciwa_ar_score", "ciwa_ar", "ciwa_score", "ciwa")),
        ("COWS", ("cows_score", "cows")),
    ):
        value = _score(withdrawal, *keys)
        if value is not None:
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": str(_id(incident, name)),
                    "status": "final",
                    "code": {"text": f"{name} total score"},
                    "subject": subject,
                    "encounter": encounter,
                    "effectiveDateTime": _time(progress.reported_at),
                    "valueInteger": value,
                }
            )

    resources.extend(_vitals(doc, subject, encounter, issued))
    resources.extend(_reassessed(doc, subject, encounter))

    for index, dose in enumerate(doc.what["interventions"]["naloxone_doses"], start=1):
        administration: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": str(_id(incident, "naloxone", index)),
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": "7242", "display": "naloxone"}],
                "text": dose.get("product") or "naloxone",
            },
            "subject": subject,
            "context": encounter,
            "effectiveDateTime": _time(dose.get("given_at") or progress.reported_at),
            "performer": [{"actor": {"display": dose.get("given_by_role") or "unknown"}}],
        }
        dosage: dict[str, Any] = {}
        if dose.get("route"):
            dosage["route"] = {"text": dose["route"]}
        if dose.get("dose_mg"):
            dosage["dose"] = {
                "value": dose["dose_mg"],
                "unit": "mg",
                "system": "http://unitsofmeasure.org",
                "code": "mg",
            }
        if dosage:
            administration["dosage"] = dosage
        if dose.get("response"):
            administration["note"] = [{"text": f"response: {dose['response']}"}]
        resources.append(administration)

    for task in tasks:
        resource: dict[str, Any] = {
            "resourceType": "Task",
            "id": str(task.task_id),
            "status": TASK_STATUS.get(task.status, "requested"),
            "intent": "order",
            "priority": TASK_PRIORITY.get(task.priority, "routine"),
            "code": {"text": task.title},
            "description": task.basis,
            "focus": encounter,
            "for": subject,
            "encounter": encounter,
            "authoredOn": _time(task.created_at),
            "restriction": {"period": {"end": _time(task.due_at)}},
        }
        if task.assignee_id:
            resource["owner"] = {"display": staff_names.get(task.assignee_id, task.owner_role)}
        if task.completed_at:
            resource["executionPeriod"] = {"end": _time(task.completed_at)}
        if task.outcome:
            resource["businessStatus"] = {"text": task.outcome.replace("_", " ")}
        if task.note:
            resource["note"] = [{"text": task.note}]
        resources.append(resource)

    resources.extend(_communications(events, subject, encounter))
    resources.extend(referral_resources(events, subject, encounter, programs or {}))

    plan = doc.outcome.get("safety_plan")
    if plan:
        resources.append(
            {
                "resourceType": "CarePlan",
                "id": str(_id(incident, "safety-plan")),
                "status": "active",
                "intent": "plan",
                "title": "Safety plan (Stanley-Brown)",
                "subject": subject,
                "encounter": encounter,
                "activity": [
                    {"detail": {"status": "not-started", "description": f"{step.replace('_', ' ')}: {text}"}}
                    for step, text in plan.items()
                    if text
                ],
            }
        )
    return {
        "resourceType": "Bundle",
        "id": str(_id(incident, "bundle")),
        "type": "collection",
        "timestamp": issued,
        "entry": [_entry(r) for r in resources],
    }


def _vitals(doc: Documentation, subject: dict, encounter: dict, issued: str | None) -> list[dict[str, Any]]:
    """One vital-signs Observation per value a responder reported on scene (``field.vitals_recorded``)."""
    resources = []
    for index, taken in enumerate(doc.what.get("vitals", []), start=1):
        for key, (code, display, unit) in VITAL_SIGNS.items():
            value = taken.get(key)
            if value is None:
                continue
            resource: dict[str, Any] = {
                "resourceType": "Observation",
                "id": str(_id(doc.incident_id, "vitals", index, key)),
                "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": _time(taken["taken_at"]),
                "issued": issued,
            }
            if unit is None:
                resource["valueCodeableConcept"] = {"text": f"AVPU: {value}"}
            else:
                resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
            resources.append(resource)
    return resources


def _reassessed(doc: Documentation, subject: dict, encounter: dict) -> list[dict[str, Any]]:
    """A score a clinician recorded on scene: an Observation at the time it was recorded."""
    resources = []
    for index, again in enumerate(doc.what.get("reassessments", []), start=1):
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": str(_id(doc.incident_id, "reassessed", index)),
            "status": "final",
            "subject": subject,
            "encounter": encounter,
            "effectiveDateTime": _time(again["at"]),
            "performer": [{"display": again["recorded_by"]}],
        }
        if again["instrument"] == "c_ssrs":
            resource["code"] = {
                "coding": [{"system": LOINC, "code": CSSRS_OVERALL_RISK}],
                "text": "C-SSRS overall risk (re-assessed on scene)",
            }
            resource["valueCodeableConcept"] = {"text": str(again["c_ssrs_risk"])}
        else:
            name = {"cows": "COWS", "ciwa_ar": "CIWA-Ar"}[again["instrument"]]
            resource["code"] = {"text": f"{name} total score (re-assessed on scene)"}
            resource["valueInteger"] = again["score"]
        resources.append(resource)
    return resources


def _encounter(doc: Documentation, progress: Progress, patient_id: UUID, encounter_id: UUID) -> dict[str, Any]:
    status = {"open": "in-progress", "closed": "finished", "cancelled": "cancelled"}[progress.status]
    when = doc.when
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(encounter_id),
        "identifier": [{"system": f"{EXTENSION_BASE}/incident-id", "value": str(doc.incident_id)}],
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD", "display": "field"},
        "type": [{"text": f"mobile crisis response: {(progress.kind or 'unknown').replace('_', ' ')}"}],
        "subject": _ref("Patient", patient_id),
        "period": {"start": _time(progress.reported_at)},
        "extension": [
            {"url": f"{EXTENSION_BASE}/nemsis-{code}", "valueDateTime": _time(when.get(field))}
            for code, field, _ in ETIMES
            if when.get(field)
        ],
    }
    if progress.priority in PRIORITY:
        code, display = PRIORITY[progress.priority]
        encounter["priority"] = {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority", "code": code, "display": display}
            ]
        }
    if when.get("cleared_at"):
        encounter["period"]["end"] = _time(when["cleared_at"])
    history = []
    if progress.reported_at:
        history.append(
            {
                "status": "planned",
                "period": {"start": _time(progress.reported_at), "end": _time(when.get("on_scene_at"))},
            }
        )
    if when.get("on_scene_at"):
        history.append(
            {
                "status": "in-progress",
                "period": {"start": _time(when["on_scene_at"]), "end": _time(when.get("cleared_at"))},
            }
        )
    for item in history:
        item["period"] = {k: v for k, v in item["period"].items() if v}
    if history:
        encounter["statusHistory"] = history
    where = doc.where
    if where.get("address") or where.get("lat") is not None:
        encounter["location"] = [{"location": {"display": where.get("address") or f"{where['lat']}, {where['lon']}"}}]
    participants = [
        {
            "type": [{"text": person.get("team_role") or person.get("role") or "responder"}],
            "individual": {"display": person.get("name") or str(person["responder_id"])},
        }
        for person in doc.who["responders"]
    ]
    if participants:
        encounter["participant"] = participants
    if doc.outcome.get("disposition"):
        encounter["hospitalization"] = {"dischargeDisposition": {"text": doc.outcome["disposition"].replace("_", " ")}}
    return encounter


def _communications(events: Sequence[RecordedEvent], subject: dict, encounter: dict) -> list[dict[str, Any]]:
    """One Communication per requested message (sent / not done) and per reply a responder texted."""
    messages: dict[UUID, dict[str, Any]] = {}
    page_messages: dict[UUID, UUID] = {}
    replies: list[dict[str, Any]] = []
    for recorded in events:
        event = recorded.event
        if isinstance(event, NotificationRequested):
            data = event.data
            resource = {
                "resourceType": "Communication",
                "id": str(_id(data.notification_id, "communication")),
                "status": "in-progress",
                "category": [{"text": data.channel}],
                "subject": subject,
                "encounter": encounter,
                "sender": {"display": event.producer},
                "recipient": [{"display": "on-call staff member"}],
                "payload": [{"contentString": f"template {data.template}"}],
            }
            messages[data.notification_id] = resource
            if data.page_id is not None and data.template == "page_offer":
                page_messages[data.page_id] = _id(data.notification_id, "communication")
        elif isinstance(event, SmsSent) and event.data.notification_id in messages:
            messages[event.data.notification_id] |= {"status": "completed", "sent": _time(event.occurred_at)}
        elif isinstance(event, SmsFailed) and event.data.notification_id in messages:
            messages[event.data.notification_id] |= {"status": "not-done", "statusReason": {"text": "SMS failed"}}
        elif isinstance(
            event, DispatchAcknowledged | DispatchDeclined | ResponderEnRoute | ResponderArrived | DispatchCompleted
        ) and getattr(event.data, "message_sid", None):  # a button on the incident page was no message
            data = event.data
            reply: dict[str, Any] = {
                "resourceType": "Communication",
                "id": str(_id(data.message_sid, "communication")),
                "status": "completed",
                "category": [{"text": "sms"}],
                "subject": subject,
                "encounter": encounter,
                "sender": {"display": f"responder {data.responder_id}"},
                "recipient": [{"display": "dispatcher"}],
                "received": _time(event.occurred_at),
                "payload": [{"contentString": f"{event.type.split('.')[-1].replace('_', ' ')} {data.code}"}],
            }
            if data.page_id in page_messages:
                reply["inResponseTo"] = [_ref("Communication", page_messages[data.page_id])]
            replies.append(reply)
    return [*messages.values(), *replies]
