"""A responder calls the organisation's number: `/twilio/voice/incoming` answers (signed only) with a <Gather> of
5 keys (the incident code, then 1 on scene / 2 I am safe / 3 leaving the scene / 4 done) spoken in English then
Spanish, posting to `/twilio/voice/keypad?prompt=field`; there a code and a command are one `call.keypad_pressed`
from the caller's phone (a retry records nothing twice), anything else is "Not understood", asked again, and not
recorded. Real HTTP and a real nats-server."""

# ruff: noqa: F811 - the fixtures (gateway, stream) are imported from tests/integration/test_twilio_webhooks.py

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from uuid import uuid4

import httpx
import pytest
from twilio.request_validator import RequestValidator

from services.contract.events import KEYPAD_COMMANDS, derived_id
from services.intake_gateway.voice_keypad import FIELD_CALL_SPEECH
from tests.factories import fake_phone
from tests.integration.test_twilio_webhooks import ORG, PRIMARY, PUBLIC, gateway, stream  # noqa: F401
from tests.integration.test_voice_keypad_webhook import post, pressed_since

INCOMING = "/twilio/voice/incoming"
FIELD_ACTION = "/twilio/voice/keypad?prompt=field"


def call_in(phone: str, call_sid: str | None = None) -> dict[str, str]:
    """What Twilio posts when ``phone`` calls the organisation's number."""
    return {
        "CallSid": call_sid or f"CA{uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": phone,
        "Caller": phone,
        "To": ORG,
        "Called": ORG,
        "Direction": "inbound",
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
    }


def keys_in(phone: str, digits: str, call_sid: str | None = None) -> dict[str, str]:
    """What Twilio posts to the Gather's action once the caller pressed ``digits``."""
    return {**call_in(phone, call_sid), "CallStatus": "in-progress", "Digits": digits, "FinishedOnKey": ""}


def test_a_call_in_is_answered_with_a_five_key_gather_for_the_code_and_a_command_in_english_then_spanish(
    gateway,
) -> None:
    for _ in range(2):  # it records nothing: a retry is answered the same
        response = post(gateway, INCOMING, call_in(fake_phone()))
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
        root = ElementTree.fromstring(response.text)
        [gather] = root.findall("Gather")
        assert gather.get("numDigits") == "5" and gather.get("method") == "POST"
        assert gather.get("action") == PUBLIC + FIELD_ACTION  # absolute: Twilio signs the URL it posts to
        says = [(say.get("language"), say.text) for say in gather.findall("Say")]
        assert says == [
            ("en-US", "Enter your incident code, then 1 on scene, 2 I am safe, 3 leaving the scene, 4 done."),
            ("es-MX", FIELD_CALL_SPEECH["prompt"]["es"]),
        ]
        # after the gather (no keys): goodbye, in both languages
        assert [say.text for say in root.findall("Say")] == list(FIELD_CALL_SPEECH["no_keys"].values())


def test_the_prompt_names_exactly_the_field_keys_in_both_languages() -> None:
    for text in FIELD_CALL_SPEECH["prompt"].values():
        assert {c for c in text if c.isdigit()} == set(KEYPAD_COMMANDS["field"])


@pytest.mark.parametrize("caller", ["anonymous", "+266696687x", ""])
def test_a_caller_whose_number_is_withheld_is_asked_to_text_and_no_keys_are_gathered(gateway, caller: str) -> None:
    response = post(gateway, INCOMING, call_in(caller))
    assert response.status_code == 200
    root = ElementTree.fromstring(response.text)
    assert root.findall("Gather") == [] and root.findall("Hangup")
    assert [say.text for say in root.findall("Say")] == list(FIELD_CALL_SPEECH["no_caller"].values())


