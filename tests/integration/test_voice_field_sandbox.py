"""A phone in the SMS sandbox calls us: the voice webhook is posted signed like Twilio's incoming call, the call is
recorded with what the answer said and waits for as many keys as its Gather takes; the inbox's "Call dispatch"
(CSRF-protected) places such a call and shows a field for its keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from tests.integration.test_sms_sandbox import AUTH_TOKEN, ORG_NUMBER, RunningSandbox, fake_phone, running_sandbox
from tests.support.asgi_server import serving


@pytest.fixture
def voice(tmp_path: Path) -> Iterator[tuple[RunningSandbox, list]]:
    posts: list[tuple[str, dict[str, str], bool]] = []
    app = FastAPI()

    @app.post("/twilio/voice/{kind}")
    async def webhook(kind: str, request: Request) -> Response:
        params = {key: str(value) for key, value in (await request.form()).items()}
        url = str(request.url)
        posts.append(
            (
                url,
                params,
                RequestValidator(AUTH_TOKEN).validate(url, params, request.headers.get("X-Twilio-Signature", "")),
            )
        )
        if kind == "incoming":
            action = str(request.base_url).rstrip("/") + "/twilio/voice/keypad?prompt=field"
            twiml = f'<Response><Gather numDigits="5" action="{action}"><Say>Enter your code.</Say></Gather></Response>'
        else:
            twiml = "<Response><Say>Thank you.</Say></Response>"
        return Response(twiml, media_type="application/xml")

    with serving(app) as base_url, running_sandbox(tmp_path, f"{base_url}/twilio/sms") as sandbox:
        yield sandbox, posts


def test_a_phone_calls_us_signed_and_the_call_waits_for_five_keys(voice) -> None:
    sandbox, posts = voice
    phone = fake_phone()
    response = sandbox.http.post("/sandbox/api/calls/inbound", json={"from": phone})
    assert response.status_code == 201
    call = response.json()
    assert (call["direction"], call["from"], call["to"], call["awaiting_digits"]) == (
        "inbound",
        phone,
        ORG_NUMBER,
        True,
    )
    assert call["body"] == "Enter your code."
    [(url, params, valid)] = posts
    assert valid and url.endswith("/twilio/voice/incoming")
    assert (params["From"], params["To"], params["Direction"], params["CallSid"]) == (
        phone,
        ORG_NUMBER,
        "inbound",
        call["sid"],
    )
    assert sandbox.http.post(f"/sandbox/api/calls/{call['sid']}/digits", json={"digits": "482111"}).status_code == 422
    pressed = sandbox.http.post(f"/sandbox/api/calls/{call['sid']}/digits", json={"digits": "48211"})
    assert pressed.status_code == 200 and pressed.json()["keypad_answer"] == "Thank you."
    (url, params, valid) = posts[1]
    assert valid and url.endswith("/twilio/voice/keypad?prompt=field")
    assert (params["Digits"], params["From"], params["Direction"]) == ("48211", phone, "inbound")


def test_the_inbox_calls_dispatch_from_a_phone_and_shows_a_field_for_the_keys(voice) -> None:
    sandbox, posts = voice
    phone = fake_phone()
    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "HELP"})
    page = sandbox.http.get("/", params={"phone": phone}).text
    assert "Call dispatch" in page
    assert sandbox.http.post(f"/inbox/{phone}/call", data={}).status_code == 403  # no CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    called = sandbox.http.post(f"/inbox/{phone}/call", data={"csrf_token": token})
    assert called.status_code == 303
    page = sandbox.http.get("/", params={"phone": phone}).text
    assert "Waiting for up to 5 keys" in page and 'maxlength="5"' in page
