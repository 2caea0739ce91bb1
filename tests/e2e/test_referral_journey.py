"""Issue 17's must-show, over the whole stack exactly as `make run` starts it (every service its own process, the
SMS sandbox behind the real Twilio SDK, the seven demo programs imported):

overdose reported -> the clinician accepts and is on scene (texts) -> a level of care is chosen and a referral goes
to three programs (each told by SMS: a code and a signed link, nothing about the person) -> two decline and one
accepts, all by SMS reply -> transport and insurance recorded in the workspace API -> the program confirms the
arrival by SMS -> the documentation has no hand-off gap, and the FHIR bundle validates with a ServiceRequest and
one Task per program whose focus is that ServiceRequest.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.e2e.test_walking_skeleton import (  # noqa: F401 - the ports fixture
    CLINICIAN,
    PHI,
    Ports,
    Stack,
    ports,
    start_stack,
    stop_process,
    stop_stack,
)
from tests.support.stream import eventually

pytestmark = pytest.mark.e2e

PROGRAM_PHONES = {  # the demo programs' intake lines (deploy/demo/programs.csv)
    "Bannock Street Recovery Clinic (fictional)": "+13035550141",
    "Union Station Outpatient Services (fictional)": "+13035550142",
    "Evans Withdrawal and Stabilization Unit (fictional)": "+13035550146",
}
LINK = re.compile(r"https?://\S+/rf/[A-Za-z0-9_-]{64}")


@pytest.fixture
def stack(tmp_path: Path, ports: Ports) -> Any:  # noqa: F811
    running = start_stack(tmp_path / "var", ports)
    yield running
    stop_process(running.process)


async def texts_to(client: httpx.AsyncClient, stack: Stack, phone: str, count: int) -> list[str]:
    answer = await client.get(
        f"{stack.sandbox}/sandbox/api/wait", params={"phone": phone, "count": count, "timeout": 30}
    )
    waited = answer.json()
    assert not waited["timed_out"], f"{phone} got {len(waited['messages'])} of {count} texts: {waited['messages']}"
    return [m["body"] for m in waited["messages"]]


async def text_from(client: httpx.AsyncClient, stack: Stack, phone: str, body: str) -> None:
    sent = await client.post(f"{stack.sandbox}/sandbox/api/inbound", json={"from": phone, "body": body})
    assert sent.status_code == 201 and sent.json()["webhook_status"] == 200, sent.text


async def until(read: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Another process updates its read models: look until ``read`` answers something (bounded)."""
    return await eventually(read, lambda: what, timeout=30, interval=0.2)