@pytest.mark.parametrize("tamper", ["missing", "wrong signature", "unknown token", "changed caller", "wrong url"])
async def test_a_call_in_not_signed_for_exactly_this_url_and_these_parameters_is_403(
    gateway,
    stream,
    tamper: str,
) -> None:
    params = call_in(fake_phone())
    validator = RequestValidator(PRIMARY)
    signature = {
        "missing": None,
        "wrong signature": "c2lnbmF0dXJl",
        "unknown token": RequestValidator("some-other-token").compute_signature(PUBLIC + INCOMING, params),
        "changed caller": validator.compute_signature(PUBLIC + INCOMING, {**params, "From": fake_phone()}),
        "wrong url": validator.compute_signature(PUBLIC + "/twilio/sms", params),
    }[tamper]
    before = await stream.position()
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    response = httpx.post(gateway + INCOMING, data=params, headers=headers)
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert "<Gather" not in response.text
    assert await stream.position() == before


async def test_a_bad_call_sid_is_a_422_problem(gateway) -> None:
    response = post(gateway, INCOMING, {**call_in(fake_phone()), "CallSid": "SM" + "0" * 32})
    assert response.status_code == 422 and "CallSid" in response.json()["detail"]


@pytest.mark.parametrize(("digits", "command"), [("48211", "arrived"), ("48212", "ok"), ("70473", "clear")])
async def test_a_code_and_a_command_key_are_recorded_once_from_the_caller_and_thanked(
    gateway,
    stream,
    digits: str,
    command: str,
) -> None:
    phone = fake_phone()
    params = keys_in(phone, digits)
    before = await stream.position()
    for _ in range(2):  # a retry (or a replay) is answered the same and records nothing
        response = post(gateway, FIELD_ACTION, params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
        root = ElementTree.fromstring(response.text)
        assert [(say.get("language"), say.text) for say in root.findall("Say")] == [
            ("en-US", "Thank you. A text message confirms it."),
            ("es-MX", "Gracias. Un mensaje de texto lo confirma."),
        ]
        assert root.findall("Gather") == []
    (event,) = await pressed_since(stream, before, params["CallSid"])
    assert event.id == derived_id("call.keypad_pressed", params["CallSid"], digits)
    data = event.data
    # the caller pressed them (From, not our number in To), and the code is the first four keys
    assert (data.phone, data.digits, data.prompt, data.code) == (phone, digits, "field", digits[:4])
    assert KEYPAD_COMMANDS["field"][digits[4]] == command


@pytest.mark.parametrize(
    "digits",
    [
        "48215",  # no such command key
        "48210",
        "4821",  # the code without a key (the caller waited)
        "1",
        "48*21",  # not a code
        "#4821",
        "4821#",
    ],
)
async def test_keys_that_are_no_code_and_command_are_not_understood_asked_again_and_not_recorded(
    gateway,
    stream,
    digits: str,
) -> None:
    params = keys_in(fake_phone(), digits)
    before = await stream.position()
    response = post(gateway, FIELD_ACTION, params)
    assert response.status_code == 200
    root = ElementTree.fromstring(response.text)
    assert "Thank you" not in response.text
    [gather] = root.findall("Gather")  # asked again, on the same call
    assert (gather.get("numDigits"), gather.get("action")) == ("5", PUBLIC + FIELD_ACTION)
    said = [say.text for say in gather.findall("Say")]
    assert said[:2] == list(FIELD_CALL_SPEECH["not_understood"].values())
    assert said[0].startswith("Not understood.")
    assert await stream.position() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [({"From": "anonymous"}, "From"), ({"Digits": "482111"}, "Digits"), ({"Digits": "4a211"}, "Digits")],
)
async def test_bad_fields_of_a_call_in_are_422_problems_and_record_nothing(
    gateway,
    stream,
    change: dict[str, str],
    field: str,
) -> None:
    params = {**keys_in(fake_phone(), "48211"), **change}
    before = await stream.position()
    response = post(gateway, FIELD_ACTION, params)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    assert await stream.position() == before


async def test_five_keys_on_a_page_call_are_still_a_422(gateway, stream) -> None:
    params = {**keys_in(fake_phone(), "48211"), "Direction": "outbound-api"}
    before = await stream.position()
    response = post(gateway, "/twilio/voice/keypad?prompt=page&code=4821", params)
    assert response.status_code == 422 and "Digits" in response.json()["detail"]
    assert await stream.position() == before
