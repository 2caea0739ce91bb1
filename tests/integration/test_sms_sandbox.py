"""The SMS sandbox behaves like Twilio for the official SDK and delivers signed inbound webhooks."""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from services.notifier.adapters.twilio_sandbox_transport import RedirectingHttpClient
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings
from tests.support.asgi_server import serving

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "integration-test-token"
ORG_NUMBER = "+15005550006"

_phone_numbers = itertools.count(1)


def fake_phone() -> str:
    """A fresh number from the fictional 555-01xx range."""
    return f"+1555010{next(_phone_numbers):04d}"


@dataclass(frozen=True)
class ReceivedWebhook:
    url: str
    params: dict[str, str]
    signature: str
    valid: bool
    valid_with_wrong_token: bool


@dataclass
class WebhookReceiver:
    """Stands in for our inbound webhook: checks the signature the way the notifier will."""

    url: str = ""
    received: list[ReceivedWebhook] = field(default_factory=list)
    twiml_answer: str = "<Response/>"
    statuses: list[ReceivedWebhook] = field(default_factory=list)
    failing_status_answers: int = 0  # answer this many status callbacks with 500 first

    @property
    def status_url(self) -> str:
        return self.url.replace("/twilio/sms", "/twilio/status")


def webhook_receiver_app(receiver: WebhookReceiver) -> FastAPI:
    app = FastAPI()

    @app.post("/twilio/sms")
    async def inbound(request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        url = str(request.url)
        receiver.received.append(
            ReceivedWebhook(
                url=url,
                params=params,
                signature=signature,
                valid=RequestValidator(AUTH_TOKEN).validate(url, params, signature),
                valid_with_wrong_token=RequestValidator("not-the-token").validate(url, params, signature),
            )
        )
        return Response(receiver.twiml_answer, media_type="application/xml")

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        if receiver.failing_status_answers > 0:
            receiver.failing_status_answers -= 1
            return Response(status_code=500)
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        url = str(request.url)
        receiver.statuses.append(
            ReceivedWebhook(
                url=url,
                params=params,
                signature=signature,
                valid=RequestValidator(AUTH_TOKEN).validate(url, params, signature),
                valid_with_wrong_token=RequestValidator("not-the-token").validate(url, params, signature),
            )
        )
        return Response("<Response/>", media_type="application/xml")

    return app


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    http: httpx.Client
    twilio: Client

    def messages(self, phone: str) -> list[dict]:
        response = self.http.get("/sandbox/api/messages", params={"phone": phone})
        assert response.status_code == 200
        return response.json()["messages"]


@contextlib.contextmanager
def running_sandbox(var_dir: Path, webhook_url: str, **extra: object) -> Iterator[RunningSandbox]:
    settings = SandboxSettings(
        var_dir=var_dir,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        sandbox_inbound_webhook_url=webhook_url,
        sandbox_org_number=ORG_NUMBER,
        sandbox_callback_retry_seconds=0.01,
        **extra,
    )
    with serving(build_sandbox_app(settings)) as base_url, httpx.Client(base_url=base_url) as http:
        twilio = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(base_url, timeout=10))
        yield RunningSandbox(base_url=base_url, http=http, twilio=twilio)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    with serving(webhook_receiver_app(receiver)) as base_url:
        receiver.url = f"{base_url}/twilio/sms"
        yield receiver


@pytest.fixture
def sandbox(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path, receiver.url) as running:
        yield running


def send(sandbox: RunningSandbox, to: str, body: str = "Responder en route", from_: str = ORG_NUMBER):
    return sandbox.twilio.messages.create(to=to, from_=from_, body=body)


# --- the Twilio API, through the official SDK --------------------------------------------------------


def post_form(sandbox: RunningSandbox, path: str, data: dict[str, str]) -> httpx.Response:
    """Post one of the inbox page's forms as the page does: with the CSRF token the page carries."""
    page = sandbox.http.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    return sandbox.http.post(path, data={**data, "csrf_token": token})


def test_create_returns_a_queued_message_that_the_inbox_shows(sandbox: RunningSandbox) -> None:
    phone = fake_phone()

    message = send(sandbox, phone, body="Responder en route")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (phone, ORG_NUMBER, "Responder en route")
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.date_created is not None
    assert message.error_code is None
    [stored] = sandbox.messages(phone)
    assert stored["sid"] == message.sid
    assert (stored["direction"], stored["status"], stored["body"]) == (
        "outbound",
        "delivered",
        "Responder en route",
    )


