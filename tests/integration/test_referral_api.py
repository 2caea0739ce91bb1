"""The referral's JSON API on the projections service, over a real nats-server and a real port (SQLite and
PostgreSQL): matches ranked by confirmed availability then distance with their reasons (a stale report never among
the open), the level of care chosen with its author, a referral sent once per Idempotency-Key, refusals (too many
programs, no level chosen, not on the incident, a transition the state machine does not allow), and what staff
record after an accept, all on the stream with their actor."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import httpx
from fhir.resources.R4B.bundle import Bundle

from services.contract.events import (
    ReferralAccepted,
    ReferralAcceptedData,
    new_event,
)
from tests.integration.test_directory_read_model import CLINIC, CLOSED, RESIDENTIAL, registered, reported
from tests.integration.test_projections import T0, Story, page_csrf, signed_in, workspace
from tests.support.stream import publish_all, stream_events

NOW = T0 + timedelta(hours=2)
FAR = UUID("0b7e8f10-0000-4000-8000-00000000a009")


def programs() -> list:
    near = {"location": {"lat": 39.7435, "lon": -104.9880}}
    return [
        registered(CLINIC, "Bannock Clinic", T0, levels_of_care=["OTP", "1"], **near),
        registered(
            RESIDENTIAL, "Cheesman House", T0, levels_of_care=["OTP", "3.5"], location={"lat": 39.9, "lon": -105.2}
        ),
        registered(CLOSED, "Stale Place", T0, levels_of_care=["OTP"], **near),
        registered(FAR, "Far Clinic", T0, levels_of_care=["OTP"], location={"lat": 40.5, "lon": -105.0}),
        reported(RESIDENTIAL, NOW - timedelta(minutes=20), 2),  # open, confirmed, but farther
        reported(CLOSED, NOW - timedelta(days=3), 9),  # stale: never among the open
    ]


async def test_matches_level_send_and_after_accept(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        clinician = space.people["clinician"]
        story = Story()
        await publish_all(js, [*programs(), *story.full_response(clinician, ack=1, en_route=2, arrive=10, done=60)])
        await space.settled(js)
        incident = story.incident_id
        async with space.client("clinician") as client:
            found = (await client.get(f"/v1/incidents/{incident}/matches")).json()
            assert found["proposal"]["level"] == "OTP"  # an opioid overdose survived
            ranked = [(m["name"], m["availability"]) for m in found["matches"]]
            assert ranked[0] == ("Cheesman House", "open")
            assert ("Stale Place", "unconfirmed") in ranked and ranked.index(("Stale Place", "unconfirmed")) > 0
            assert any("km away" in r for r in found["matches"][0]["reasons"])

            refused = await client.post(f"/v1/incidents/{incident}/referrals", json={"program_ids": [str(CLINIC)]})
            assert refused.status_code == 409 and "level of care" in refused.json()["detail"]
            unexplained = await client.post(f"/v1/incidents/{incident}/level-of-care", json={"chosen": "3.5"})
            assert unexplained.status_code == 422 and "why" in unexplained.json()["detail"]
            chosen = await client.post(f"/v1/incidents/{incident}/level-of-care", json={"chosen": "OTP"})
            assert chosen.status_code == 202, chosen.text

            four = [str(p) for p in (CLINIC, RESIDENTIAL, CLOSED, FAR)]
            too_many = await client.post(f"/v1/incidents/{incident}/referrals", json={"program_ids": four})
            assert too_many.status_code == 422
            body = {"program_ids": four[:3], "needs": {"medication": "buprenorphine", "payer": "medicaid"}}
            key = {"Idempotency-Key": "send-once"}
            sent = await client.post(f"/v1/incidents/{incident}/referrals", json=body, headers=key)
            again = await client.post(f"/v1/incidents/{incident}/referrals", json=body, headers=key)
            assert sent.status_code == 201 and again.status_code == 201, sent.text
            assert again.headers["Idempotent-Replayed"] == "true" and again.json() == sent.json()
            referral = sent.json()["referral_id"]

        async with space.client("coach") as client:  # paged for nothing here
            assert (await client.get(f"/v1/referrals/{referral}")).status_code == 403
        events = await stream_events(js)
        sent_events = [e for e in events if e.type == "referral.sent"]
        assert len(sent_events) == 1 and sent_events[0].data.sent_by == "clinician-user"
        chosen_events = [e for e in events if e.type == "referral.level_of_care_chosen"]
        assert [(e.data.chosen.value, e.data.chosen_by) for e in chosen_events] == [("OTP", "clinician-user")]

        async with space.client("clinician") as client:
            early = await client.post(f"/v1/referrals/{referral}/transport", json={"mode": "family"})
            assert early.status_code == 409 and "sent" in early.json()["detail"]
            accepted = ReferralAcceptedData(
                referral_id=UUID(referral),
                incident_id=incident,
                program_id=RESIDENTIAL,
                actor="program link",
                channel="link",
                admission_from=NOW,
                admission_until=NOW + timedelta(hours=6),
            )
            accept = new_event(ReferralAccepted, accepted, event_id=UUID(int=7), occurred_at=NOW, producer="t")
            await publish_all(js, [accept.model_copy(update={"incident_id": incident})])
            await space.settled(js)
            for path, payload in (
                ("transport", {"mode": "family"}),
                ("insurance", {"status": "yes", "payer": "medicaid"}),
                ("arrived", {}),
            ):
                answer = await client.post(f"/v1/referrals/{referral}/{path}", json=payload)
                assert answer.status_code == 202, answer.text
            view = (await client.get(f"/v1/referrals/{referral}")).json()
            doc = (await client.get(f"/v1/incidents/{incident}/documentation")).json()
            bundle = (await client.get(f"/v1/incidents/{incident}/fhir")).json()
            timeline = (await client.get(f"/v1/incidents/{incident}/timeline")).json()["entries"]
        said = [(e["actor"], e["summary"]) for e in timeline if e["type"].startswith("referral.")]
        code = sent.json()["code"]
        assert ("clinician-user", "level of care OTP chosen (triage proposed OTP)") in said
        assert any(
            who == "clinician-user" and what.startswith(f"referral {code} sent to 3 program(s)") for who, what in said
        )
        assert ("clinician-user", "transport arranged: family") in said
        assert ("clinician-user", "arrival confirmed at Cheesman House") in said
        handoff = doc["what"]["handoff"]
        assert handoff["organisation"] == "Cheesman House" and handoff["receiving_person"] == "clinician-user"
        assert doc["outcome"]["disposition"] == "referred_to_treatment"
        assert not [g for g in doc["gaps"] if g["key"].startswith("handoff")]
        Bundle.model_validate(bundle)
        resources = [entry["resource"] for entry in bundle["entry"]]
        (request,) = [r for r in resources if r["resourceType"] == "ServiceRequest"]
        tasks = [r for r in resources if r["resourceType"] == "Task" and r["focus"].get("type") == "ServiceRequest"]
        assert {t["focus"]["reference"] for t in tasks} == {f"urn:uuid:{request['id']}"}
        assert sorted(t["status"] for t in tasks) == ["cancelled", "cancelled", "completed"]  # the others withdrawn
        assert request["status"] == "completed"
        kinds = [r["resourceType"] for r in resources]
        assert kinds.count("Organization") == kinds.count("Location") == kinds.count("HealthcareService") == 3
        assert view["state"] == "admitted"
        assert [h["event_type"] for h in view["history"]][-3:] == [
            "referral.transport_arranged",
            "referral.insurance_verified",
            "referral.admitted",
        ]
        async with space.client("director") as client:
            figures = (await client.get("/v1/metrics")).json()["referral_to_admission"]
        browser = await signed_in(space, "dr-director", "director")
        page = (await browser.get("/workspace/metrics")).text
        await browser.aclose()
        assert (figures["sent"], figures["admitted"], figures["by_state"]) == (1, 1, {"admitted": 1})
        hours = figures["referrals"][0]["hours_to_admission"]
        assert hours is not None and figures["median_hours"] == figures["p90_hours"] == hours
        assert "Admitted 1 of 1 referrals sent in the period" in page
        assert {o["program_name"] for o in view["offers"]} == {"Bannock Clinic", "Cheesman House", "Stale Place"}
        assert all(h["actor"] for h in view["history"])


async def test_a_program_answers_on_its_signed_page(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        story = Story()
        await publish_all(js, [*programs(), *story.full_response(space.people["clinician"], 1, 2, 10, 60)])
        await space.settled(js)
        incident = story.incident_id
        async with space.client("clinician") as client:
            await client.post(f"/v1/incidents/{incident}/level-of-care", json={"chosen": "OTP"})
            body = {"program_ids": [str(CLINIC), str(RESIDENTIAL), str(FAR)]}
            sent = (await client.post(f"/v1/incidents/{incident}/referrals", json=body)).json()
        referral = UUID(sent["referral_id"])
        links = space.app.state.referral_links

        def path(program: UUID) -> str:
            return "/rf/" + links.url(referral, program, space.clock.now())[0].rsplit("/rf/", 1)[1]

        async with httpx.AsyncClient(base_url=space.url, timeout=30) as desk:  # the intake desk: no sign-in
            page = await desk.get(path(CLINIC))
            assert page.status_code == 200 and f"Referral {sent['code']} for Bannock Clinic" in page.text
            assert "ASAM OTP" in page.text and "River" not in page.text
            await desk.get(path(CLINIC))  # opened twice: received once
            csrf = page_csrf(page.text)
            declined = await desk.post(
                path(CLINIC), data={"answer": "decline", "reason": "no_capacity", "csrf_token": csrf}
            )
            assert declined.status_code == 303
            assert "declined by you" in (await desk.get(path(CLINIC) + "?saved=1")).text

            other = await desk.get(path(RESIDENTIAL))
            bad = await desk.post(
                path(RESIDENTIAL), data={"answer": "accept", "hours": "999", "csrf_token": page_csrf(other.text)}
            )
            assert bad.status_code == 422 and "hours" in bad.text
            ok = await desk.post(
                path(RESIDENTIAL), data={"answer": "accept", "hours": "6", "csrf_token": page_csrf(other.text)}
            )
            assert ok.status_code == 303
            third = await desk.get(path(FAR))  # withdrawn once another program accepted: no forms
            assert "no longer needed" in third.text and 'name="answer"' not in third.text
            late = await desk.post(
                path(FAR), data={"answer": "accept", "hours": "6", "csrf_token": page_csrf(other.text)}
            )
            assert late.status_code == 409
            tampered = await desk.get(path(FAR)[:-2] + "xx")
            assert tampered.status_code == 404
        events = [e for e in await stream_events(js) if e.type.startswith("referral.")]
        received = [e for e in events if e.type == "referral.received"]
        assert sorted(str(e.data.program_id) for e in received) == sorted(str(p) for p in (CLINIC, RESIDENTIAL))
        answers = [
            (e.type, e.data.program_id, e.data.actor)
            for e in events
            if e.type in ("referral.accepted", "referral.declined")
        ]
        assert answers == [
            ("referral.declined", CLINIC, "program link"),
            ("referral.accepted", RESIDENTIAL, "program link"),
        ]
