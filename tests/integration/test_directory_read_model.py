"""The treatment-program directory on the projections service, over a real nats-server and a real port: program
events folded into the directory, ``GET /v1/programs`` with its filters and roles, the staleness rule as the
clock moves, the workspace page, and the program's signed reporting link (valid, expired, tampered)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx

from services.contract.events import (
    ProgramAvailabilityReported,
    ProgramAvailabilityReportedData,
    ProgramProfile,
    ProgramRegistered,
    ProgramRetired,
    ProgramRetiredData,
    new_event,
)
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.projections.bootstrap import build_projections
from services.projections.rebuild import replay_into
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.launcher import SEED_SUBJECT, seed_demo_programs
from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import signed_in, workspace
from tests.support.asgi_server import serving
from tests.support.stream import publish_all

CLINIC = UUID("0b7e8f10-0000-4000-8000-00000000a001")
RESIDENTIAL = UUID("0b7e8f10-0000-4000-8000-00000000a002")
CLOSED = UUID("0b7e8f10-0000-4000-8000-00000000a003")


def registered(program_id: UUID, name: str, at, **changes) -> object:
    profile = {
        "program_id": program_id,
        "name": name,
        "address": "777 Bannock St, Denver, CO 80204",
        "location": {"lat": 39.7279, "lon": -104.9905},
        "zone": "central",
        "levels_of_care": ["2.1", "1"],
        "medications": ["buprenorphine"],
        "payers": ["medicaid", "sliding_fee"],
        "populations": ["adults"],
        "languages": ["en", "es"],
        "intake_phone": "+13035550141",
    } | changes
    return new_event(
        ProgramRegistered, ProgramProfile.model_validate(profile), event_id=uuid4(), occurred_at=at, producer="test"
    )


def reported(program_id: UUID, at, beds: int | None, **changes) -> object:
    data = {"program_id": program_id, "beds_open": beds, "as_of": at, "reported_by": "test-admin", "channel": "api"}
    return new_event(
        ProgramAvailabilityReported,
        ProgramAvailabilityReportedData.model_validate(data | changes),
        event_id=uuid4(),
        occurred_at=at,
        producer="test",
    )


async def directory(space, js, now) -> None:
    """Three programs: a clinic with 3 beds open now, a residential program full, one retired."""
    retired = ProgramRetiredData(program_id=CLOSED, reason="closed")
    await publish_all(
        js,
        [
            registered(CLINIC, "Bannock Clinic", now),
            registered(
                RESIDENTIAL,
                "Cheesman House",
                now,
                levels_of_care=["3.5", "3.7-WM"],
                medications=["buprenorphine", "naltrexone"],
                payers=["private"],
                populations=["adults", "women_with_children"],
                languages=["en"],
            ),
            registered(CLOSED, "Closed Place", now),
            new_event(ProgramRetired, retired, event_id=uuid4(), occurred_at=now, producer="test"),
            reported(CLINIC, now - timedelta(minutes=5), 3),
            reported(RESIDENTIAL, now - timedelta(minutes=5), 0),
        ],
    )
    await space.settled(js)


async def test_the_directory_lists_programs_with_availability_and_filters(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        now = space.clock.now()
        await directory(space, js, now)
        async with space.client("coach") as coach:
            everything = (await coach.get("/v1/programs")).json()
            residential = (await coach.get("/v1/programs", params={"level": "3.7-WM", "payer": "private"})).json()
            spanish = (await coach.get("/v1/programs", params={"language": "es"})).json()
            nobody = (await coach.get("/v1/programs", params={"population": "veterans"})).json()
    names = [p["name"] for p in everything["programs"]]
    assert names == ["Bannock Clinic", "Cheesman House"]  # by name; the retired one is not listed
    clinic = everything["programs"][0]
    assert clinic["availability"]["state"] == "open" and clinic["availability"]["beds_open"] == 3
    assert clinic["availability"]["offered_as_open"] and clinic["availability"]["age_minutes"] == 5
    assert clinic["intake_phone"] == "+13035550141" and clinic["levels_of_care"] == ["2.1", "1"]
    assert everything["programs"][1]["availability"]["state"] == "full"
    assert [p["name"] for p in residential["programs"]] == ["Cheesman House"]
    assert residential["filter"] == "level 3.7-WM, payer private"
    assert [p["name"] for p in spanish["programs"]] == ["Bannock Clinic"]
    assert nobody["programs"] == []


async def test_a_report_older_than_the_maximum_age_is_unconfirmed_never_open(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        await directory(space, js, space.clock.now())
        space.clock.advance(timedelta(hours=25))
        async with space.client("director") as director:
            programs = (await director.get("/v1/programs")).json()["programs"]
        pat = await signed_in(space, "coach-user", "coach")
        try:
            html = (await pat.get("/workspace/programs")).text
        finally:
            await pat.aclose()
    clinic = programs[0]["availability"]
    assert clinic["state"] == "unconfirmed" and not clinic["offered_as_open"] and clinic["beds_open"] is None
    assert clinic["as_of"] is not None
    assert not any(p["availability"]["offered_as_open"] for p in programs)
    row = html.split(f'data-program="{CLINIC}"')[1].split("</tr>")[0]
    assert 'data-state="unconfirmed"' in html and "unconfirmed (as of" in row and "open" not in row.lower()


async def test_the_directory_is_for_staff_and_refuses_unknown_filters(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        intake = issue_credential(space.settings.credentials_file, "crisis-line", AccessRole.INTAKE)
        async with httpx.AsyncClient(base_url=space.url) as anonymous:
            nobody = await anonymous.get("/v1/programs")
        async with httpx.AsyncClient(base_url=space.url, headers={"Authorization": f"Bearer {intake}"}) as line:
            refused = await line.get("/v1/programs")
        async with space.client("admin") as admin:
            allowed = await admin.get("/v1/programs")
            bad = await admin.get("/v1/programs", params={"level": "9"})
    assert (nobody.status_code, refused.status_code, allowed.status_code) == (401, 403, 200)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "query.level"


async def test_the_workspace_page_shows_each_state_in_words(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        now = space.clock.now()
        await directory(space, js, now)
        pat = await signed_in(space, "coach-user", "coach")
        try:
            html = (await pat.get("/workspace/programs")).text
            filtered = (await pat.get("/workspace/programs", params={"medication": "naltrexone"})).text
            bad = await pat.get("/workspace/programs", params={"payer": "gold"})
        finally:
            await pat.aclose()
    local = (now - timedelta(minutes=5)).astimezone(space.settings.time_zone()).strftime("%H:%M")
    assert f"open: 3 beds as of {local}" in html and f"full as of {local}" in html
    assert 'href="/workspace/programs"' in html  # in the navigation
    assert "Closed Place" not in html
    assert "Cheesman House" in filtered and "Bannock Clinic" not in filtered
    assert "Showing: medication naltrexone (1 program)" in filtered
    assert bad.status_code == 422


async def test_a_rebuild_from_the_stream_gives_the_same_directory(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        await directory(space, js, space.clock.now())
        live = await asyncio.to_thread(space.read_models.directory.entries)
        with build_projections(space.settings, space.clock, name="rebuilt") as rebuilt:
            await replay_into(js, rebuilt, reset=True)
            assert await asyncio.to_thread(rebuilt.directory.entries) == live
            await replay_into(js, rebuilt, reset=True)  # a second rebuild starts from nothing and ends the same
            assert await asyncio.to_thread(rebuilt.directory.entries) == live
    assert [e.profile["name"] for e in live] == ["Bannock Clinic", "Cheesman House", "Closed Place"]
    assert [e.retired for e in live] == [False, False, True] and live[0].availability.beds_open == 3


def link_token(url: str) -> str:
    return url.rsplit("/p/", 1)[1]


async def test_a_program_reports_through_its_signed_link(js, nats_server, tmp_path, database_url) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        now = space.clock.now()
        await directory(space, js, now)
        async with space.client("admin") as admin:
            issued = (await admin.post(f"/v1/programs/{RESIDENTIAL}/report-link")).json()
        async with space.client("coach") as coach:
            refused = await coach.post(f"/v1/programs/{RESIDENTIAL}/report-link")
        token = link_token(issued["url"])
        async with httpx.AsyncClient(base_url=space.url) as program:
            form = await program.get(f"/p/{token}")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
            before = (await js.stream_info(STREAM_NAME)).state.last_seq
            bad = await program.post(f"/p/{token}", data={"beds_open": "lots", "csrf_token": csrf})
            squared = await program.post(f"/p/{token}", data={"beds_open": "\u00b2", "csrf_token": csrf})
            past = await program.post(f"/p/{token}", data={"next_intake_at": "2020-01-01T09:00", "csrf_token": csrf})
            assert (await js.stream_info(STREAM_NAME)).state.last_seq == before
            saved = await program.post(f"/p/{token}", data={"beds_open": "2", "csrf_token": csrf})
            after = await program.get(saved.headers["location"])
        async with space.client("director") as director:
            programs = {p["name"]: p for p in (await director.get("/v1/programs")).json()["programs"]}
    assert refused.status_code == 403
    assert form.status_code == 200 and "Cheesman House" in form.text and "full as of" in form.text
    assert bad.status_code == 422 and "beds open" in bad.text and 'value="lots"' in bad.text
    assert squared.status_code == 422 and past.status_code == 422 and "must be in the future" in past.text
    assert saved.status_code == 303 and "Thank you: saved." in after.text and "open: 2 beds" in after.text
    availability = programs["Cheesman House"]["availability"]
    assert availability["state"] == "open" and availability["beds_open"] == 2


async def test_an_expired_or_tampered_link_is_refused_and_records_nothing(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        now = space.clock.now()
        await directory(space, js, now)
        links = space.app.state.program_links
        good = links.token(CLINIC, now + timedelta(days=1))
        expired = links.token(CLINIC, now - timedelta(seconds=1))
        flipped = good[:5] + ("A" if good[5] != "A" else "B") + good[6:]
        retired = links.token(CLOSED, now + timedelta(days=1))
        before = (await js.stream_info(STREAM_NAME)).state.last_seq
        async with httpx.AsyncClient(base_url=space.url) as program:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await program.get(f"/p/{good}")).text)[1]
            answers = {
                name: await program.post(f"/p/{token}", data={"beds_open": "5", "csrf_token": csrf})
                for name, token in {"expired": expired, "tampered": flipped, "retired": retired, "junk": "x"}.items()
            }
            pages = {
                name: await program.get(f"/p/{token}") for name, token in {"expired": expired, "t": flipped}.items()
            }
            forged = await program.post(f"/p/{good}", data={"beds_open": "5", "csrf_token": "not-the-cookie"})
        assert (await js.stream_info(STREAM_NAME)).state.last_seq == before
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 404)
    assert all(p.status_code == 404 and "not valid or has expired" in p.text for p in pages.values())
    assert forged.status_code == 403


async def test_make_run_imports_the_demo_programs_once_through_the_admin_api(js, nats_server, tmp_path) -> None:
    sample = Path(__file__).parents[2] / "deploy" / "demo" / "programs.csv"
    async with workspace(js, nats_server, tmp_path) as space:
        credentials = space.settings.credentials_file
        settings = GatewaySettings(nats_url=nats_server.url, credentials_file=credentials, phone_default_region="US")
        with serving(build_gateway(settings, space.clock)) as gateway:
            first = await asyncio.to_thread(seed_demo_programs, gateway, space.url, credentials, sample)
            await space.settled(js)
            again = await asyncio.to_thread(seed_demo_programs, gateway, space.url, credentials, sample)
        async with space.client("director") as director:
            programs = (await director.get("/v1/programs")).json()["programs"]
    assert (first, again) == (7, None)  # the second start finds the directory filled and imports nothing
    assert len(programs) == 7 and all(p["availability"]["state"] == "not_reported" for p in programs)
    assert SEED_SUBJECT not in credentials.read_text()  # the seed's credential lived only for the import
