"""A referral in the FHIR bundle (issue 17): one ServiceRequest per referral (what is asked: the level of care,
for the incident's Patient and Encounter), one Task per program it was sent to (its state after HL7's SDOH
referral Task: ``domain/referral.py``'s ``task_status``; focus = the ServiceRequest; owner = the program), and per
program an Organization, a Location (address, position) and a HealthcareService (its levels of care)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from services.projections.domain.progress import RecordedEvent
from services.projections.domain.referral import (
    ReferralView,
    TransitionRefused,
    fold_referral,
    service_request_status,
    task_status,
)

REFERRAL_TYPES = frozenset(
    {"referral.sent"}
    | {f"referral.{t}" for t in ("received", "accepted", "declined", "info_requested")}
    | {f"referral.{t}" for t in ("info_provided", "withdrawn", "transport_arranged", "insurance_verified")}
    | {f"referral.{t}" for t in ("admitted", "no_show", "cancelled", "acceptance_overdue")}
)


def _id(*parts: object) -> str:
    return str(uuid5(NAMESPACE_URL, "crisis-fhir/" + "/".join(str(p) for p in parts)))


def _ref(resource_type: str, resource_id: str, display: str | None = None) -> dict[str, str]:
    ref = {"reference": f"urn:uuid:{resource_id}", "type": resource_type}
    return ref | {"display": display} if display else ref


def _time(at: Any) -> str | None:
    return at.isoformat() if at is not None else None


def referral_views(events: Sequence[RecordedEvent]) -> list[ReferralView]:
    """The incident's referrals, folded from its events (a transition the state machine refuses is left out)."""
    views: dict[str, ReferralView] = {}
    for recorded in events:
        event = recorded.event
        if event.type not in REFERRAL_TYPES:
            continue
        key = str(event.data.referral_id)
        try:
            views[key] = fold_referral(views.get(key), event)
        except TransitionRefused:
            continue
    return list(views.values())


def _names(events: Sequence[RecordedEvent]) -> dict[str, str]:
    return {
        str(r.event.data.program_id): r.event.data.program_name
        for r in events
        if r.event.type.startswith("referral.") and getattr(r.event.data, "program_name", None)
    }


def referral_resources(
    events: Sequence[RecordedEvent],
    subject: dict[str, Any],
    encounter: dict[str, Any],
    programs: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The FHIR resources of the incident's referrals; ``programs``: program id -> its directory profile."""
    resources: list[dict[str, Any]] = []
    named = _names(events)
    described: set[str] = set()
    for view in referral_views(events):
        request_id = _id(view.referral_id, "service-request")
        owners = {o.program_id: _id(o.program_id, "organization") for o in view.offers}
        for program_id, organization_id in owners.items():
            if program_id not in described:
                described.add(program_id)
                name = (programs.get(program_id) or {}).get("name") or named.get(program_id) or f"program {program_id}"
                resources.extend(_program(program_id, organization_id, name, programs.get(program_id) or {}))
        resources.append(
            {
                "resourceType": "ServiceRequest",
                "id": request_id,
                "identifier": [{"system": "urn:crisis:referral-code", "value": view.code}],
                "status": service_request_status(view),
                "intent": "order",
                "code": {"text": f"ASAM level of care {view.level_of_care}"},
                "subject": subject,
                "encounter": encounter,
                "authoredOn": _time(view.sent_at),
                "requester": {"display": view.sent_by},
                "performer": [_ref("Organization", owners[o.program_id]) for o in view.offers],
            }
        )
        for offer in view.offers:
            task: dict[str, Any] = {
                "resourceType": "Task",
                "id": _id(view.referral_id, offer.program_id, "task"),
                "status": task_status(view, offer),
                "businessStatus": {"text": offer.state.value.replace("_", " ")},
                "intent": "order",
                "focus": _ref("ServiceRequest", request_id),
                "for": subject,
                "encounter": encounter,
                "authoredOn": _time(view.sent_at),
                "owner": _ref("Organization", owners[offer.program_id]),
                "restriction": {"period": {"end": _time(view.accept_by)}},
            }
            if offer.decline_reason:
                task["statusReason"] = {"text": offer.decline_reason.replace("_", " ")}
            if offer.admission_from and offer.admission_until:
                task["executionPeriod"] = {"start": _time(offer.admission_from), "end": _time(offer.admission_until)}
            resources.append(task)
    return resources


def _program(program_id: str, organization_id: str, name: str, profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    location_id, service_id = _id(program_id, "location"), _id(program_id, "healthcare-service")
    organization: dict[str, Any] = {"resourceType": "Organization", "id": organization_id, "name": name}
    if profile.get("intake_phone"):
        organization["telecom"] = [{"system": "phone", "value": profile["intake_phone"], "use": "work"}]
    location: dict[str, Any] = {
        "resourceType": "Location",
        "id": location_id,
        "name": name,
        "managingOrganization": _ref("Organization", organization_id),
    }
    if profile.get("address"):
        location["address"] = {"text": profile["address"]}
    where = profile.get("location") or {}
    if "lat" in where:
        location["position"] = {"latitude": where["lat"], "longitude": where["lon"]}
    service = {
        "resourceType": "HealthcareService",
        "id": service_id,
        "name": name,
        "providedBy": _ref("Organization", organization_id),
        "location": [_ref("Location", location_id)],
        "type": [{"text": f"ASAM level {level}"} for level in profile.get("levels_of_care", [])]
        or [{"text": "treatment"}],
    }
    return [organization, location, service]
