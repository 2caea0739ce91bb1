"""Security headers on every response of projections and gateway, and CSRF on every state-changing workspace
form: a forged form (no token, or another session's) gets a 403 problem and changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import uuid4

import httpx

from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.projections.adapters.session_cookies import COOKIE_NAME
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.security_headers import HTML_POLICY
from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import (
    Story,
    page_csrf,
    publish_all,
    signed_in,
    wait_for_stream,
    workspace,
)
from tests.support.asgi_server import serving

BASELINE = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def assert_baseline(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers.get(name))
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy, (response.url, policy)


def assert_forbidden_problem(response: httpx.Response) -> None:
    assert response.status_code == 403, (response.url, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "CSRF" in response.json()["detail"]


async def test_projections_responses_carry_security_headers_and_hsts_only_over_tls(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        try:
            async with space.client("director") as api, httpx.AsyncClient(base_url=space.url) as anonymous:
                pages = [
                    await director.get("/workspace/"),
                    await director.get(f"/workspace/incidents/{story.incident_id}"),
                    await director.get(f"/workspace/incidents/{story.incident_id}/documentation"),
                    await director.get("/workspace/audit"),
                ]
                sign_in = await anonymous.get("/workspace/sign-in")
                data = [
                    await api.get(f"/v1/incidents/{story.incident_id}/timeline"),
                    await api.get(f"/v1/incidents/{uuid4()}/timeline"),  # a problem document
                    await anonymous.get("/v1/incidents"),  # 401
                ]
                static = await anonymous.get("/workspace/static/app.js")
                tls = await api.get("/v1/incidents", headers={"X-Forwarded-Proto": "https"})
        finally:
            await director.aclose()
        for response in [*pages, sign_in]:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
            assert_baseline(response)
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'self'" in policy
            assert response.headers["cache-control"] == "no-store"
            assert "<script>" not in response.text and " onclick=" not in response.text  # nothing inline to allow
            assert "strict-transport-security" not in response.headers  # plain HTTP here
        assert [r.status_code for r in data] == [200, 404, 401]
        for response in data:
            assert_baseline(response)
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert response.headers["cache-control"] == "no-store"
        assert static.headers["cache-control"] == "max-age=300"  # a route's own value wins; no PHI in it
        assert_baseline(static)
        assert tls.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_gateway_responses_carry_security_headers(nats_server, tmp_path) -> None:
    credentials = tmp_path / "credentials.json"
    token = issue_credential(credentials, "intake-line", AccessRole.INTAKE)
    settings = GatewaySettings(
        nats_url=nats_server.url, var_dir=tmp_path, credentials_file=credentials, hsts_max_age_seconds=600
    )
    with serving(build_gateway(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            health = await client.get("/healthz")
            refused = await client.post("/v1/incidents", json={})
            invalid = await client.post(
                "/v1/incidents", json={}, headers={"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
            )
            docs = await client.get("/docs")
    assert [health.status_code, refused.status_code, invalid.status_code] == [200, 401, 422]
    for response in (health, refused, invalid):
        assert_baseline(response)
        assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in refused.headers
    assert invalid.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
    # the interactive docs are served by the gateway itself, under the pages' policy (no other host, nothing inline)
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == HTML_POLICY
    assert docs.headers["x-frame-options"] == "DENY"


async def test_every_state_changing_workspace_form_refuses_a_missing_or_wrong_csrf_token(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        coach = space.people["coach"]
        story = Story()
        await publish_all(js, story.full_response(coach, 1, 2, 20, 40))
        await wait_for_stream(js, lambda es: sum(e.type == "followup.assigned" for e in es) == 1)
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        pat = await signed_in(space, "coach-user", "coach")
        try:
            tasks = await pat.get("/workspace/tasks")
            task_id = re.search(r'data-task="([^"]+)"', tasks.text)[1]
            other_session = page_csrf(tasks.text)  # a real token, but of the coach's session
            doc = f"/workspace/incidents/{story.incident_id}/documentation"
            forms = [
                (director, f"{doc}/fields", {"language": "es", "notes": "forged"}),
                (director, f"{doc}/sign-off", {"decision": "approved"}),
                (pat, f"{doc}/attest", {}),
                (director, f"/workspace/tasks/{task_id}/assign", {"assignee_id": str(coach.responder_id)}),
                (pat, f"/workspace/tasks/{task_id}/complete", {"outcome": "contact_made"}),
                (pat, f"/workspace/tasks/{task_id}/reschedule", {"due_at": "2026-12-01T10:00", "reason": "x"}),
                (director, "/workspace/sign-out", {}),
            ]
            stream_before = (await js.stream_info(STREAM_NAME)).state.last_seq
            models_before = space.read_models.store.dump()
            for client, path, values in forms:
                assert_forbidden_problem(await client.post(path, data=values))
                wrong = other_session if client is director else "not-the-token"
                assert_forbidden_problem(await client.post(path, data={**values, "csrf_token": wrong}))
            # the JSON API, called with the session cookie instead of a bearer token, wants the header
            cookie_api = await director.post(
                f"/v1/incidents/{story.incident_id}/documentation/fields", json={"language": "es"}
            )
            assert_forbidden_problem(cookie_api)
            assert (await js.stream_info(STREAM_NAME)).state.last_seq == stream_before  # nothing was appended
            assert space.read_models.store.dump() == models_before
            assert (await director.get("/workspace/")).status_code == 200  # the forged sign-out did not sign out
            # the same forms with the session's own token work, and say so in plain words
            done = await pat.post(
                f"/workspace/tasks/{task_id}/complete",
                data={"outcome": "contact_made", "csrf_token": page_csrf(tasks.text)},
            )
            assert done.status_code == 303
            assert "Task+completed." in done.headers["location"] or "Task%20completed." in done.headers["location"]
        finally:
            await director.aclose()
            await pat.aclose()
        async with httpx.AsyncClient(base_url=space.url) as anonymous:
            form = await anonymous.get("/workspace/sign-in")
            forged = await anonymous.post(
                "/workspace/sign-in",
                data={"username": "dr-director", "token": space.tokens["director"], "csrf_token": "forged"},
            )
            assert page_csrf(form.text)
            assert forged.status_code == 303 and "expired" in forged.headers["location"]
            assert COOKIE_NAME not in forged.cookies and COOKIE_NAME not in anonymous.cookies


# ---- sessions end on the server: sign-out and revoked credentials -------------------------------------------


def audited_to(space, subject: str) -> list[dict]:
    return space.app.state.record_access.audit.query(subject=subject)


def revoke_in_place(path: Path, subject: str) -> None:
    """Delete ``subject``'s credential by rewriting the file in place, as an editor does."""
    entries = json.loads(path.read_text())
    path.write_text(json.dumps([entry for entry in entries if entry["subject"] != subject], indent=2))


