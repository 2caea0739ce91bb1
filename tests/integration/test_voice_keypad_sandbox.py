"""The SMS sandbox answers a recorded call that listens for a key (<Gather>) the way Twilio does: the key is posted,
signed for the exact action URL, with Twilio's Gather parameters; the call records the key and what the answer
said; the inbox shows a keypad for calls awaiting a key (CSRF-protected) and the key pressed after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from uuid import uuid4

import pytest
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from services.notifier.adapters.twilio_voice import TwilioVoiceCaller
from services.notifier.domain.voice_keypad import Keypad
from tests.integration.test_sms_sandbox import AUTH_TOKEN, ORG_NUMBER, RunningSandbox, fake_phone, running_sandbox
from tests.support.asgi_server import serving

SPEECH = "This is an urgent P1 page. Y, 4, 8, 2, 1."
THANKS = '<Response><Say language="en-US">Thank you.</Say></Response>'


@dataclass
class KeypadReceiver:
    """Stands in for the gateway's keypad webhook: records each post and whether its signature holds."""

    url: str = ""
    posts: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)
    answer: str = THANKS


def keypad_app(receiver: KeypadReceiver) -> FastAPI:
    app = FastAPI()

    @app.post("/twilio/voice/keypad")
    async def keypad(request: Request) -> Response:
        params = {key: str(value) for key, value in (await request.form()).items()}
        url = str(request.url)
        valid = RequestValidator(AUTH_TOKEN).validate(url, params, request.headers.get("X-Twilio-Signature", ""))
        receiver.posts.append((url, params, valid))
        return Response(receiver.answer, media_type="application/xml")

    return app


@pytest.fixture
def receiver() -> Iterator[KeypadReceiver]:
    receiver = KeypadReceiver()
    with serving(keypad_app(receiver)) as base_url:
        receiver.url = f"{base_url}/twilio/voice/keypad"
        yield receiver


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path, "http://127.0.0.1:9/twilio/sms") as running:
        yield running


def page_call(sandbox: RunningSandbox, keypad_url: str | None, phone: str | None = None) -> tuple[str, str]:
    """A page call placed through the notifier's caller, as the notifier places it: (call sid, phone)."""
    phone = phone or fake_phone()
    caller = TwilioVoiceCaller(sandbox.twilio, from_number=ORG_NUMBER, keypad_url=keypad_url)
    placed = caller.call(phone, SPEECH, "en", keypad=Keypad("page", "4821", uuid4(), "en"))
    return placed.call_sid, phone


def calls(sandbox: RunningSandbox, phone: str) -> list[dict]:
    return sandbox.http.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"]


def press(sandbox: RunningSandbox, sid: str, digits: str):
    return sandbox.http.post(f"/sandbox/api/calls/{sid}/digits", json={"digits": digits})


def test_a_key_on_a_gathering_call_is_posted_signed_to_its_action_url_like_twilio(sandbox, receiver) -> None:
    sid, phone = page_call(sandbox, receiver.url)
    [call] = calls(sandbox, phone)
    assert (call["awaiting_digits"], call["digits"]) == (True, None)
    answered = press(sandbox, sid, "1")
    assert answered.status_code == 200
    assert answered.json() == {"sid": sid, "digits": "1", "webhook_status": 200, "keypad_answer": "Thank you."}
    [(url, params, valid)] = receiver.posts
    assert valid  # signed for the action URL with its query string (the prompt, code and notification)
    assert url.startswith(receiver.url + "?prompt=page&notification_id=") and "code=4821" in url
    assert (params["CallSid"], params["Digits"], params["To"], params["Called"]) == (sid, "1", phone, phone)
    assert (params["From"], params["Direction"], params["CallStatus"]) == (ORG_NUMBER, "outbound-api", "in-progress")
    [call] = calls(sandbox, phone)
    assert (call["awaiting_digits"], call["digits"], call["keypad_answer"]) == (False, "1", "Thank you.")


def test_a_call_is_answered_once(sandbox, receiver) -> None:
    sid, _ = page_call(sandbox, receiver.url)
    assert press(sandbox, sid, "2").status_code == 200
    again = press(sandbox, sid, "1")
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert "already pressed" in again.json()["detail"] and len(receiver.posts) == 1


def test_a_key_whose_webhook_failed_is_recorded_and_may_be_pressed_again(sandbox, receiver) -> None:
    sid, phone = page_call(sandbox, "http://127.0.0.1:9/twilio/voice/keypad")  # nothing listens there
    failed = press(sandbox, sid, "1").json()
    assert failed["digits"] == "1" and isinstance(failed["webhook_status"], str) and failed["keypad_answer"] is None
    assert calls(sandbox, phone)[0]["awaiting_digits"] is True
    assert press(sandbox, sid, "1").status_code == 200  # still waiting: pressed again


def test_keys_on_a_call_that_does_not_listen_unknown_calls_and_bad_keys_are_problems(sandbox, receiver) -> None:
    speaking, phone = page_call(sandbox, None)  # no keypad URL: the call only speaks
    assert calls(sandbox, phone)[0]["awaiting_digits"] is False
    assert press(sandbox, speaking, "1").status_code == 409
    assert press(sandbox, "CA" + "0" * 32, "1").status_code == 404
    gathering, _ = page_call(sandbox, receiver.url)
    for bad in ("12", "a", "", "1234567"):  # numDigits is 1
        response = press(sandbox, gathering, bad)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert receiver.posts == []


def test_the_inbox_shows_a_keypad_for_a_call_awaiting_a_key_and_the_key_pressed_after(sandbox, receiver) -> None:
    sid, phone = page_call(sandbox, receiver.url)
    page = sandbox.http.get("/", params={"phone": phone}).text
    assert f'action="/inbox/calls/{sid}/digits"' in page and "Waiting for a key" in page
    assert re.findall(r'name="digits" value="([^"]+)"', page) == list("123456789*0#")
    refused = sandbox.http.post(f"/inbox/calls/{sid}/digits", data={"digits": "1"})  # no CSRF token
    assert refused.status_code == 403 and receiver.posts == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    pressed = sandbox.http.post(f"/inbox/calls/{sid}/digits", data={"digits": "1", "csrf_token": token})
    assert pressed.status_code == 303 and pressed.headers["location"] == f"/?phone={quote(phone)}#{sid}"
    assert len(receiver.posts) == 1 and receiver.posts[0][2]
    after = sandbox.http.get("/", params={"phone": phone}).text
    assert "Waiting for a key" not in after
    assert "pressed 1 · webhook 200 · the call said: “Thank you.”" in after
