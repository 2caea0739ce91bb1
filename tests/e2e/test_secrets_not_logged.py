"""No secret reaches a log: the stack runs as `make run` runs it, with known secrets in its environment, takes a
report, pages, gets a reply and refuses a bad sign-in; then every log file and the launcher's own output are
searched for the secrets, the bearer tokens, the embedded nats-server's password and the responder's phone
number. The only exception is the banner's one-time list of the demo tokens, which is the point of that banner."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_walking_skeleton import CLINICIAN, Ports, free_port, start_stack, stop_stack

pytestmark = pytest.mark.e2e

SECRETS = {
    "CRISIS_CIPHER_KEY": "c2VjcmV0LWNpcGhlci1rZXktZm9yLWxvZy10ZXN0cyE=",  # 32 bytes
    "CRISIS_TWILIO_AUTH_TOKEN": "twilio-auth-token-that-must-not-be-logged",
    "CRISIS_SESSION_SECRET": "workspace-session-secret-that-must-not-be-logged",
}
BAD_TOKEN = "not-a-real-token-but-still-a-bearer-secret-0123456789"
TOKEN_LINE = re.compile(r"^  (intake|responder|director|admin) +(\S+)$")
# the banner prints, once, the demo tokens (and an export line with one) and the demo roster's phones to reply from
BANNER_LINE = re.compile(r"^  (export CRISIS_TOKEN=\S+|\+1555010000\d .*)$")


async def test_no_secret_token_or_phone_number_reaches_a_log(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    stack = start_stack(var_dir, ports, SECRETS)
    output = stack.output
    try:
        tokens = {m[1]: m[2] for line in output if (m := TOKEN_LINE.match(line.rstrip("\n")))}
        assert sum(bool(BANNER_LINE.match(line.rstrip("\n"))) for line in output) == 3
        assert set(tokens) == {"intake", "responder", "director", "admin"}
        gateway, projections, sandbox = stack.gateway, stack.projections, stack.sandbox
        async with httpx.AsyncClient(timeout=30) as client:
            report = {
                "kind": "overdose",
                "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
                "reporter": {"channel": "hotline", "relation": "friend", "callback": "+15550188123"},
                "details": {"responsive": False, "breathing": True, "ems_called": False},
            }
            accepted = await client.post(
                f"{gateway}/v1/incidents", json=report, headers={"Authorization": f"Bearer {tokens['intake']}"}
            )
            assert accepted.status_code == 201, accepted.text
            code = accepted.json()["short_code"]
            page = await client.get(
                f"{sandbox}/sandbox/api/wait", params={"phone": CLINICIAN, "count": 1, "timeout": 30}
            )
            assert not page.json()["timed_out"]
            reply = await client.post(f"{sandbox}/sandbox/api/inbound", json={"from": CLINICIAN, "body": f"Y {code}"})
            assert reply.status_code == 201 and reply.json()["webhook_status"] == 200  # signed with the auth token
            confirmed = await client.get(
                f"{sandbox}/sandbox/api/wait", params={"phone": CLINICIAN, "count": 3, "timeout": 30}
            )
            assert any(m["body"].startswith(f"Accepted {code}") for m in confirmed.json()["messages"])
            # failed logins: a bad bearer token on both APIs, and a bad token in the workspace's sign-in form
            bad = {"Authorization": f"Bearer {BAD_TOKEN}"}
            assert (await client.post(f"{gateway}/v1/incidents", json=report, headers=bad)).status_code == 401
            assert (await client.get(f"{projections}/v1/incidents", headers=bad)).status_code == 401
            form = await client.get(f"{projections}/workspace/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
            refused = await client.post(
                f"{projections}/workspace/sign-in",
                data={"username": "demo-director", "token": BAD_TOKEN, "csrf_token": csrf},
            )
            assert refused.status_code == 303 and "not+recognised" in refused.headers["location"]
            director = {"Authorization": f"Bearer {tokens['director']}"}
            assert (await client.get(f"{projections}/v1/incidents", headers=director)).status_code == 200
    finally:
        stop_stack(stack)
    launcher_lines = [line for line in output if not (TOKEN_LINE.match(line) or BANNER_LINE.match(line.rstrip("\n")))]
    logs = {p.name: p.read_text(errors="replace") for p in (var_dir / "logs").rglob("*") if p.is_file()}
    assert {"intake-gateway.log", "projections.log", "notifier.log", "dispatcher.log"} <= set(logs), sorted(logs)
    texts = {"launcher output": "".join(launcher_lines), **logs}
    forbidden = {
        **SECRETS,
        "embedded nats-server password": (var_dir / "nats.password").read_text().strip(),
        **{f"{role} token": token for role, token in tokens.items()},
        "bad bearer token": BAD_TOKEN,
        "responder phone": CLINICIAN,
        "responder phone (digits)": CLINICIAN.lstrip("+"),
        "reporter callback": "5550188123",
    }
    leaks = [
        f"{what} in {where}" for where, text in texts.items() for what, value in forbidden.items() if value in text
    ]
    assert not leaks, leaks
    assert sum(len(t) for t in logs.values()) > 1000  # the services did log: the search had something to search