async def test_overdose_to_admission_with_a_closed_loop_referral(stack: Stack) -> None:
    tokens = dict(re.findall(r"^  (intake|responder|director|admin) +(\S+)$", stack.banner, re.M))
    director = {"Authorization": f"Bearer {tokens['director']}"}
    async with httpx.AsyncClient(timeout=30) as client:
        # the crisis: an overdose, the nearest clinician accepts and is on scene
        report = {
            "kind": "overdose",
            "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
            "reporter": {"channel": "hotline", "relation": "friend"},
            "details": {"responsive": True, "breathing": True, "ems_called": True, "substance": "fentanyl"},
        }
        answer = await client.post(
            f"{stack.gateway}/v1/incidents", json=report, headers={"Authorization": f"Bearer {tokens['intake']}"}
        )
        assert answer.status_code == 201, answer.text
        incident_id, code = answer.json()["incident_id"], answer.json()["short_code"]
        await texts_to(client, stack, CLINICIAN, 1)
        await text_from(client, stack, CLINICIAN, f"Y {code}")
        await texts_to(client, stack, CLINICIAN, 2)
        await text_from(client, stack, CLINICIAN, f"ARRIVED {code}")

        # disposition: the level of care, then a referral to three programs at once
        programs = (await client.get(f"{stack.projections}/v1/programs", headers=director)).json()["programs"]
        ids = {p["name"]: p["program_id"] for p in programs}
        assert set(PROGRAM_PHONES) <= set(ids), sorted(ids)
        chosen = await client.post(
            f"{stack.projections}/v1/incidents/{incident_id}/level-of-care",
            json={"chosen": "1-WM", "reason": "stable after naloxone; wants buprenorphine"},
            headers=director | {"Idempotency-Key": "level-1"},
        )
        assert chosen.status_code in (200, 201, 202), chosen.text
        sent = await client.post(
            f"{stack.projections}/v1/incidents/{incident_id}/referrals",
            json={"program_ids": [ids[name] for name in PROGRAM_PHONES], "needs": {"medication": "buprenorphine"}},
            headers=director | {"Idempotency-Key": "referral-1"},
        )
        assert sent.status_code == 201, sent.text
        referral_id, referral_code = sent.json()["referral_id"], sent.json()["code"]

        # each program is told by SMS: the code and a signed link, nothing about the person
        for phone in PROGRAM_PHONES.values():
            (offer,) = await texts_to(client, stack, phone, 1)
            assert referral_code in offer and LINK.search(offer), offer
            assert not PHI.search(offer) and "5th St" not in offer and code not in offer.replace(referral_code, "")

        # two decline, one accepts, by SMS reply; each is thanked
        bannock, union, evans = PROGRAM_PHONES.values()
        await text_from(client, stack, bannock, f"DECLINE {referral_code} FULL")
        await text_from(client, stack, union, f"DECLINE {referral_code} PAYER")
        await text_from(client, stack, evans, f"ACCEPT {referral_code} 24")
        for phone in (bannock, union, evans):
            assert len(await texts_to(client, stack, phone, 2)) == 2

        async def referral_in(state: str) -> dict | None:
            got = await client.get(f"{stack.projections}/v1/referrals/{referral_id}", headers=director)
            return got.json() if got.status_code == 200 and got.json()["state"] == state else None

        accepted = await until(lambda: referral_in("accepted"), "the referral to be accepted")
        answers = {o["program_id"]: o["state"] for o in accepted["offers"]}
        assert sorted(answers.values()) == ["accepted", "declined", "declined"], answers

        # after the accept: transport and insurance, then the program confirms the arrival
        for action, body in (
            ("transport", {"mode": "responder"}),
            ("insurance", {"status": "yes", "payer": "medicaid"}),
        ):
            recorded = await client.post(
                f"{stack.projections}/v1/referrals/{referral_id}/{action}",
                json=body,
                headers=director | {"Idempotency-Key": f"{action}-1"},
            )
            assert recorded.status_code in (200, 201, 202), recorded.text
        await text_from(client, stack, evans, f"ARRIVED {referral_code}")
        admitted = await until(lambda: referral_in("admitted"), "the referral to be admitted")
        assert [h["event_type"] for h in admitted["history"]][-1] == "referral.admitted"

        # the record: no hand-off gap; the FHIR bundle validates with the referral in it
        async def handed_off() -> dict | None:
            got = await client.get(f"{stack.projections}/v1/incidents/{incident_id}/documentation", headers=director)
            doc = got.json()
            return doc if doc["what"]["handoff"]["organisation"] else None

        doc = await until(handed_off, "the documentation's hand-off to fill itself")
        assert "Evans Withdrawal" in doc["what"]["handoff"]["organisation"]
        assert not [g for g in doc["gaps"] if g["key"].startswith("handoff")], doc["gaps"]
        bundle = (await client.get(f"{stack.projections}/v1/incidents/{incident_id}/fhir", headers=director)).json()
        Bundle.model_validate(bundle)
        resources = [entry["resource"] for entry in bundle["entry"]]
        (request,) = [r for r in resources if r["resourceType"] == "ServiceRequest"]
        tasks = [r for r in resources if r["resourceType"] == "Task" and r.get("focus", {}).get("reference")]
        referral_tasks = [t for t in tasks if t["focus"]["reference"].endswith(request["id"])]
        assert sorted(t["status"] for t in referral_tasks) == ["completed", "rejected", "rejected"]
        assert request["status"] == "completed"
        assert {"Organization", "Location", "HealthcareService"} <= {r["resourceType"] for r in resources}

    assert "stopped; data kept" in stop_stack(stack)
