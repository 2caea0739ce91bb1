"""The person record in the workspace over HTTP (issue 17, section 4), on SQLite and PostgreSQL: each form
appends ONE event of services/contract/person.py naming who made it; a wrong role or relation is a 403 entered in
the audit log as denied; a form that is not right is a 422 naming its field, shown again as typed, with nothing
appended; a form sent twice (same form key) records once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx

from tests.factories import sms_received
from tests.integration.test_projections import Story, Workspace, signed_in, workspace
from tests.integration.test_referral_api import FAR, programs
from tests.support.stream import eventually, last_sequence, publish_all, stream_events

CONSENT = {
    "patient_name": "Jordan Avery",
    "discloser": "Front Range Crisis Team",
    "purpose": "family_support",
    "expiry_event": "discharge from treatment",
    "revocation_explained": "yes",
    "revoke_how": "Tell any staff member or text STOP",
    "signed_by": "Jordan Avery",
    "signer_relation": "self",
}


@contextlib.asynccontextmanager
async def people_workspace(js, nats_server, tmp_path, database_url: str = "") -> AsyncIterator[tuple[Workspace, bool]]:
    """The workspace with its person desk (the flag is kept for the tests that read it: always True)."""
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        assert space.app.state.person_desk is not None
        yield space, True


@contextlib.asynccontextmanager
async def session(space: Workspace, who: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in to the workspace as ``who`` (``<who>-user``, or the director)."""
    client = await signed_in(space, "dr-director" if who == "director" else f"{who}-user", who)
    try:
        yield client
    finally:
        await client.aclose()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def form_key_of(html: str) -> str:
    return re.search(r'name="form_key" value="([^"]+)"', html)[1]


async def paged_incident(js, space: Workspace, *who: str) -> Story:
    """An incident whose pages went to ``who`` (their roster people)."""
    story = Story()
    events = [story.reported()]
    for key in who:
        events += story.offered(space.people[key], 0.2)
    await publish_all(js, events)
    await space.settled(js)
    return story


async def posted(client: httpx.AsyncClient, path: str, page: str, **fields: Any) -> httpx.Response:
    """The form at ``path`` sent with the page's CSRF token and form key."""
    data = {"csrf_token": csrf_of(page), "form_key": form_key_of(page), **fields}
    return await client.post(path, data=data)


def person_events(events: list, prefix: tuple[str, ...] = ("person.", "family.", "consent.")) -> list:
    return [e for e in events if e.type.startswith(prefix)]


def audit_rows(space: Workspace) -> list[dict]:
    return space.read_models.audit.query(limit=1000)


async def registered(js, space: Workspace, client: httpx.AsyncClient, story: Story, alias: str = "Jay") -> UUID:
    form = await client.get(f"/workspace/people/new?incident={story.incident_id}")
    assert form.status_code == 200, form.text
    answer = await posted(client, "/workspace/people/new", form.text, alias=alias, incident=str(story.incident_id))
    assert answer.status_code == 303, answer.text[:500]
    return UUID(answer.headers["location"].split("?")[0].rsplit("/", 1)[1])