def test_fetch_by_sid_returns_the_stored_message(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    created = send(sandbox, phone)

    fetched = sandbox.twilio.messages(created.sid).fetch()

    assert (fetched.sid, fetched.to, fetched.body) == (created.sid, phone, created.body)
    assert fetched.status == "delivered"


def test_fetch_of_an_unknown_sid_is_a_twilio_404(sandbox: RunningSandbox) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sandbox.twilio.messages("SM" + "0" * 32).fetch()

    assert (caught.value.status, caught.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_to_numbers_fail_like_twilio(sandbox: RunningSandbox, to: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        send(sandbox, to)

    assert (caught.value.status, caught.value.code) == (400, code)
    assert sandbox.messages(to) == []


@pytest.mark.parametrize(("from_", "code"), [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611)])
def test_magic_from_numbers_fail_like_twilio(sandbox: RunningSandbox, from_: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        send(sandbox, fake_phone(), from_=from_)

    assert (caught.value.status, caught.value.code) == (400, code)


@pytest.mark.parametrize(
    ("to", "body", "code"),
    [("5550100", "hello", 21211), ("+1555010abcd", "hello", 21211), (None, "", 21602)],
)
def test_invalid_requests_are_rejected(sandbox: RunningSandbox, to: str | None, body: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        send(sandbox, to or fake_phone(), body=body)

    assert (caught.value.status, caught.value.code) == (400, code)


def test_a_sender_is_required(sandbox: RunningSandbox) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sandbox.twilio.messages.create(to=fake_phone(), body="hello")

    assert (caught.value.status, caught.value.code) == (400, 21603)


def test_a_messaging_service_can_stand_in_for_from(sandbox: RunningSandbox) -> None:
    service_sid = "MG" + "1" * 32

    message = sandbox.twilio.messages.create(to=fake_phone(), messaging_service_sid=service_sid, body="hi")

    assert message.messaging_service_sid == service_sid
    assert message.from_ == ORG_NUMBER


@pytest.mark.parametrize(
    ("account_sid", "token"),
    [(ACCOUNT_SID, "wrong-token"), ("AC" + "0" * 32, AUTH_TOKEN)],
    ids=["wrong token", "wrong account"],
)
def test_wrong_credentials_are_refused(sandbox: RunningSandbox, account_sid: str, token: str) -> None:
    client = Client(account_sid, token, http_client=RedirectingHttpClient(sandbox.base_url))

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=fake_phone(), from_=ORG_NUMBER, body="hello")

    assert (caught.value.status, caught.value.code) == (401, 20003)


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("ł" * 70, "1"),
        ("ł" * 71, "2"),
    ],
)
def test_segments_are_counted_like_twilio(sandbox: RunningSandbox, body: str, segments: str) -> None:
    assert send(sandbox, fake_phone(), body=body).num_segments == segments


# --- inbound SMS and the webhook ----------------------------------------------------------------------


def test_inbound_sms_reaches_the_webhook_with_a_valid_signature(
    sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    phone = fake_phone()

    response = sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "ACK 4821"})

    assert response.status_code == 201
    assert response.json()["webhook_status"] == 200
    [webhook] = receiver.received
    assert webhook.url == receiver.url
    assert webhook.valid is True
    assert webhook.valid_with_wrong_token is False
    assert webhook.params["From"] == phone
    assert webhook.params["To"] == ORG_NUMBER
    assert webhook.params["Body"] == "ACK 4821"
    assert webhook.params["AccountSid"] == ACCOUNT_SID
    assert webhook.params["MessageSid"] == webhook.params["SmsSid"] == response.json()["sid"]
    assert (webhook.params["NumMedia"], webhook.params["NumSegments"]) == ("0", "1")
    [stored] = sandbox.messages(phone)
    assert (stored["direction"], stored["from"], stored["webhook_status"]) == ("inbound", phone, 200)


def test_a_reply_goes_to_the_number_that_texted_the_phone(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    phone, org_line = fake_phone(), fake_phone()
    send(sandbox, phone, from_=org_line)

    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "on my way"})

    assert receiver.received[0].params["To"] == org_line
    assert [m["direction"] for m in sandbox.messages(phone)] == ["outbound", "inbound"]


