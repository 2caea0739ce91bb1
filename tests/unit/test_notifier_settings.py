"""Twilio configuration: which provider is used, which credentials, and what each provider error means."""

from __future__ import annotations

import pytest
import requests
from pydantic import ValidationError
from twilio.base.exceptions import TwilioRestException

from services.notifier.adapters.twilio_client import provider_error, twilio_client
from services.notifier.adapters.twilio_voice import page_twiml
from services.notifier.messaging_provider import PermanentSmsError, TransientSmsError
from services.notifier.settings import NotifierSettings

REAL_SID = "AC" + "7f" * 16


@pytest.fixture(autouse=True)
def no_crisis_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRISIS_SMS_PROVIDER", "CRISIS_TWILIO_ACCOUNT_SID", "CRISIS_TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("values", "provider"),
    [
        ({}, "sandbox"),  # no credentials: everything goes to the sandbox
        ({"twilio_account_sid": REAL_SID}, "sandbox"),  # an SID without a secret is not a credential
        ({"twilio_account_sid": REAL_SID, "twilio_auth_token": "real-token"}, "twilio"),
        (
            {"twilio_account_sid": REAL_SID, "twilio_api_key_sid": "SK" + "1" * 32, "twilio_api_key_secret": "s"},
            "twilio",
        ),
        ({"twilio_account_sid": REAL_SID, "twilio_auth_token": "real-token", "sms_provider": "sandbox"}, "sandbox"),
        ({"sms_provider": "twilio"}, "twilio"),
    ],
)
def test_twilio_is_used_only_with_real_credentials_or_when_asked(values: dict, provider: str) -> None:
    assert NotifierSettings(**values).provider == provider


@pytest.mark.parametrize(
    "values",
    [
        {"twilio_api_key_sid": "SK" + "1" * 32},  # a key without its secret
        {"twilio_from_number": "", "twilio_messaging_service_sid": ""},  # nothing to send from
        {"sms_retry_base_delay_seconds": 10, "sms_retry_max_delay_seconds": 5},
        {"sms_rate_per_second": 0},
    ],
)
def test_inconsistent_settings_are_refused_at_start(values: dict) -> None:
    with pytest.raises(ValidationError):
        NotifierSettings(**values)


def test_the_voice_number_defaults_to_the_sms_number() -> None:
    assert NotifierSettings(twilio_from_number="+15005550006").voice_from_number == "+15005550006"
    assert NotifierSettings(twilio_voice_from_number="+15005550010").voice_from_number == "+15005550010"


def test_an_api_key_authenticates_instead_of_the_token() -> None:
    client = twilio_client(REAL_SID, auth_token="token", api_key_sid="SK" + "2" * 32, api_key_secret="secret")
    assert (client.username, client.password, client.account_sid) == ("SK" + "2" * 32, "secret", REAL_SID)
    with pytest.raises(ValueError):
        twilio_client(REAL_SID, auth_token="")


def rest_error(status: int, code: int) -> TwilioRestException:
    return TwilioRestException(status, "https://api.twilio.com/x", msg="refused", code=code)


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (rest_error(429, 20429), TransientSmsError, 20429),
        (rest_error(500, 20500), TransientSmsError, 20500),
        (rest_error(503, 20503), TransientSmsError, 20503),
        (rest_error(401, 20003), TransientSmsError, 20003),  # our credentials, not the recipient
        (rest_error(400, 21211), PermanentSmsError, 21211),
        (rest_error(400, 21610), PermanentSmsError, 21610),
        (rest_error(400, 21614), PermanentSmsError, 21614),
        (requests.exceptions.ReadTimeout("timed out"), TransientSmsError, None),
        (requests.exceptions.ConnectionError("refused"), TransientSmsError, None),
    ],
)
def test_provider_errors_are_classified_for_retry(error: Exception, kind: type, code: int | None) -> None:
    classified = provider_error(error)
    assert isinstance(classified, kind) and classified.code == code


def test_the_voice_twiml_says_the_page_twice_in_the_right_language() -> None:
    twiml = page_twiml("Y, 4, 8, 2, 1", "es")
    assert twiml.count('<Say language="es-MX">Y, 4, 8, 2, 1</Say>') == 2 and "<Pause" in twiml