async def test_a_clinician_registers_links_adds_a_contact_records_revokes_and_asks_for_a_family_message(
    js, nats_server, tmp_path, database_url
) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician")
        first = await last_sequence(js) + 1
        clinician = space.people["clinician"]
        async with session(space, "clinician") as client:
            person_id = await registered(js, space, client, story)
            page = await client.get(f"/workspace/people/{person_id}")
            assert page.status_code == 200 and "<h1>Jay</h1>" in page.text
            answer = await posted(
                client, f"/workspace/people/{person_id}/contact", page.text,
                name="Robin Avery", relation="parent", phone="+1 555 019 8877", language="es",
            )  # fmt: skip
            assert answer.status_code == 303, answer.text[:500]
            page = await client.get(answer.headers["location"])
            assert "Recorded: contact (parent) added." in page.text and "Robin Avery" in page.text
            contact_id = re.search(r'data-contact="([^"]+)"', page.text)[1]

            form = await client.get(f"/workspace/people/{person_id}/consents/new")
            answer = await posted(
                client, f"/workspace/people/{person_id}/consents/new", form.text,
                **CONSENT, recipient=f"contact:{contact_id}", information=["safety_status", "contact_point"],
            )  # fmt: skip
            assert answer.status_code == 303, answer.text[:800]
            page = await client.get(answer.headers["location"])
            assert 'data-status="active"' in page.text
            consent_id = re.search(r'data-consent="([^"]+)"', page.text)[1]

            answer = await posted(
                client, f"/workspace/people/{person_id}/family_message", page.text,
                contact_id=contact_id, message="help_on_the_way", incident_id=str(story.incident_id),
            )  # fmt: skip
            assert answer.status_code == 303, answer.text[:500]
            page = await client.get(answer.headers["location"])
            answer = await posted(
                client, f"/workspace/people/{person_id}/revoke", page.text, consent_id=consent_id, how="verbal"
            )
            assert answer.status_code == 303, answer.text[:500]
            page = await client.get(answer.headers["location"])
            assert 'data-status="revoked"' in page.text and "Recorded: consent revoked." in page.text
            timeline = await client.get(f"/workspace/incidents/{story.incident_id}")
            assert f'href="/workspace/people/{person_id}">Jay</a>' in timeline.text

        events = person_events(await stream_events(js, first))
        assert [e.type for e in events] == [
            "person.registered",
            "person.incident_linked",
            "family.contact_added",
            "consent.recorded",
            "family.message_requested",
            "consent.revoked",
        ]
        by_type = {e.type: e for e in events}
        assert by_type["person.registered"].data.alias == "Jay"
        assert by_type["person.registered"].data.actor == "clinician-user"
        link = by_type["person.incident_linked"]
        assert (link.incident_id, link.data.incident_id) == (story.incident_id, story.incident_id)
        assert (link.data.actor, link.data.responder_id) == ("clinician-user", clinician.responder_id)
        contact = by_type["family.contact_added"].data
        assert (contact.name, contact.relation, contact.phone, contact.language) == (
            "Robin Avery", "parent", "+15550198877", "es",
        )  # fmt: skip
        consent = by_type["consent.recorded"].data
        assert consent.patient_name == "Jordan Avery" and consent.discloser == "Front Range Crisis Team"
        assert str(consent.recipient.contact_id) == contact_id and consent.recipient.kind == "family_contact"
        assert [s.value for s in consent.information] == ["safety_status", "contact_point"]
        assert consent.expiry_event == "discharge from treatment" and consent.expires_at is None
        assert consent.revocation_explained and consent.signed_at == space.clock.now()
        message = by_type["family.message_requested"].data
        assert (str(message.contact_id), message.message.value, message.incident_id) == (
            contact_id, "help_on_the_way", story.incident_id,
        )  # fmt: skip
        revoked = by_type["consent.revoked"].data
        assert (str(revoked.consent_id), revoked.how, revoked.actor) == (consent_id, "verbal", "clinician-user")
        writes = [row for row in audit_rows(space) if row["action"].startswith("write:")]
        assert {row["record_id"] for row in writes if row["record_type"] == "person"} == {str(person_id)}


async def test_wrong_role_or_relation_is_refused_403_and_audited(js, nats_server, tmp_path, database_url) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician", "coach")
        async with session(space, "clinician") as clinician:
            person_id = await registered(js, space, clinician, story)
        before = await last_sequence(js)
        async with session(space, "coach") as coach:
            assert (await coach.get(f"/workspace/people/{person_id}")).status_code == 200  # via the incident
            assert (await coach.get("/workspace/people?alias=J")).status_code == 403  # no search for a coach
            page = await coach.get(f"/workspace/people/{person_id}")
            refused = await posted(
                coach, f"/workspace/people/{person_id}/contact", page.text, name="X", relation="friend",
                phone="+15550100000",
            )  # fmt: skip
            assert refused.status_code == 403
        async with session(space, "nurse") as nurse:  # never paged for it
            assert (await nurse.get(f"/workspace/people/{person_id}")).status_code == 403
            assert (await nurse.get(f"/v1/people/{person_id}")).status_code == 403
        assert await last_sequence(js) == before  # nothing appended
        denied = [r for r in audit_rows(space) if r["outcome"] == "denied"]
        assert {(r["subject"], r["action"]) for r in denied} >= {
            ("coach-user", "person:search"),
            ("coach-user", "person:contacts"),
            ("nurse-user", "person:read"),
        }
        async with space.client("director") as director:
            record = await director.get(f"/v1/people/{person_id}")
            listed = await director.get(f"/v1/people/{person_id}/disclosures")
        assert record.status_code == 200 and record.json()["alias"] == "Jay"
        assert listed.status_code == 200 and listed.json()["disclosures"] == []


