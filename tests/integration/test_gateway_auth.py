"""Every gateway route needs a bearer token with an allowed role; a new route cannot ship unprotected.

The routes are read from the app's own OpenAPI document, so a route added later is checked without
touching this file: it fails here unless it declares ``Depends(require_role(...))``.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import (
    AccessRole,
    CredentialStore,
    Principal,
    ensure_demo_credentials,
    issue_credential,
)
from tests.support.asgi_server import serving

RESPONDER_ID = UUID("5e1d2c3b-0000-4000-8000-00000000a001")
TOKENS = {role: f"test-{role.value}-token" for role in AccessRole}
PUBLIC = {
    ("GET", "/healthz"),
    ("POST", "/twilio/sms"),
    ("POST", "/twilio/status"),
    ("POST", "/twilio/voice/keypad"),
    ("POST", "/twilio/voice/incoming"),
}
A, INTAKE, R = AccessRole.ADMIN, AccessRole.INTAKE, AccessRole.RESPONDER
# Who may do what, for the routes this file's author knows; any other route must still refuse some role.
EXPECTED = {
    ("POST", "/v1/incidents"): {INTAKE, R, A},
    ("POST", "/v1/admin/responders"): {A},
    ("PUT", "/v1/admin/responders/{responder_id}"): {A},
    ("DELETE", "/v1/admin/responders/{responder_id}"): {A},
    ("POST", "/v1/responders/{responder_id}/location"): {R, A},
    ("POST", "/v1/responders/{responder_id}/availability"): {R, A},
    ("POST", "/v1/admin/rotations"): {A},
    ("DELETE", "/v1/admin/rotations/{rotation_id}"): {A},
    ("POST", "/v1/admin/overrides"): {A},
    ("DELETE", "/v1/admin/overrides/{override_id}"): {A},
    ("POST", "/v1/admin/calendars"): {A},
}


@pytest.fixture(scope="module")
def credentials_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "credentials.json"
    for role, token in TOKENS.items():
        responder = RESPONDER_ID if role is AccessRole.RESPONDER else None
        issue_credential(path, f"test-{role.value}", role, responder, token=token)
    return path


@pytest.fixture(scope="module")
def app(nats_server, credentials_file):
    return build(GatewaySettings(nats_url=nats_server.url, credentials_file=credentials_file))


@pytest.fixture(scope="module")
def gateway(app):
    with serving(app) as url:
        yield url


def operations(app) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


def concrete(path: str) -> str:
    # the responder credential speaks for RESPONDER_ID, so "only for themselves" does not hide a role check
    return re.sub(r"\{[^}]+\}", str(RESPONDER_ID), path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_route_table_is_what_the_auth_tests_walk(app) -> None:
    ops = set(operations(app))
    assert PUBLIC <= ops and set(EXPECTED) <= ops  # guards against the walk silently finding nothing


def test_every_route_but_health_and_twilio_answers_401_without_a_usable_token(app, gateway) -> None:
    failures = []
    for method, path in operations(app):
        if (method, path) in PUBLIC:
            continue
        url = gateway + concrete(path)
        for label, headers in [
            ("no header", {}),
            ("unknown token", bearer("not-a-known-token")),
            ("not bearer", {"Authorization": f"Basic {TOKENS[A]}"}),
            ("bearer without a token", {"Authorization": "Bearer"}),
        ]:
            response = httpx.request(method, url, headers=headers)
            ok = (
                response.status_code == 401
                and response.headers["content-type"] == "application/problem+json"
                and response.headers.get("www-authenticate", "").startswith("Bearer")
            )
            if not ok:
                failures.append(f"{method} {path} ({label}): {response.status_code}")
        unknown = httpx.request(method, url, headers=bearer("not-a-known-token"))
        if 'error="invalid_token"' not in unknown.headers.get("www-authenticate", ""):
            failures.append(f"{method} {path}: no invalid_token challenge")
    assert not failures, "\n".join(failures)


def test_every_protected_route_refuses_a_wrong_role_with_403(app, gateway) -> None:
    failures = []
    for method, path in operations(app):
        if (method, path) in PUBLIC:
            continue
        admitted, refused = set(), set()
        for role, token in TOKENS.items():
            # no body: an admitted role gets past auth and stops at validation, so nothing is recorded
            response = httpx.request(method, gateway + concrete(path), headers=bearer(token))
            if response.status_code == 403:
                assert response.headers["content-type"] == "application/problem+json"
                refused.add(role)
            elif response.status_code != 401:
                admitted.add(role)
        if not refused:
            failures.append(f"{method} {path}: no role is refused")
        if (method, path) in EXPECTED and admitted != EXPECTED[(method, path)]:
            failures.append(f"{method} {path}: admits {sorted(admitted)}, expected {sorted(EXPECTED[(method, path)])}")
    assert not failures, "\n".join(failures)


def test_protected_routes_declare_bearer_security_in_openapi(app) -> None:
    document = app.openapi()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in PUBLIC:
                assert "security" not in operation, path
            else:
                assert {"HTTPBearer": []} in operation.get("security", []), f"{method} {path}"
                assert "401" in operation["responses"] and "403" in operation["responses"], f"{method} {path}"


def test_health_and_twilio_webhooks_need_no_bearer_token(gateway) -> None:
    assert httpx.get(f"{gateway}/healthz").status_code == 200
    for path in ("/twilio/sms", "/twilio/status", "/twilio/voice/keypad", "/twilio/voice/incoming"):
        response = httpx.post(gateway + path, data={"MessageSid": "SM" + "0" * 32})
        assert response.status_code == 403  # refused for its signature, not for a bearer token
        assert "X-Twilio-Signature" in response.json()["detail"]


def test_a_responder_may_report_only_for_themselves(gateway) -> None:
    other = "5e1d2c3b-0000-4000-8000-00000000b002"
    body = {"availability": "off"}
    response = httpx.post(f"{gateway}/v1/responders/{other}/availability", json=body, headers=bearer(TOKENS[R]))
    assert response.status_code == 403 and "themselves" in response.json()["detail"]


# -- the credential store itself ------------------------------------------------------------------------


def test_the_store_knows_issued_tokens_only_and_keeps_only_their_hashes(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    token = issue_credential(path, "someone", AccessRole.RESPONDER, RESPONDER_ID)
    store = CredentialStore.from_file(path)
    assert store.verify_token(token) == Principal("someone", AccessRole.RESPONDER, RESPONDER_ID)
    assert store.verify_token(token + "x") is None and store.verify_token("") is None
    assert token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_demo_credentials_are_created_once_one_per_role(tmp_path: Path) -> None:
    path = tmp_path / "var" / "credentials.json"
    tokens = ensure_demo_credentials(path)
    assert set(tokens) == {role.value for role in AccessRole}
    store = CredentialStore.from_file(path)
    assert {store.verify_token(t).role.value for t in tokens.values()} == set(tokens)
    assert store.verify_token(tokens["responder"]).responder_id is not None
    before = path.read_text()
    assert ensure_demo_credentials(path) == {}  # existing file: nothing new, nothing overwritten
    assert path.read_text() == before and len(json.loads(before)) == 4


def test_a_missing_credentials_file_admits_nobody(tmp_path: Path) -> None:
    store = CredentialStore.from_file(tmp_path / "absent.json")
    assert len(store) == 0 and store.verify_token("anything") is None


def test_a_credential_removed_from_the_file_is_refused_at_once_and_a_new_one_admitted(nats_server, tmp_path) -> None:
    path = tmp_path / "credentials.json"
    kept = issue_credential(path, "intake-line", AccessRole.INTAKE)
    revoked = issue_credential(path, "old-intake-line", AccessRole.INTAKE)
    with serving(build(GatewaySettings(nats_url=nats_server.url, credentials_file=path))) as url:

        def status_for(token: str) -> int:  # an empty report: 422 once the caller is known, 401 before
            return httpx.post(f"{url}/v1/incidents", json={}, headers=bearer(token)).status_code

        assert (status_for(kept), status_for(revoked)) == (422, 422)
        entries = json.loads(path.read_text())
        path.write_text(json.dumps([e for e in entries if e["subject"] != "old-intake-line"]))  # edited in place
        assert (status_for(kept), status_for(revoked)) == (422, 401)
        added = issue_credential(path, "new-intake-line", AccessRole.INTAKE)  # written atomically, a new file
        assert (status_for(added), status_for(revoked)) == (422, 401)
