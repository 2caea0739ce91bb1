"""Bad input is refused early and precisely, on every HTTP service:

- a request body is never read before the caller of a bearer route is known (401), and is cut off at the
  limit as it streams in (413), chunked or not: the client's generator is not drained;
- times a client sends are range-checked (year 1 at +14:00 and year 9999 at -14:00 are valid ISO 8601 but
  cannot be computed with): a 422 naming the field, never a 500;
- coordinates, scores and counts must be JSON numbers of the right kind, answers JSON booleans;
- refused reads are audited, and a non-director cannot tell an unknown id from one they may not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import AccessRole, issue_credential
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings
from tests.integration.test_projections import (
    Story,
    page_csrf,
    publish_all,
    signed_in,
    wait_for_stream,
    workspace,
)
from tests.support.asgi_server import serving

LIMIT = 64 * 1024
EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]  # valid, but not convertible to UTC
EXTREME_DAYS = ["0001-01-01", "9999-12-31"]
RESPONDER_ID = uuid4()


class Flood:
    """A chunked body (no Content-Length) far larger than the limit, counting the chunks the client sent."""

    def __init__(self, total: int = 128 * 1024 * 1024, chunk: int = 64 * 1024) -> None:
        self.piece = b"x" * chunk
        self.chunks = total // chunk
        self.sent = 0

    def sync(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield self.piece

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield self.piece

    @property
    def drained(self) -> bool:
        return self.sent >= self.chunks


def post_flood(url: str, flood: Flood, **options: Any) -> httpx.Response:
    with httpx.Client(timeout=60, cookies=options.pop("cookies", None)) as client:
        return client.post(url, content=flood.sync(), **options)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    if field is not None:
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


# ---- the gateway ----------------------------------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def gateway_settings(nats_url: str, var_dir: Path) -> tuple[GatewaySettings, dict[str, str]]:
    credentials = var_dir / "credentials.json"
    tokens = {
        "intake": issue_credential(credentials, "edge-intake", AccessRole.INTAKE),
        "admin": issue_credential(credentials, "edge-admin", AccessRole.ADMIN),
        "director": issue_credential(credentials, "edge-director", AccessRole.DIRECTOR),
        "responder": issue_credential(credentials, "edge-responder", AccessRole.RESPONDER, RESPONDER_ID),
    }
    return GatewaySettings(nats_url=nats_url, var_dir=var_dir, credentials_file=credentials), tokens


@pytest.fixture(scope="module")
def gateway(nats_server, tmp_path_factory) -> Iterator[Gateway]:
    settings, tokens = gateway_settings(nats_server.url, tmp_path_factory.mktemp("edge-gateway"))
    with serving(build_gateway(settings)) as url:
        yield Gateway(url, tokens)


BEARER_ROUTES = ["/v1/incidents", "/v1/admin/responders", f"/v1/incidents/{uuid4()}/naloxone"]


@pytest.mark.parametrize("path", BEARER_ROUTES)
@pytest.mark.parametrize("token", [None, "not-a-known-token"])
def test_a_chunked_flood_without_a_known_token_is_answered_401_without_being_read(gateway, path, token) -> None:
    flood = Flood()
    headers = {"content-type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    response = httpx.post(gateway.url + path, content=flood.sync(), headers=headers, timeout=60)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not flood.drained, f"the client had to send all {flood.chunks} chunks before it was answered"


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("intake", "/v1/incidents"),
        ("admin", "/v1/admin/calendars"),  # reads its body itself (JSON or text/calendar)
        ("director", f"/v1/incidents/{uuid4()}/ems-arrived"),
    ],
)
def test_a_chunked_flood_with_a_valid_token_is_cut_off_413_as_it_streams_in(gateway, who, path) -> None:
    flood = Flood()
    headers = {"content-type": "application/json", **gateway.auth(who)}
    response = httpx.post(gateway.url + path, content=flood.sync(), headers=headers, timeout=60)
    assert_problem(response, 413)
    assert response.json()["detail"] == f"request bodies are limited to {LIMIT} bytes"
    assert response.headers["x-content-type-options"] == "nosniff"  # answered inside the security headers
    assert not flood.drained


def test_a_twilio_webhook_flood_is_cut_off_413_its_signature_needs_the_body(gateway) -> None:
    flood = Flood()
    headers = {"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "c2lnbmF0dXJl"}
    response = httpx.post(gateway.url + "/twilio/sms", content=flood.sync(), headers=headers, timeout=60)
    assert_problem(response, 413)
    assert not flood.drained


async def test_not_one_body_byte_is_read_before_the_bearer_token_is_known(nats_server, tmp_path) -> None:
    """Exactly, at the ASGI level: how many body messages the gateway pulls off the connection."""
    settings, tokens = gateway_settings(nats_server.url, tmp_path)
    app = build_gateway(settings)  # no lifespan: nothing here may get as far as the stream

    async def post(headers: dict[str, str]) -> tuple[int, int]:
        pulled, answer = 0, {}

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1  # 1 MiB at most, in 1 KiB pieces: what the old gateway read whole before answering
            return {"type": "http.request", "body": b"x" * 1024, "more_body": pulled < 1024}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]

        raw = [(k.lower().encode(), v.encode()) for k, v in {"content-type": "application/json", **headers}.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/incidents",
            "raw_path": b"/v1/incidents",
            "root_path": "",
            "query_string": b"",
            "headers": raw,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
        }
        await app(scope, receive, send)
        return answer["status"], pulled

    chunked = {"transfer-encoding": "chunked"}
    assert await post(chunked) == (401, 0)
    assert await post(chunked | {"authorization": "Bearer not-a-known-token"}) == (401, 0)
    assert await post({"content-length": str(10**9)}) == (401, 0)  # a declared size does not come first either
    status, pulled = await post(chunked | {"authorization": f"Bearer {tokens['intake']}"})
    assert status == 413 and pulled == LIMIT // 1024 + 1  # read up to the first byte past the limit, no further


# -- times ---------------------------------------------------------------------------------------------------------


def _override(at: str, which: str) -> dict[str, Any]:
    times = {"starts_at": "2026-11-23T08:00:00Z", "ends_at": "2026-11-23T20:00:00Z"} | {which: at}
    return {"responder_id": str(RESPONDER_ID), "zones": ["central"], **times}


def _rotation(day: str) -> dict[str, Any]:
    return {
        "name": "Nights",
        "zones": ["central"],
        "time_zone": "America/Denver",
        "handoff_time": "08:00",
        "shift": "daily",
        "start_date": day,
        "participants": [str(RESPONDER_ID)],
    }


GATEWAY_TIMES = [
    pytest.param(
        "intake",
        f"/v1/incidents/{uuid4()}/naloxone",
        lambda at: {"given_at": at, "product": "naloxone 4 mg nasal spray", "route": "intranasal"},
        "body.given_at",
        id="naloxone",
    ),
    pytest.param(
        "intake", f"/v1/incidents/{uuid4()}/ems-arrived", lambda at: {"arrived_at": at}, "body.arrived_at", id="ems"
    ),
    pytest.param(
        "admin",
        f"/v1/responders/{RESPONDER_ID}/location",
        lambda at: {"lat": 39.74, "lon": -104.99, "reported_at": at},
        "body.reported_at",
        id="location",
    ),
    pytest.param(
        "admin", "/v1/admin/overrides", lambda at: _override(at, "starts_at"), "body.starts_at", id="override-start"
    ),
    pytest.param(
        "admin", "/v1/admin/overrides", lambda at: _override(at, "ends_at"), "body.ends_at", id="override-end"
    ),
]


@pytest.mark.parametrize("at", EXTREMES)
@pytest.mark.parametrize(("who", "path", "body", "field"), GATEWAY_TIMES)
def test_extreme_times_on_every_gateway_route_are_a_422_naming_the_field(gateway, who, path, body, field, at) -> None:
    response = httpx.post(gateway.url + path, json=body(at), headers=gateway.auth(who))
    assert_problem(response, 422, field)


@pytest.mark.parametrize("day", EXTREME_DAYS)
def test_an_extreme_rotation_start_date_is_a_422(gateway, day) -> None:
    response = httpx.post(gateway.url + "/v1/admin/rotations", json=_rotation(day), headers=gateway.auth("admin"))
    assert_problem(response, 422, "body.start_date")


def test_a_time_at_the_edge_of_the_range_in_another_offset_is_accepted_in_utc(gateway) -> None:
    at = "2026-11-23T23:30:00-07:00"  # the next day in UTC
    body = {"lat": 39.74, "lon": -104.99, "reported_at": at}
    path = f"/v1/responders/{RESPONDER_ID}/location"
    assert httpx.post(gateway.url + path, json=body, headers=gateway.auth("responder")).status_code == 202


# -- strict types --------------------------------------------------------------------------------------------------


def _report(**changes: Any) -> dict[str, Any]:
    report = {
        "kind": "overdose",
        "location": {"lat": 39.7431, "lon": -104.9876},
        "reporter": {"channel": "hotline"},
        "details": {"ems_called": True},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = report
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return report


@pytest.mark.parametrize(
    ("who", "path", "body", "field"),
    [
        ("intake", "/v1/incidents", _report(location__lat=True), "body.location.lat"),
        ("intake", "/v1/incidents", _report(location__lat="39.7"), "body.location.lat"),
        ("intake", "/v1/incidents", _report(location__lon="-104.9"), "body.location.lon"),
        ("intake", "/v1/incidents", _report(details__naloxone_doses_given="2"), "body.details.naloxone_doses_given"),
        ("intake", "/v1/incidents", _report(details__naloxone_doses_given=True), "body.details.naloxone_doses_given"),
        ("intake", "/v1/incidents", _report(details__naloxone_doses_given=2.0), "body.details.naloxone_doses_given"),
        ("intake", "/v1/incidents", _report(details__ems_called="yes"), "body.details.ems_called"),
        (
            "intake",
            "/v1/incidents",
            _report(kind="withdrawal", details={"substance": "opioid", "cows_score": "12"}),
            "body.details.cows_score",
        ),
        (
            "intake",
            "/v1/incidents",
            _report(kind="self_harm_risk", details={"q1": 1, "q2": False, "q6_ever": False}),
            "body.details.q1",
        ),
        (
            "intake",
            f"/v1/incidents/{uuid4()}/naloxone",
            {"product": "naloxone", "route": "intranasal", "dose_mg": "4"},
            "body.dose_mg",
        ),
        ("intake", f"/v1/incidents/{uuid4()}/relocated", {"location": {"lat": True, "lon": 1.0}}, "body.location.lat"),
        ("admin", f"/v1/responders/{RESPONDER_ID}/location", {"lat": True, "lon": -104.99}, "body.lat"),
        ("admin", f"/v1/responders/{RESPONDER_ID}/location", {"lat": "39.7", "lon": -104.99}, "body.lat"),
        (
            "admin",
            "/v1/admin/responders",
            {
                "name": "Test Person",
                "role": "clinician",
                "phone": "+13035550123",
                "home_base": {"lat": "39.7", "lon": -104.99},
            },
            "body.home_base.lat",
        ),
    ],
)
def test_coordinates_scores_and_counts_must_be_json_numbers_of_the_right_kind(gateway, who, path, body, field) -> None:
    response = httpx.post(gateway.url + path, json=body, headers=gateway.auth(who))
    assert_problem(response, 422, field)


# ---- the SMS sandbox --------------------------------------------------------------------------------------------


def test_the_sms_sandbox_cuts_a_chunked_flood_off_413(tmp_path) -> None:
    flood = Flood()
    with serving(build_sandbox_app(SandboxSettings(var_dir=tmp_path))) as url:
        response = httpx.post(
            url + "/sandbox/api/inbound",
            content=flood.sync(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
    assert_problem(response, 413)
    assert not flood.drained


# ---- projections ------------------------------------------------------------------------------------------------


async def test_projections_cut_chunked_floods_off_413_on_json_routes_and_workspace_forms(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        try:
            api = {"Authorization": f"Bearer {space.tokens['director']}", "content-type": "application/json"}
            form = {"content-type": "application/x-www-form-urlencoded"}
            floods = [
                (f"/v1/incidents/{story.incident_id}/documentation/fields", api, None),
                (f"/workspace/incidents/{story.incident_id}/documentation/fields", form, director.cookies),
            ]
            for path, headers, cookies in floods:
                flood = Flood()
                # a blocking client in a thread: an asyncio client drops an early answer when its upload fails
                response = await asyncio.to_thread(
                    post_flood, space.url + path, flood, headers=headers, cookies=cookies
                )
                assert_problem(response, 413)
                assert not flood.drained, path
        finally:
            await director.aclose()


async def test_extreme_times_on_every_projections_route_and_form_are_a_422_naming_the_field(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        incident, task = story.incident_id, uuid4()
        failures: list[str] = []
        director = await signed_in(space, "dr-director", "director")
        try:
            async with space.client("director") as api:
                for at in EXTREMES:
                    dose = {"given_at": at, "product": "naloxone", "route": "intranasal", "given_by_role": "ems"}
                    disclosure = {
                        "recipient_name": "ED nurse",
                        "recipient_affiliation": "General Hospital",
                        "disclosed_by": "dr-director",
                        "disclosed_at": at,
                        "nature_of_emergency": "overdose",
                    }
                    calls = [
                        ("get", f"/v1/incidents/{incident}/timeline", {"params": {"as_of": at}}, "query.as_of"),
                        ("get", f"/v1/incidents/{incident}/documentation", {"params": {"as_of": at}}, "query.as_of"),
                        ("get", "/v1/metrics", {"params": {"since": at}}, "query.since"),
                        ("get", "/v1/metrics", {"params": {"until": at}}, "query.until"),
                        ("get", "/v1/audit", {"params": {"since": at}}, "query.since"),
                        ("get", "/v1/audit", {"params": {"until": at}}, "query.until"),
                        ("post", f"/v1/followups/{task}/reschedule", {"json": {"due_at": at, "reason": "r"}}, None),
                        ("post", f"/v1/incidents/{incident}/documentation/fields", {"json": {"cleared_at": at}}, None),
                        (
                            "post",
                            f"/v1/incidents/{incident}/documentation/fields",
                            {"json": {"naloxone_doses": [dose]}},
                            "body.naloxone_doses.0.given_at",
                        ),
                        (
                            "post",
                            f"/v1/incidents/{incident}/documentation/fields",
                            {"json": {"part2_disclosure": disclosure}},
                            "body.part2_disclosure.disclosed_at",
                        ),
                    ]
                    for method, path, options, field in calls:
                        response = await getattr(api, method)(path, **options)
                        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
                        named = [e["field"] for e in body.get("errors", [])]
                        expected = field or ("body.due_at" if "reschedule" in path else "body.cleared_at")
                        if response.status_code != 422 or expected not in named:
                            failures.append(f"{method} {path} {options} {at}: {response.status_code} {named}")
            page = await director.get(f"/workspace/incidents/{incident}/documentation")
            csrf = page_csrf(page.text)
            doc = f"/workspace/incidents/{incident}/documentation/fields"
            for at in EXTREMES:
                forms = [
                    ("get", f"/workspace/incidents/{incident}", {"params": {"as_of": at}}, "as_of"),
                    ("post", f"/workspace/tasks/{task}/reschedule", {"data": {"due_at": at, "reason": "r"}}, "due_at"),
                    ("post", doc, {"data": {"cleared_at": at}}, "cleared_at"),
                    ("post", doc, {"data": {"dose.given_at": at, "dose.product": "naloxone"}}, "dose.given_at"),
                ]
                for day in EXTREME_DAYS:
                    forms += [
                        ("get", "/workspace/metrics", {"params": {"since": day}}, "since"),
                        ("get", "/workspace/metrics", {"params": {"until": day}}, "until"),
                    ]
                for method, path, options, field in forms:
                    if method == "post":
                        options = {"data": {**options["data"], "csrf_token": csrf}}
                    response = await getattr(director, method)(path, **options)
                    if response.status_code != 422 or f"{field}:" not in response.text:
                        failures.append(f"workspace {method} {path} {options}: {response.status_code}")
        finally:
            await director.aclose()
        assert not failures, "\n".join(failures)


async def test_documentation_counts_and_answers_must_be_json_numbers_and_booleans(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        path = f"/v1/incidents/{story.incident_id}/documentation/fields"
        async with space.client("director") as api:
            for fields, name in [
                ({"documentation_minutes": "15"}, "body.documentation_minutes"),
                ({"documentation_minutes": True}, "body.documentation_minutes"),
                ({"interpreter_used": "yes"}, "body.interpreter_used"),
            ]:
                assert_problem(await api.post(path, json=fields), 422, name)
            assert (await api.post(path, json={"documentation_minutes": 15, "language": "en"})).status_code == 202


# ---- refused reads ----------------------------------------------------------------------------------------------


def _same_answer(forbidden: httpx.Response, unknown: httpx.Response, forbidden_id: UUID, unknown_id: UUID) -> None:
    """Byte for byte the same answer, once the id the caller sent is taken out of it."""
    assert forbidden.status_code == unknown.status_code == 403, (forbidden.text, unknown.text)
    assert forbidden.headers["content-type"] == unknown.headers["content-type"]
    assert forbidden.text.replace(str(forbidden_id), "<id>") == unknown.text.replace(str(unknown_id), "<id>")


async def test_refused_reads_are_audited_and_unknown_ids_answer_like_forbidden_ones(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        clinician, coach = space.people["clinician"], space.people["coach"]
        mine, other = Story(), Story()
        await publish_all(js, [*mine.full_response(coach, 1, 2, 20, 40), *other.full_response(clinician, 1, 2, 20, 40)])
        await wait_for_stream(js, lambda es: sum(e.type == "followup.created" for e in es) == 2)
        await space.settled(js)
        unknown_incident, unknown_task, director_probe = uuid4(), uuid4(), uuid4()
        pat_web = await signed_in(space, "coach-user", "coach")
        try:
            async with space.client("coach") as pat, space.client("director") as director:
                others_task = next(
                    UUID(t["task_id"])
                    for t in (await director.get("/v1/followups")).json()
                    if t["incident_id"] == str(other.incident_id)
                )
                for suffix in ("timeline", "documentation", "documentation.html", "documentation.pdf", "fhir"):
                    _same_answer(
                        await pat.get(f"/v1/incidents/{other.incident_id}/{suffix}"),
                        await pat.get(f"/v1/incidents/{unknown_incident}/{suffix}"),
                        other.incident_id,
                        unknown_incident,
                    )
                # documentation is written only by those on the incident: an unknown one answers the same
                _same_answer(
                    await pat.post(f"/v1/incidents/{other.incident_id}/documentation/fields", json={"language": "en"}),
                    await pat.post(f"/v1/incidents/{unknown_incident}/documentation/fields", json={"language": "en"}),
                    other.incident_id,
                    unknown_incident,
                )
                _same_answer(
                    await pat.get(f"/v1/followups/{others_task}"),
                    await pat.get(f"/v1/followups/{unknown_task}"),
                    others_task,
                    unknown_task,
                )
                for page in ("", "/documentation"):
                    _same_answer(
                        await pat_web.get(f"/workspace/incidents/{other.incident_id}{page}"),
                        await pat_web.get(f"/workspace/incidents/{unknown_incident}{page}"),
                        other.incident_id,
                        unknown_incident,
                    )
                # a director may learn that an id is unknown; that read is audited too
                assert (await director.get(f"/v1/incidents/{director_probe}/timeline")).status_code == 404
                assert (await pat.get("/v1/metrics")).status_code == 403
                assert (await pat.get("/v1/audit")).status_code == 403
                assert (await pat_web.get("/workspace/metrics")).status_code == 403
                trail = (await director.get("/v1/audit", params={"limit": 5000})).json()
        finally:
            await pat_web.aclose()
        entries = {(a["subject"], a["action"], a["record_id"], a["outcome"]) for a in trail}
        for suffix in ("timeline", "documentation", "export:html", "export:pdf", "export:fhir"):
            assert ("coach-user", suffix, str(unknown_incident), "denied") in entries, suffix
            assert ("coach-user", suffix, str(other.incident_id), "denied") in entries, suffix
        assert ("coach-user", "task", str(unknown_task), "denied") in entries
        assert ("coach-user", "task", str(others_task), "denied") in entries
        assert ("dr-director", "timeline", str(director_probe), "not_found") in entries
        assert ("coach-user", "audit", "all", "denied") in entries
        metrics_refusals = [a for a in trail if a["subject"] == "coach-user" and a["action"] == "metrics"]
        assert len(metrics_refusals) == 2 and {a["outcome"] for a in metrics_refusals} == {"denied"}  # API and page


async def test_a_role_without_incidents_is_audited_when_refused_the_board(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        async with space.client("admin") as admin, space.client("director") as director:
            assert (await admin.get("/v1/incidents")).status_code == 403
            assert (await admin.get("/v1/followups")).status_code == 403
            trail = (await director.get("/v1/audit", params={"subject": "roster-admin"})).json()
        assert {(a["action"], a["outcome"]) for a in trail} == {("board", "denied"), ("tasks", "denied")}