async def test_a_form_that_is_not_right_is_422_naming_its_field_and_shown_again_as_typed(
    js, nats_server, tmp_path, database_url
) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician")
        async with session(space, "clinician") as client:
            person_id = await registered(js, space, client, story)
            before = await last_sequence(js)
            form = await client.get(f"/workspace/people/{person_id}/consents/new")
            assert 'value="Tell any staff member' in form.text  # how to revoke, proposed
            fields = {**CONSENT, "recipient": "designation", "designation": "my treating providers"}
            fields.pop("revocation_explained")
            refused = await posted(
                client, f"/workspace/people/{person_id}/consents/new", form.text, **fields, information="safety_status"
            )
            assert refused.status_code == 422
            assert "revocation_explained: explain the right to revoke" in refused.text
            assert 'value="Jordan Avery"' in refused.text and 'value="safety_status" checked' in refused.text
            page = await client.get(f"/workspace/people/{person_id}")
            bad_phone = await posted(
                client, f"/workspace/people/{person_id}/contact", page.text, name="Robin", relation="parent",
                phone="call me",
            )  # fmt: skip
            assert bad_phone.status_code == 422 and "phone: String should match pattern" in bad_phone.text
            assert 'value="Robin"' in bad_phone.text
            nameless = await posted(client, "/workspace/people/new", form.text, alias="", lat="91", lon="0")
            assert nameless.status_code == 422 and "alias" in nameless.text
        assert await last_sequence(js) == before


async def test_a_form_sent_twice_records_once(js, nats_server, tmp_path, database_url) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician")
        async with session(space, "clinician") as client:
            person_id = await registered(js, space, client, story)
            page = await client.get(f"/workspace/people/{person_id}")
            first = await last_sequence(js) + 1
            fields = {"name": "Robin Avery", "relation": "parent", "phone": "+15550198877"}
            answers = [
                await posted(client, f"/workspace/people/{person_id}/contact", page.text, **fields) for _ in "ab"
            ]
            assert [a.status_code for a in answers] == [303, 303]
            shown = await client.get(f"/workspace/people/{person_id}")
        added = [e for e in await stream_events(js, first) if e.type == "family.contact_added"]
        assert len(added) == 1
        assert shown.text.count("data-contact=") == 1


async def test_a_director_lists_everyone_an_unknown_id_is_404_to_them_and_403_to_others(
    js, nats_server, tmp_path, database_url
) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician")
        async with session(space, "clinician") as client:
            person_id = await registered(js, space, client, story, alias="Jay")
            other = await registered(js, space, client, story, alias="Kim")
            found = await client.get("/workspace/people?alias=j")
            nothing_typed = await client.get("/workspace/people")
            page = await client.get(f"/workspace/people/{person_id}")
            refused = await posted(
                client, f"/workspace/people/{person_id}/update", page.text, alias="Jay", lat="39.7", lon=""
            )
        assert f'data-person="{person_id}"' in found.text and f'data-person="{other}"' not in found.text
        assert "data-person=" not in nothing_typed.text  # only a director lists everyone
        assert refused.status_code == 422 and "lon: give both latitude and longitude" in refused.text
        assert "<details open><summary>Change the profile" in refused.text and 'value="39.7"' in refused.text
        unknown = uuid4()
        async with session(space, "director") as director:
            listed = await director.get("/workspace/people")
            assert (await director.get(f"/workspace/people/{unknown}")).status_code == 404
        assert f'data-person="{person_id}"' in listed.text and f'data-person="{other}"' in listed.text
        async with space.client("nurse") as nurse, space.client("admin") as admin:
            assert (await nurse.get(f"/v1/people/{unknown}")).status_code == 403
            assert (await admin.get(f"/v1/people/{person_id}/disclosures")).status_code == 403
        denied = {(r["subject"], r["record_id"]) for r in audit_rows(space) if r["outcome"] == "denied"}
        assert {("nurse-user", str(unknown)), ("roster-admin", str(person_id))} <= denied
        assert ("dr-director", str(unknown)) in {
            (r["subject"], r["record_id"]) for r in audit_rows(space) if r["outcome"] == "not_found"
        }