async def test_a_session_cookie_replayed_after_sign_out_is_refused_and_audited_to_nobody(
    js, nats_server, tmp_path, database_url
) -> None:
    async with workspace(js, nats_server, tmp_path, database_url) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        timeline = f"/workspace/incidents/{story.incident_id}"
        director = await signed_in(space, "dr-director", "director")
        try:
            page = await director.get(timeline)
            assert page.status_code == 200
            cookie = director.cookies[COOKIE_NAME]
            out = await director.post("/workspace/sign-out", data={"csrf_token": page_csrf(page.text)})
            assert out.status_code == 303
        finally:
            await director.aclose()
        audited = audited_to(space, "dr-director")
        stream_before = (await js.stream_info(STREAM_NAME)).state.last_seq
        async with httpx.AsyncClient(base_url=space.url, cookies={COOKIE_NAME: cookie}) as replay:
            again = await replay.get(timeline)
            api = await replay.get(f"/v1/incidents/{story.incident_id}/timeline")
            change = await replay.post(
                f"{timeline}/documentation/fields", data={"notes": "replayed", "csrf_token": page_csrf(page.text)}
            )
        assert again.status_code == 303 and again.headers["location"].startswith("/workspace/sign-in")
        assert api.status_code == 401
        assert change.status_code == 303 and change.headers["location"].startswith("/workspace/sign-in")
        assert audited_to(space, "dr-director") == audited  # nothing credited to the director who signed out
        assert (await js.stream_info(STREAM_NAME)).state.last_seq == stream_before


async def test_revoking_a_credential_ends_its_live_sessions_and_its_token_at_once(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        pat = await signed_in(space, "coach-user", "coach")
        try:
            assert (await pat.get("/workspace/tasks")).status_code == 200
            audited = audited_to(space, "coach-user")
            revoke_in_place(space.settings.credentials_file, "coach-user")
            refused = await pat.get("/workspace/tasks")
            assert refused.status_code == 303 and refused.headers["location"].startswith("/workspace/sign-in")
            async with space.client("coach") as api:
                assert (await api.get("/v1/followups")).status_code == 401
            form = await pat.get("/workspace/sign-in")
            again = await pat.post(
                "/workspace/sign-in",
                data={"username": "coach-user", "token": space.tokens["coach"], "csrf_token": page_csrf(form.text)},
            )
            assert again.status_code == 303 and "not+recognised" in again.headers["location"]
            assert (await director.get("/workspace/tasks")).status_code == 200  # other people are not affected
        finally:
            await director.aclose()
            await pat.aclose()
        assert audited_to(space, "coach-user") == audited  # nothing after the revocation