def test_the_reply_form_delivers_and_redirects_to_the_conversation(
    sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    phone = fake_phone()
    send(sandbox, phone)

    response = post_form(sandbox, f"/inbox/{quote(phone, safe='')}/reply", {"body": "YES"})

    assert response.status_code == 303
    [stored_outbound, stored_reply] = sandbox.messages(phone)
    assert response.headers["location"] == f"/?phone={quote(phone, safe='')}#{stored_reply['sid']}"
    assert stored_reply["body"] == "YES"
    assert receiver.received[0].params["Body"] == "YES"
    assert receiver.received[0].valid is True


def test_the_new_phone_form_starts_a_conversation(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    phone = fake_phone()

    response = post_form(sandbox, "/inbox/send", {"phone": phone, "body": "help at the library"})

    assert response.status_code == 303
    assert receiver.received[0].params["From"] == phone
    assert [p["phone"] for p in sandbox.http.get("/sandbox/api/phones").json()["phones"]] == [phone]


def test_a_cross_site_post_of_the_inbox_forms_is_refused_and_sends_nothing(
    sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    phone = fake_phone()
    send(sandbox, phone)
    reply_path = f"/inbox/{quote(phone, safe='')}/reply"
    cross_site = {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"}
    with httpx.Client(base_url=sandbox.base_url) as elsewhere:  # another site's page: no cookie, no token
        forged = [
            elsewhere.post("/inbox/send", data={"phone": phone, "body": "STOP"}, headers=cross_site),
            elsewhere.post(reply_path, data={"body": "STOP"}, headers=cross_site),
            elsewhere.post("/inbox/send", data={"phone": phone, "body": "STOP", "csrf_token": "guessed"}),
        ]
    assert [r.status_code for r in forged] == [403] * 3 and receiver.received == []
    page = sandbox.http.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    # even the page's own token is refused when the browser says another site sent the form
    forged.append(sandbox.http.post(reply_path, data={"body": "STOP", "csrf_token": token}, headers=cross_site))
    forged.append(sandbox.http.post(reply_path, data={"body": "STOP"}))  # the cookie without the form's token

    assert [r.status_code for r in forged] == [403] * 5
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in forged)
    assert receiver.received == []
    assert [m["direction"] for m in sandbox.messages(phone)] == ["outbound"]
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    same_site = sandbox.http.post(reply_path, data={"body": "Y", "csrf_token": token}, headers=same_origin)
    assert same_site.status_code == 303 and [w.params["Body"] for w in receiver.received] == ["Y"]


def test_the_page_refuses_a_malformed_phone(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    response = post_form(sandbox, "/inbox/send", {"phone": "555-0100", "body": "hi"})

    assert response.status_code == 422
    assert "E.164" in response.text
    assert receiver.received == []


def test_twiml_messages_in_the_webhook_answer_are_sent_back(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    receiver.twiml_answer = "<Response><Message>Thanks, a responder is coming.</Message></Response>"
    phone = fake_phone()

    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "help"})

    [inbound, reply] = sandbox.messages(phone)
    assert (reply["direction"], reply["from"], reply["to"]) == ("outbound", ORG_NUMBER, phone)
    assert reply["body"] == "Thanks, a responder is coming."


def test_a_webhook_that_is_down_is_recorded_not_a_500(tmp_path: Path) -> None:
    # Bound but never listening: connections are refused, and no other process can take the port.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed_port.getsockname()[1]}/twilio/sms"
        with running_sandbox(tmp_path, url) as sandbox:
            phone = fake_phone()

            api = sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "hello?"})
            page = post_form(sandbox, f"/inbox/{quote(phone, safe='')}/reply", {"body": "anyone?"})

            assert api.status_code == 201
            assert isinstance(api.json()["webhook_status"], str)
            assert "ConnectError" in api.json()["webhook_status"]
            assert page.status_code == 303
            stored = sandbox.messages(phone)
            assert [m["body"] for m in stored] == ["hello?", "anyone?"]
            assert all("ConnectError" in m["webhook_status"] for m in stored)
            assert "webhook failed" in sandbox.http.get("/", params={"phone": phone}).text


# --- the inbox page and the JSON API ------------------------------------------------------------------


def test_the_inbox_escapes_message_text(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    send(sandbox, phone, body="<script>alert(1)</script>")

    page = sandbox.http.get("/", params={"phone": phone})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert f'action="/inbox/{quote(phone, safe="")}/reply"' in page.text


def test_the_inbox_renders_with_no_messages(sandbox: RunningSandbox) -> None:
    page = sandbox.http.get("/")

    assert page.status_code == 200
    assert "No messages yet" in page.text


def test_wait_returns_when_a_message_arrives(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    wait_url = f"{sandbox.base_url}/sandbox/api/wait"

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(httpx.get, wait_url, params={"phone": phone, "count": 1, "timeout": 30}, timeout=40)
        sent = send(sandbox, phone)
        answer = waiting.result(timeout=40)

    assert answer.status_code == 200
    assert answer.json()["timed_out"] is False
    assert [m["sid"] for m in answer.json()["messages"]] == [sent.sid]


def test_wait_reports_a_timeout_when_nothing_arrives(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    send(sandbox, phone)

    answer = sandbox.http.get("/sandbox/api/wait", params={"phone": phone, "count": 2, "timeout": 0})

    assert answer.json()["timed_out"] is True
    assert len(answer.json()["messages"]) == 1


def test_phones_lists_the_most_recent_conversation_first(sandbox: RunningSandbox) -> None:
    first, second = fake_phone(), fake_phone()
    send(sandbox, first)
    send(sandbox, second)
    send(sandbox, second)

    phones = sandbox.http.get("/sandbox/api/phones").json()["phones"]

    assert [(p["phone"], p["message_count"]) for p in phones] == [(second, 2), (first, 1)]


def test_an_unencoded_plus_in_the_query_still_finds_the_phone(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    send(sandbox, phone)

    response = sandbox.http.get(f"/sandbox/api/messages?phone={phone}")

    assert len(response.json()["messages"]) == 1


@pytest.mark.parametrize(
    "payload",
    [{"from": "5550100", "body": "hi"}, {"from": "+15550100001", "body": ""}, {"from": "+15550100001"}],
    ids=["bad phone", "empty body", "no body"],
)
def test_bad_inbound_requests_are_problem_json(sandbox: RunningSandbox, payload: dict) -> None:
    response = sandbox.http.post("/sandbox/api/inbound", json=payload)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert {"type", "title", "detail"} <= problem.keys()


def test_unknown_sandbox_routes_are_problem_json(sandbox: RunningSandbox) -> None:
    response = sandbox.http.get("/sandbox/api/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_healthz(sandbox: RunningSandbox) -> None:
    assert sandbox.http.get("/healthz").json() == {"status": "ok"}


# --- status callbacks ----------------------------------------------------------------------------------


def callbacks(sandbox: RunningSandbox, sid: str, count: int) -> list[dict]:
    answer = sandbox.http.get(
        "/sandbox/api/status-callbacks", params={"message_sid": sid, "count": count, "timeout": 15}
    ).json()
    assert answer["timed_out"] is False
    return answer["callbacks"]


def test_status_callbacks_are_signed_and_delivered_in_order(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    phone = fake_phone()
    message = sandbox.twilio.messages.create(
        to=phone, from_=ORG_NUMBER, body="hello", status_callback=receiver.status_url
    )

    delivered = callbacks(sandbox, message.sid, count=3)

    assert [(c["status"], c["attempts"], c["outcome"], c["finished"]) for c in delivered] == [
        ("queued", 1, 200, True),
        ("sent", 1, 200, True),
        ("delivered", 1, 200, True),
    ]
    assert [w.params["MessageStatus"] for w in receiver.statuses] == ["queued", "sent", "delivered"]
    assert all(w.valid and not w.valid_with_wrong_token for w in receiver.statuses)
    assert {w.params["MessageSid"] for w in receiver.statuses} == {message.sid}
    assert all("ErrorCode" not in w.params and w.params["To"] == phone for w in receiver.statuses)


@pytest.mark.parametrize(("code", "final"), [(30003, "undelivered"), (30005, "undelivered"), (30008, "failed")])
def test_magic_numbers_are_accepted_then_reported_undelivered(
    sandbox: RunningSandbox, receiver: WebhookReceiver, code: int, final: str
) -> None:
    phone = f"+155599300{code % 100:02d}"
    message = sandbox.twilio.messages.create(
        to=phone, from_=ORG_NUMBER, body="hello", status_callback=receiver.status_url
    )
    assert message.status == "queued" and message.error_code is None

    reported = callbacks(sandbox, message.sid, count=3 if final == "undelivered" else 2)

    assert reported[-1]["status"] == final and reported[-1]["error_code"] == code
    assert receiver.statuses[-1].params["ErrorCode"] == str(code)
    assert receiver.statuses[-1].params["MessageStatus"] == final
    fetched = sandbox.twilio.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == (final, code)


def test_a_failing_status_callback_is_retried_in_the_background(
    sandbox: RunningSandbox, receiver: WebhookReceiver
) -> None:
    receiver.failing_status_answers = 2
    message = sandbox.twilio.messages.create(
        to=fake_phone(), from_=ORG_NUMBER, body="hello", status_callback=receiver.status_url
    )

    delivered = callbacks(sandbox, message.sid, count=3)

    assert [(c["status"], c["attempts"], c["outcome"]) for c in delivered] == [
        ("queued", 3, 200),
        ("sent", 1, 200),
        ("delivered", 1, 200),
    ]
    assert [w.params["MessageStatus"] for w in receiver.statuses] == ["queued", "sent", "delivered"]


def test_a_status_callback_url_that_never_answers_is_given_up_and_recorded(tmp_path: Path) -> None:
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed_port.getsockname()[1]}/twilio/status"
        with running_sandbox(tmp_path, url, sandbox_callback_attempts=2) as sandbox:
            message = sandbox.twilio.messages.create(to=fake_phone(), from_=ORG_NUMBER, body="hi", status_callback=url)

            reported = callbacks(sandbox, message.sid, count=3)

            assert all(c["attempts"] == 2 and "ConnectError" in c["outcome"] for c in reported)
            page = sandbox.http.get("/", params={"phone": message.to}).text
            assert "status callbacks: 0 of 3 delivered" in page


# --- faults on demand ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("http_429", 429, 20429), ("http_500", 500, 20500), ("http_503", 503, 20503)]
)
def test_armed_http_faults_fail_the_next_creates_through_the_sdk(
    sandbox: RunningSandbox, kind: str, status: int, code: int
) -> None:
    phone = fake_phone()
    assert sandbox.http.post("/sandbox/api/faults", json={"kind": kind, "count": 2, "to": phone}).status_code == 201

    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            send(sandbox, phone)
        assert (caught.value.status, caught.value.code) == (status, code)
    send(sandbox, fake_phone())  # other phones are unaffected
    send(sandbox, phone)  # and the fault is spent

    assert len(sandbox.messages(phone)) == 1
    assert sandbox.http.get("/sandbox/api/faults").json() == {"faults": []}


@pytest.mark.parametrize(("kind", "created"), [("timeout", 0), ("timeout_after_create", 1)])
def test_a_timeout_fault_makes_the_sdk_time_out(sandbox: RunningSandbox, kind: str, created: int) -> None:
    phone = fake_phone()
    sandbox.http.post("/sandbox/api/faults", json={"kind": kind, "to": phone, "hold_seconds": 10})
    impatient = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(sandbox.base_url, timeout=0.2))

    with pytest.raises(OSError, match="timed out"):
        impatient.messages.create(to=phone, from_=ORG_NUMBER, body="hello")

    assert len(sandbox.messages(phone)) == created


def test_faults_can_be_listed_cleared_and_must_be_valid(sandbox: RunningSandbox) -> None:
    armed = sandbox.http.post("/sandbox/api/faults", json={"kind": "http_503", "count": 3, "resource": "calls"})
    assert armed.json()["remaining"] == 3
    send(sandbox, fake_phone())  # a message is not a call
    assert [f["remaining"] for f in sandbox.http.get("/sandbox/api/faults").json()["faults"]] == [3]
    assert sandbox.http.delete("/sandbox/api/faults").status_code == 204
    assert sandbox.http.get("/sandbox/api/faults").json() == {"faults": []}

    bad = sandbox.http.post("/sandbox/api/faults", json={"kind": "explode"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


# --- calls -----------------------------------------------------------------------------------------------

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Response><Say language="en-US">Urgent page. Reply Y 4, 8, 2, 1.</Say></Response>'
)


def test_a_call_with_twiml_is_recorded_and_shown_in_the_phones_conversation(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    send(sandbox, phone, body="P1 page")

    call = sandbox.twilio.calls.create(to=phone, from_=ORG_NUMBER, twiml=TWIML)

    assert call.sid.startswith("CA") and call.status == "queued"
    assert sandbox.twilio.calls(call.sid).fetch().status == "completed"
    [recorded] = sandbox.http.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"]
    assert (recorded["sid"], recorded["kind"], recorded["body"]) == (
        call.sid,
        "call",
        "Urgent page. Reply Y 4, 8, 2, 1.",
    )
    assert recorded["twiml"] == TWIML
    assert [
        m["kind"]
        for m in sandbox.http.get("/sandbox/api/messages", params={"phone": phone, "kind": "any"}).json()["messages"]
    ] == ["sms", "call"]
    assert len(sandbox.messages(phone)) == 1  # SMS only by default
    page = sandbox.http.get("/", params={"phone": phone}).text
    assert "voice call from" in page and "Urgent page. Reply Y 4, 8, 2, 1." in page
    waited = sandbox.http.get("/sandbox/api/wait", params={"phone": phone, "kind": "call", "count": 1, "timeout": 0})
    assert waited.json()["timed_out"] is False


def test_a_call_with_a_url_is_recorded_too(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    call = sandbox.twilio.calls.create(to=phone, from_=ORG_NUMBER, url="https://example.org/twiml")
    [recorded] = sandbox.http.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"]
    assert recorded["sid"] == call.sid and "https://example.org/twiml" in recorded["body"]


@pytest.mark.parametrize(
    ("to", "options", "code"),
    [
        ("+15005550001", {"twiml": TWIML}, 21217),
        ("+15005550002", {"twiml": TWIML}, 21214),
        ("+15005550003", {"twiml": TWIML}, 21215),
        ("+15005550004", {"twiml": TWIML}, 21216),
        (None, {"twiml": "<Response><Say>unclosed"}, 12100),
        (None, {"url": "not a url"}, 21205),
    ],
)
def test_calls_fail_like_twilio(sandbox: RunningSandbox, to: str | None, options: dict, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sandbox.twilio.calls.create(to=to or fake_phone(), from_=ORG_NUMBER, **options)

    assert (caught.value.status, caught.value.code) == (400, code)


def test_fetch_of_a_call_sid_as_a_message_is_a_404(sandbox: RunningSandbox) -> None:
    call = sandbox.twilio.calls.create(to=fake_phone(), from_=ORG_NUMBER, twiml=TWIML)
    with pytest.raises(TwilioRestException) as caught:
        sandbox.twilio.messages("SM" + call.sid[2:]).fetch()
    assert caught.value.status == 404


# --- opt-out, API keys, attempts ----------------------------------------------------------------------------


def test_stop_blocks_messages_to_the_phone_until_start(sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
    phone = fake_phone()

    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": " Stop "})
    with pytest.raises(TwilioRestException) as caught:
        send(sandbox, phone)
    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "START"})
    send(sandbox, phone)
    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "Y 4821"})

    assert (caught.value.status, caught.value.code) == (400, 21610)
    assert [w.params.get("OptOutType") for w in receiver.received] == ["STOP", "START", None]


def test_an_api_key_is_accepted_when_configured(tmp_path: Path, receiver: WebhookReceiver) -> None:
    key_sid, secret = "SK" + "12" * 16, "key-secret"
    with running_sandbox(tmp_path, receiver.url, twilio_api_key_sid=key_sid, twilio_api_key_secret=secret) as sandbox:
        with_key = Client(key_sid, secret, ACCOUNT_SID, http_client=RedirectingHttpClient(sandbox.base_url))
        wrong_secret = Client(key_sid, "nope", ACCOUNT_SID, http_client=RedirectingHttpClient(sandbox.base_url))

        assert with_key.messages.create(to=fake_phone(), from_=ORG_NUMBER, body="hi").status == "queued"
        with pytest.raises(TwilioRestException) as caught:
            wrong_secret.messages.create(to=fake_phone(), from_=ORG_NUMBER, body="hi")
        assert caught.value.status == 401


def test_the_attempt_parameter_is_recorded(sandbox: RunningSandbox) -> None:
    phone = fake_phone()
    sandbox.twilio.messages.create(to=phone, from_=ORG_NUMBER, body="hi", attempt=2)
    assert sandbox.messages(phone)[0]["attempt"] == 2


def test_an_older_sandbox_file_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    from services.sms_sandbox.store import SandboxMessageStore

    old = sqlite3.connect(tmp_path / "sms-sandbox.sqlite")
    old.executescript(
        """CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL, from_number TEXT NOT NULL, to_number TEXT NOT NULL, body TEXT NOT NULL,
        status TEXT NOT NULL, error_code INTEGER, num_segments INTEGER NOT NULL, created_at TEXT NOT NULL,
        messaging_service_sid TEXT, webhook_status);
        INSERT INTO messages (sid, direction, from_number, to_number, body, status, num_segments, created_at)
        VALUES ('SM00000000000000000000000000000001', 'outbound', '+15005550006', '+15550100001', 'old', 'sent',
                1, '2026-11-23T09:00:00+00:00');"""
    )
    old.close()

    store = SandboxMessageStore.in_directory(tmp_path)
    try:
        [message] = store.conversation("+15550100001")
        assert (message.body, message.kind, message.attempt) == ("old", "sms", None)
    finally:
        store.close()
