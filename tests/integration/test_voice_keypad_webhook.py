"""The voice keypad webhook over real HTTP and a real nats-server: a key pressed on a page or check-in call is one
`call.keypad_pressed` event, answered with spoken TwiML; unsigned or tampered requests record nothing; a retry or a
replay records nothing twice; bad fields are 422 problem+json."""

# ruff: noqa: F811 - the fixtures (gateway, stream) are imported from tests/integration/test_twilio_webhooks.py

from __future__ import annotations

from urllib.parse import urlencode
from uuid import uuid4

import httpx
import pytest
from twilio.request_validator import RequestValidator

from services.contract.events import Envelope, derived_id
from tests.factories import fake_phone

# the gateway (module-scoped) and a reader of the stream, with the tokens and public URL they are set up with
from tests.integration.test_twilio_webhooks import PRIMARY, PUBLIC, SECONDARY, gateway, stream  # noqa: F401

PATH = "/twilio/voice/keypad"


def new_call_sid() -> str:
    return f"CA{uuid4().hex}"


def action(**query: str) -> str:
    """The action URL path a call carried (``notifier/domain/voice_keypad.py``)."""
    return f"{PATH}?{urlencode(query)}" if query else PATH


def gathered(digits: str, call_sid: str | None = None, phone: str | None = None) -> dict[str, str]:
    """What Twilio posts when a <Gather> got ``digits`` on an outbound call to ``phone``."""
    phone = phone or fake_phone()
    return {
        "CallSid": call_sid or new_call_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": "+15005550006",
        "To": phone,
        "Called": phone,
        "Direction": "outbound-api",
        "CallStatus": "in-progress",
        "Digits": digits,
        "FinishedOnKey": "",
        "ApiVersion": "2010-04-01",
    }


def post(gateway: str, path: str, params: dict[str, str], *, token: str = PRIMARY) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return httpx.post(gateway + path, data=params, headers={"X-Twilio-Signature": signature})


async def pressed_since(stream, position: int, call_sid: str) -> list[Envelope]:
    events = await stream.since(position, None)  # a key press has no message SID: filter by call instead
    return [e for e in events if e.type == "call.keypad_pressed" and e.data.call_sid == call_sid]


async def test_a_key_on_a_page_call_is_recorded_once_with_what_the_call_carried_and_thanked(
    gateway,
    stream,
) -> None:
    notification_id = uuid4()
    path = action(prompt="page", code="4821", notification_id=str(notification_id), lang="en")
    params = gathered("1")
    before = await stream.position()
    for _ in range(2):  # a retry (or a replay much later) is answered the same and records nothing
        response = post(gateway, path, params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
        assert '<Say language="en-US">Thank you. A text message confirms it.</Say>' in response.text
    (event,) = await pressed_since(stream, before, params["CallSid"])
    assert event.id == derived_id("call.keypad_pressed", params["CallSid"], "1")
    assert event.producer == "intake_gateway"
    data = event.data
    assert (data.phone, data.digits, data.prompt, data.code) == (params["To"], "1", "page", "4821")
    assert data.notification_id == notification_id and data.message_sid is None


async def test_the_same_call_may_record_another_key_and_a_check_in_key_is_thanked_in_spanish(
    gateway,
    stream,
) -> None:
    call_sid, phone = new_call_sid(), fake_phone()
    path = action(prompt="check_in", code="7047", lang="es")
    before = await stream.position()
    for digits in ("2", "1", "1"):
        response = post(gateway, path, gathered(digits, call_sid, phone))
        assert response.status_code == 200
        assert '<Say language="es-MX">Gracias. Un mensaje de texto lo confirma.</Say>' in response.text
    events = await pressed_since(stream, before, call_sid)
    assert [(e.data.digits, e.data.prompt, e.data.phone) for e in events] == [
        ("2", "check_in", phone),
        ("1", "check_in", phone),
    ]


@pytest.mark.parametrize(
    ("query", "digits"),
    [
        ({"prompt": "page", "code": "4821"}, "9"),  # no such key on a page call
        ({"prompt": "page", "code": "4821"}, "*"),
        ({"prompt": "check_in"}, "#"),
        ({}, "1"),  # a call that carried no prompt: the key means nothing
    ],
)
async def test_a_key_that_means_nothing_for_the_call_is_recorded_and_answered_not_understood(
    gateway,
    stream,
    query: dict[str, str],
    digits: str,
) -> None:
    params = gathered(digits)
    before = await stream.position()
    response = post(gateway, action(**query), params)
    assert response.status_code == 200
    assert "Not understood. Please reply to our text message instead." in response.text
    assert "Thank you" not in response.text
    (event,) = await pressed_since(stream, before, params["CallSid"])
    assert (event.data.digits, event.data.prompt) == (digits, query.get("prompt"))


@pytest.mark.parametrize(
    "tamper", ["missing", "wrong signature", "unknown token", "changed code in the URL", "changed digits", "no query"]
)
async def test_a_key_press_not_signed_for_exactly_this_url_and_these_parameters_is_403(
    gateway,
    stream,
    tamper: str,
) -> None:
    path = action(prompt="page", code="4821")
    params = gathered("1")
    validator = RequestValidator(PRIMARY)
    signature = {
        "missing": None,
        "wrong signature": "c2lnbmF0dXJl",
        "unknown token": RequestValidator("some-other-token").compute_signature(PUBLIC + path, params),
        # the code is the page's: one signed for another page cannot be moved to this one
        "changed code in the URL": validator.compute_signature(PUBLIC + action(prompt="page", code="1111"), params),
        "changed digits": validator.compute_signature(PUBLIC + path, {**params, "Digits": "2"}),
        "no query": validator.compute_signature(PUBLIC + PATH, params),
    }[tamper]
    before = await stream.position()
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    response = httpx.post(gateway + path, data=params, headers=headers)
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert await stream.position() == before


async def test_during_a_token_rotation_a_key_signed_with_the_secondary_token_is_recorded(
    gateway,
    stream,
) -> None:
    params = gathered("2")
    before = await stream.position()
    assert post(gateway, action(prompt="page", code="4821"), params, token=SECONDARY).status_code == 200
    assert len(await pressed_since(stream, before, params["CallSid"])) == 1


@pytest.mark.parametrize(
    ("path", "change", "field"),
    [
        (action(prompt="page"), {"CallSid": "SM" + "0" * 32}, "CallSid"),
        (action(prompt="page"), {"Digits": "12345"}, "Digits"),
        (action(prompt="page"), {"Digits": "1a"}, "Digits"),
        (action(prompt="page"), {"To": "client:alice", "Called": "client:alice"}, "To"),
        (action(prompt="page", code="48"), {}, "code"),
        (action(prompt="transfer"), {}, "prompt"),
        (action(prompt="page", notification_id="not-a-uuid"), {}, "notification_id"),
        (action(prompt="page", lang="fr"), {}, "lang"),
    ],
)
async def test_bad_fields_are_422_problems_naming_the_field_and_record_nothing(
    gateway,
    stream,
    path: str,
    change: dict[str, str],
    field: str,
) -> None:
    params = {**gathered("1"), **change}
    before = await stream.position()
    response = post(gateway, path, params)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    assert await stream.position() == before


async def test_a_missing_digits_field_is_a_422_and_records_nothing(gateway, stream) -> None:
    params = gathered("1")
    del params["Digits"]
    before = await stream.position()
    assert post(gateway, action(prompt="page"), params).status_code == 422
    assert await stream.position() == before