async def test_an_export_of_a_linked_incident_enters_the_persons_disclosure_list(
    js, nats_server, tmp_path, database_url
) -> None:
    """A FHIR or PDF export of an incident's record discloses something about each person linked to it: a
    ``disclosure.recorded`` per export (who made it, what: the clinical record, no consent: a director's export),
    listed on the person's record; an incident linked to nobody discloses nobody."""
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story, other = await paged_incident(js, space, "clinician"), await paged_incident(js, space, "clinician")
        async with session(space, "clinician") as clinician:
            person_id = await registered(js, space, clinician, story)
        first = await last_sequence(js) + 1
        async with space.client("director") as director:
            assert (await director.get(f"/v1/incidents/{story.incident_id}/fhir")).status_code == 200
            assert (await director.get(f"/v1/incidents/{story.incident_id}/documentation.pdf")).status_code == 200
            assert (await director.get(f"/v1/incidents/{other.incident_id}/fhir")).status_code == 200
            listed = (await director.get(f"/v1/people/{person_id}/disclosures")).json()["disclosures"]
        recorded = [e for e in await stream_events(js, first) if e.type == "disclosure.recorded"]
        assert [(e.data.person_id, e.data.incident_id, e.data.channel) for e in recorded] == [
            (person_id, story.incident_id, "fhir_export"),
            (person_id, story.incident_id, "pdf_export"),
        ]
        assert {(e.data.recipient_kind, e.data.consent_id, e.data.actor) for e in recorded} == {
            ("export", None, "dr-director")
        }
        assert [e.data.information[0].value for e in recorded] == ["clinical_record", "clinical_record"]
        assert [(d["channel"], d["recipient_label"]) for d in listed] == [
            ("fhir_export", "FHIR export by dr-director"),
            ("pdf_export", "PDF export by dr-director"),
        ]


async def test_the_incident_page_offers_linking_a_person_only_to_those_who_may(
    js, nats_server, tmp_path, database_url
) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician", "coach")
        offered = {}
        for who in ("clinician", "coach", "director"):
            async with session(space, who) as client:
                page = await client.get(f"/workspace/incidents/{story.incident_id}")
                assert page.status_code == 200
                offered[who] = 'id="link-person"' in page.text
        assert offered == {"clinician": True, "coach": False, "director": True}
        denied = [r for r in audit_rows(space) if r["outcome"] == "denied"]
        assert denied == []  # asking whether to offer the link refuses nobody


async def test_matching_measures_from_the_place_a_linked_person_chose(js, nats_server, tmp_path, database_url) -> None:
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        await publish_all(js, programs())
        story = await paged_incident(js, space, "clinician")
        async with session(space, "clinician") as client:
            before = (await client.get(f"/v1/incidents/{story.incident_id}/matches")).json()
            form = await client.get(f"/workspace/people/new?incident={story.incident_id}")
            answer = await posted(
                client, "/workspace/people/new", form.text,
                alias="Jay", incident=str(story.incident_id), lat="40.5", lon="-105.0",
            )  # fmt: skip
            assert answer.status_code == 303, answer.text[:500]
            after = (await client.get(f"/v1/incidents/{story.incident_id}/matches")).json()
            page = await client.get(f"/workspace/incidents/{story.incident_id}/matches")
        far = {m["program_id"]: m["distance_km"] for m in before["matches"]}[str(FAR)]
        assert before["distance_from"] == "the incident" and far > 50
        assert after["distance_from"] == "the place the person chose"
        assert {m["program_id"]: m["distance_km"] for m in after["matches"]}[str(FAR)] < 1
        assert '<span id="distance-from">the place the person chose</span>' in page.text


