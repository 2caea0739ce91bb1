"""The gateway never accepts the SMS sandbox's built-in (public) Twilio token while the real Twilio is in use:
it refuses to start, saying why, and without echoing any setting's value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.intake_gateway.settings import GatewaySettings
from services.runtime.settings import SANDBOX_AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[2]
REAL_SID = "AC" + "7f" * 16
REAL_TOKEN = "generated-real-auth-token-" + "9" * 8


@pytest.fixture(autouse=True)
def no_crisis_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CRISIS_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "values",
    [
        {"sms_provider": "twilio"},
        {"twilio_account_sid": REAL_SID},
        {"twilio_account_sid": REAL_SID, "twilio_auth_token": SANDBOX_AUTH_TOKEN},
        {"sms_provider": "twilio", "twilio_auth_token": REAL_TOKEN, "twilio_auth_token_secondary": SANDBOX_AUTH_TOKEN},
    ],
)
def test_the_sandbox_token_is_refused_with_the_real_twilio(values: dict) -> None:
    with pytest.raises(ValidationError) as refused:
        GatewaySettings(**values)
    message = str(refused.value)
    assert "refusing to start" in message and "sandbox's built-in token" in message
    assert SANDBOX_AUTH_TOKEN not in message and REAL_SID not in message  # names settings, never values


@pytest.mark.parametrize(
    "values",
    [
        {},  # make run: the sandbox, with its own token
        {"twilio_auth_token": REAL_TOKEN},
        {"sms_provider": "twilio", "twilio_auth_token": REAL_TOKEN},
        {"twilio_account_sid": REAL_SID, "twilio_auth_token": REAL_TOKEN},
        {"twilio_account_sid": REAL_SID, "sms_provider": "sandbox"},  # the sandbox, asked for by name
    ],
)
def test_the_sandbox_token_is_accepted_in_the_sandbox_and_a_real_token_everywhere(values: dict) -> None:
    GatewaySettings(**values)


def test_the_gateway_process_refuses_to_start_and_logs_why_as_json(tmp_path: Path) -> None:
    cipher_key = "Z2VuZXJhdGVkLWNpcGhlci1rZXktZm9yLXRoaXMtdGVzdA=="
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")} | {
        "CRISIS_SMS_PROVIDER": "twilio",
        "CRISIS_TWILIO_ACCOUNT_SID": REAL_SID,
        "CRISIS_CIPHER_KEY": cipher_key,
        "CRISIS_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.intake_gateway"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    [line] = [json.loads(text) for text in output.splitlines()]
    assert line["level"] == "CRITICAL" and "refusing to start" in line["exception"], output
    assert cipher_key not in output and SANDBOX_AUTH_TOKEN not in output