async def test_caring_contacts_start_with_consent_show_back_and_end(js, nats_server, tmp_path, database_url) -> None:
    """Issue 19: a clinician on the incident starts the person's caring texts (how the person agreed), the page shows
    the series back; without a phone it is a 422 naming the field; a coach may not (403, audited); staff end it."""
    async with people_workspace(js, nats_server, tmp_path, database_url) as (space, _):
        story = await paged_incident(js, space, "clinician", "coach")
        first = await last_sequence(js) + 1
        async with session(space, "clinician") as client:
            person_id = await registered(js, space, client, story)
            page = await client.get(f"/workspace/people/{person_id}")
            no_phone = await posted(client, f"/workspace/people/{person_id}/caring", page.text, consent_how="verbal")
            assert no_phone.status_code == 422 and "no phone" in no_phone.text
            answer = await posted(
                client, f"/workspace/people/{person_id}/update", page.text,
                alias="Jay", preferred_language="es", contact_preference="sms", phone="+1 555 010 7001",
            )  # fmt: skip
            assert answer.status_code == 303, answer.text[:500]
            page = await client.get(f"/workspace/people/{person_id}")
            answer = await posted(client, f"/workspace/people/{person_id}/caring", page.text, consent_how="written")
            assert answer.status_code == 303, answer.text[:500]
            page = await client.get(answer.headers["location"])
            assert "Recorded: caring texts started." in page.text
            assert 'data-status="active"' in page.text and "0 of 11" in page.text
            assert 'id="caring-enrol"' not in page.text  # one open series per person
        reply_from = await last_sequence(js) + 1
        await publish_all(js, [sms_received("+15550107001", "hola, no estoy bien")])  # the caring desk runs here

        async def replied() -> list:
            return [e for e in await stream_events(js, reply_from) if e.type == "caring.reply_received"]

        (reply,) = await eventually(replied, "the caring desk to publish the reply")
        async with session(space, "clinician") as client:
            page = await client.get(f"/workspace/people/{person_id}")
            assert reply.data.code in page.text  # the reply's code, shown next to the series
        async with session(space, "coach") as coach:
            page = await coach.get(f"/workspace/people/{person_id}")
            assert 'id="caring-enrol"' not in page.text and "End these texts" not in page.text
            refused = await posted(coach, f"/workspace/people/{person_id}/caring", page.text, consent_how="verbal")
            assert refused.status_code == 403
        async with session(space, "clinician") as client:
            page = await client.get(f"/workspace/people/{person_id}")
            enrolment = re.search(r'data-enrolment="([^"]+)"', page.text)[1]
            answer = await posted(
                client, f"/workspace/people/{person_id}/caring_end", page.text, enrolment_id=enrolment
            )
            page = await client.get(answer.headers["location"])
            assert "Recorded: caring texts ended." in page.text and 'data-status="withdrawn"' in page.text
        events = [e for e in await stream_events(js, first) if e.type.startswith("caring.")]
        assert [e.type for e in events] == ["caring.enrolled", "caring.reply_received", "caring.withdrawn"]
        enrolled = events[0].data
        assert (enrolled.phone, enrolled.language, enrolled.consent_how, enrolled.actor) == (
            "+15550107001", "es", "written", "clinician-user",
        )  # fmt: skip
        assert enrolled.schedule_days == [1, 7, 14, 21, 28, 60, 90, 120, 180, 270, 365]
        assert (events[2].data.reason, events[2].data.actor) == ("staff", "clinician-user")
        denied = [r for r in audit_rows(space) if r["outcome"] == "denied" and r["subject"] == "coach-user"]
        assert denied
