"""The local SMS sandbox: a fake of the Twilio Messages API, an inbox page and a JSON API for tests.

Our services send SMS with the official twilio SDK pointed here (``RedirectingHttpClient``); the
sandbox records them and shows them per phone. Someone playing the person holding a phone types a reply
in the inbox (or a test POSTs to ``/sandbox/api/inbound``) and the sandbox delivers it to our inbound
webhook exactly as Twilio would, signed with ``X-Twilio-Signature``.

The Twilio-shaped routes answer errors in Twilio's legacy JSON shape (``code``, ``message``, ``more_info``,
``status``) so the SDK raises ``TwilioRestException``; the sandbox's own routes answer RFC 9457
problem+json. Message bodies and phone numbers are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import logging
import math
import secrets
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from twilio.request_validator import RequestValidator

from services.contract.events import E164
from services.notifier.sandbox.settings import SandboxSettings
from services.notifier.sandbox.store import PhoneSummary, SandboxMessageStore, StoredMessage
from services.runtime.clock import Clock, SystemClock
from services.runtime.problems import problem_response

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
TWILIO_PREFIX = f"/{API_VERSION}/Accounts"
MAX_WAIT_SECONDS = 30.0
MAX_BODY_CHARS = 1600  # Twilio rejects longer bodies (error 21617)
WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio gives a messaging webhook 15 s

_E164 = TypeAdapter(E164)

# Twilio's documented error messages, minus the phone number some of them quote: exception text ends up
# in log lines.
_TWILIO_ERRORS: dict[int, str] = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource was not found",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages.",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}

# Twilio's magic test numbers (https://www.twilio.com/docs/iam/test-credentials).
_MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
_MAGIC_FROM: dict[str, int] = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each costs two septets (escape + character)


def count_segments(body: str) -> int:
    """How many SMS segments Twilio bills for ``body``: GSM-7 160/153 per part, else UCS-2 70/67."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        units = sum(2 if char in _GSM7_EXTENSION else 1 for char in body)
        single, per_part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # characters outside the BMP take two code units
        single, per_part = 70, 67
    return 1 if units <= single else math.ceil(units / per_part)


def is_e164(number: str) -> bool:
    """Whether ``number`` is an E.164 phone number as the event contract defines it."""
    try:
        _E164.validate_python(number)
    except ValidationError:
        return False
    return True


def _new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


@dataclass
class _Sandbox:
    """What the routes share while the app runs; built in the lifespan."""

    settings: SandboxSettings
    store: SandboxMessageStore
    http: httpx.AsyncClient
    changed: asyncio.Condition
    clock: Clock

    async def record(self, message: StoredMessage) -> None:
        self.store.add(message)
        await self.announce_change()

    async def announce_change(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def deliver_inbound(self, phone: str, body: str, to: str | None = None) -> StoredMessage:
        """Store an SMS from ``phone`` and POST it to the inbound webhook; webhook failures are recorded."""
        to_number = to or self.store.last_sender_to(phone) or self.settings.sandbox_org_number
        message = StoredMessage(
            sid=_new_message_sid(),
            direction="inbound",
            from_number=phone,
            to_number=to_number,
            body=body,
            status="received",
            num_segments=count_segments(body),
            created_at=self.clock.now(),
        )
        # Stored before the webhook runs, so a reply our app sends while handling it sorts after it.
        await self.record(message)
        webhook_status, twiml_replies = await self._post_webhook(message)
        self.store.record_webhook_status(message.sid, webhook_status)
        for reply in twiml_replies:
            self.store.add(reply)
        await self.announce_change()
        return replace(message, webhook_status=webhook_status)

    async def _post_webhook(self, message: StoredMessage) -> tuple[int | str, list[StoredMessage]]:
        url = self.settings.sandbox_inbound_webhook_url
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsMessageSid": message.sid,
            "AccountSid": self.settings.twilio_account_sid,
            "From": message.from_number,
            "To": message.to_number,
            "Body": message.body,
            "NumMedia": "0",
            "NumSegments": str(message.num_segments),
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        signature = RequestValidator(self.settings.twilio_auth_token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (sms-sandbox)"}
        try:
            response = await self.http.post(url, data=params, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The person holding the phone still sent the SMS; the failure is shown in the inbox instead.
            logger.warning("inbound SMS %s: webhook not reachable (%s)", message.sid, type(exc).__name__)
            return f"{type(exc).__name__}: {exc}".rstrip(": "), []
        logger.info("inbound SMS %s: webhook answered %s", message.sid, response.status_code)
        replies = self._twiml_replies(message, response) if response.is_success else []
        return response.status_code, replies

    def _twiml_replies(self, inbound: StoredMessage, response: httpx.Response) -> list[StoredMessage]:
        # Twilio sends the <Message> verbs of a webhook's TwiML answer; so does the sandbox.
        if "<Message" not in response.text:
            return []
        try:
            root = ElementTree.fromstring(response.text)
        except ElementTree.ParseError:
            logger.warning("inbound SMS %s: webhook answered malformed TwiML", inbound.sid)
            return []
        replies = []
        for verb in root.iter("Message"):
            body_element = verb.find("Body")
            body = (body_element.text if body_element is not None else verb.text) or ""
            to = verb.get("to") or inbound.from_number
            if not body.strip() or not is_e164(to):
                continue
            replies.append(
                StoredMessage(
                    sid=_new_message_sid(),
                    direction="outbound",
                    from_number=verb.get("from") or inbound.to_number,
                    to_number=to,
                    body=body.strip(),
                    status="sent",
                    num_segments=count_segments(body.strip()),
                    created_at=self.clock.now(),
                )
            )
        return replies


def _sandbox(request: Request) -> _Sandbox:
    return request.app.state.sandbox


SandboxDep = Annotated[_Sandbox, Depends(_sandbox)]


def build_sandbox_app(
    settings: SandboxSettings, *, http_client: httpx.AsyncClient | None = None, clock: Clock | None = None
) -> FastAPI:
    """The sandbox as an ASGI app; it must be served with its lifespan (uvicorn does by default).

    The lifespan opens ``<var_dir>/sms-sandbox.sqlite`` (creating it if missing) and, unless
    ``http_client`` is given, an ``httpx.AsyncClient`` for the inbound webhook that it closes on
    shutdown; an injected client is left open. ``clock`` stamps messages (default: system time).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SandboxMessageStore.in_directory(settings.var_dir)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(store.close)
            client = http_client
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS))
            app.state.sandbox = _Sandbox(
                settings=settings,
                store=store,
                http=client,
                changed=asyncio.Condition(),
                clock=clock or SystemClock(),
            )
            yield

    app = FastAPI(title="SMS sandbox", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _add_twilio_routes(app)
    _add_inbox_routes(app)
    _add_api_routes(app)
    return app


# --- errors -------------------------------------------------------------------------------------------


def _twilio_error(code: int, status: int) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": _TWILIO_ERRORS.get(code, HTTPStatus(status).phrase),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return problem_response(422, "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith(TWILIO_PREFIX + "/"):
        return _twilio_error({404: 20404, 405: 20004}.get(exc.status_code, exc.status_code), exc.status_code)
    return problem_response(exc.status_code, str(exc.detail))


# --- the Twilio Messages API ----------------------------------------------------------------------------


def _authenticated(request: Request, account_sid: str, settings: SandboxSettings) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _, password = base64.b64decode(encoded, validate=True).partition(b":")
    except ValueError:
        return False
    expected_sid = settings.twilio_account_sid.encode()
    # Evaluate all three so the time taken does not say which one was wrong.
    matches = [
        secrets.compare_digest(username, expected_sid),
        secrets.compare_digest(password, settings.twilio_auth_token.encode()),
        secrets.compare_digest(account_sid.encode(), expected_sid),
    ]
    return all(matches)


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _message_resource(message: StoredMessage, settings: SandboxSettings, *, status: str) -> dict[str, Any]:
    account = settings.twilio_account_sid
    stamp = format_datetime(message.created_at)
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": stamp,
        "date_sent": stamp,
        "date_updated": stamp,
        "direction": "outbound-api" if message.direction == "outbound" else "inbound",
        "error_code": message.error_code,
        "error_message": None,
        "from": message.from_number,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": status,
        "subresource_uris": {},
        "to": message.to_number,
        "uri": f"{TWILIO_PREFIX}/{account}/Messages/{message.sid}.json",
    }


def _rejection(to: str, from_: str, service_sid: str, body: str) -> int | None:
    if not to:
        return 21604
    if not is_e164(to):
        return 21211
    if not from_ and not service_sid:
        return 21603
    if not body:
        return 21602
    if len(body) > MAX_BODY_CHARS:
        return 21617
    return _MAGIC_FROM.get(from_) or _MAGIC_TO.get(to)


def _add_twilio_routes(app: FastAPI) -> None:
    @app.post(TWILIO_PREFIX + "/{account_sid}/Messages.json", response_model=None, include_in_schema=False)
    async def create_message(account_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Message create: 201 with the resource (status queued) or a Twilio error."""
        if not _authenticated(request, account_sid, sandbox.settings):
            return _twilio_error(20003, 401)
        form = await request.form()
        to, from_, body = _form_text(form, "To"), _form_text(form, "From"), _form_text(form, "Body")
        service_sid = _form_text(form, "MessagingServiceSid")
        rejection = _rejection(to, from_, service_sid, body)
        if rejection is not None:
            logger.info("outbound SMS rejected with Twilio error %s", rejection)
            return _twilio_error(rejection, 400)
        message = StoredMessage(
            sid=_new_message_sid(),
            direction="outbound",
            from_number=from_ or sandbox.settings.sandbox_org_number,
            to_number=to,
            body=body,
            status="sent",  # nothing to wait for: the inbox shows it at once
            num_segments=count_segments(body),
            created_at=sandbox.clock.now(),
            messaging_service_sid=service_sid or None,
        )
        await sandbox.record(message)
        logger.info("outbound SMS %s accepted", message.sid)
        return JSONResponse(_message_resource(message, sandbox.settings, status="queued"), status_code=201)

    @app.get(
        TWILIO_PREFIX + "/{account_sid}/Messages/{message_sid}.json",
        response_model=None,
        include_in_schema=False,
    )
    async def fetch_message(account_sid: str, message_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Message fetch: the stored resource, or 404 with code 20404."""
        if not _authenticated(request, account_sid, sandbox.settings):
            return _twilio_error(20003, 401)
        message = sandbox.store.get(message_sid)
        if message is None:
            return _twilio_error(20404, 404)
        return JSONResponse(_message_resource(message, sandbox.settings, status=message.status))


# --- the sandbox's JSON API -----------------------------------------------------------------------------


class InboundSms(BaseModel):
    """An SMS typed on a phone, to be delivered to our inbound webhook."""

    model_config = ConfigDict(populate_by_name=True)

    from_: E164 = Field(alias="from", description="the phone that sends it")
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    to: E164 | None = Field(
        default=None, description="default: the number that last texted the phone, else the org number"
    )

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        if not body.strip():
            raise ValueError("body must not be blank")
        return body


def _phone_param(value: str) -> str:
    # An unencoded "+" in a query string arrives as a space; accept "?phone=+1555..." as typed.
    value = value.strip()
    return "+" + value if value[:1].isdigit() else value


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "sid": message.sid,
        "direction": message.direction,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "num_segments": message.num_segments,
        "created_at": message.created_at.isoformat(),
        "webhook_status": message.webhook_status,
    }


def _add_api_routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the server answers."""
        return {"status": "ok"}

    @app.get("/sandbox/api/messages")
    async def list_messages(sandbox: SandboxDep, phone: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
        """The phone's conversation, oldest first."""
        return {"messages": [_message_json(m) for m in sandbox.store.conversation(_phone_param(phone))]}

    @app.get("/sandbox/api/phones")
    async def list_phones(sandbox: SandboxDep) -> dict[str, Any]:
        """Every phone with messages, most recent conversation first."""
        return {
            "phones": [
                {
                    "phone": summary.phone,
                    "last_message_at": summary.last_message_at.isoformat(),
                    "message_count": summary.message_count,
                }
                for summary in sandbox.store.phones()
            ]
        }

    @app.post("/sandbox/api/inbound", status_code=201)
    async def send_inbound(sms: InboundSms, sandbox: SandboxDep) -> dict[str, Any]:
        """Deliver an SMS from a phone; 201 even if the webhook failed (see ``webhook_status``)."""
        message = await sandbox.deliver_inbound(sms.from_, sms.body, sms.to)
        return {"sid": message.sid, "webhook_status": message.webhook_status}

    @app.get("/sandbox/api/wait")
    async def wait_for_messages(
        sandbox: SandboxDep,
        phone: Annotated[str, Query(min_length=1)],
        count: Annotated[int, Query(ge=1)] = 1,
        timeout: Annotated[float, Query(ge=0, description=f"seconds, at most {MAX_WAIT_SECONDS:g}")] = 10.0,
    ) -> dict[str, Any]:
        """Answer once the phone has at least ``count`` messages, or when ``timeout`` runs out."""
        phone = _phone_param(phone)
        try:
            async with asyncio.timeout(min(timeout, MAX_WAIT_SECONDS)):
                async with sandbox.changed:
                    await sandbox.changed.wait_for(lambda: sandbox.store.count(phone) >= count)
        except TimeoutError:
            pass
        messages = sandbox.store.conversation(phone)
        return {"messages": [_message_json(m) for m in messages], "timed_out": len(messages) < count}


# --- the inbox page -------------------------------------------------------------------------------------


def _inbox_url(phone: str, anchor: str = "") -> str:
    return "/?" + urlencode({"phone": phone}) + (f"#{anchor}" if anchor else "")


def _add_inbox_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def inbox(sandbox: SandboxDep, phone: str = "") -> HTMLResponse:
        """The inbox: phones with messages and the chosen phone's conversation."""
        return _inbox_page(sandbox, _phone_param(phone) if phone else None)

    @app.post("/inbox/{phone}/reply", response_model=None)
    async def reply(phone: str, request: Request, sandbox: SandboxDep) -> Response:
        """Send the form's ``body`` as an SMS from ``phone``; 303 back to its conversation."""
        form = await request.form()
        return await _send_from_page(sandbox, phone, _form_text(form, "body"))

    @app.post("/inbox/send", response_model=None)
    async def send_as_new_phone(request: Request, sandbox: SandboxDep) -> Response:
        """Send the form's ``body`` as an SMS from the form's ``phone``; 303 to its conversation."""
        form = await request.form()
        return await _send_from_page(sandbox, _form_text(form, "phone"), _form_text(form, "body"))


async def _send_from_page(sandbox: _Sandbox, phone: str, body: str) -> Response:
    if not is_e164(phone):
        return _inbox_page(sandbox, None, notice="The phone number must be E.164, like +15550100001.", status=422)
    if not body:
        return _inbox_page(sandbox, phone, notice="Type a message before sending.", status=422)
    if len(body) > MAX_BODY_CHARS:
        return _inbox_page(sandbox, phone, notice=f"SMS bodies stop at {MAX_BODY_CHARS} characters.", status=422)
    message = await sandbox.deliver_inbound(phone, body)
    return RedirectResponse(_inbox_url(phone, message.sid), status_code=303)


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1d2330; background: #f3f4f7; }
header { padding: .8rem 1.2rem; background: #1d2330; color: #fff; display: flex; gap: 1.5rem;
         align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.1rem; margin: 0; }
header span { color: #b8c0d0; font-size: .85rem; }
.layout { display: flex; flex-wrap: wrap; min-height: calc(100vh - 3rem); }
nav { flex: 0 0 17rem; background: #fff; border-right: 1px solid #dde1e8; padding: 1rem; }
nav h2, main h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: #6b7487; }
nav ul { list-style: none; margin: 0 0 1.5rem; padding: 0; }
nav li a { display: block; padding: .45rem .6rem; border-radius: 6px; color: inherit; text-decoration: none; }
nav li a:hover { background: #eef1f6; }
nav li a.selected { background: #dfe8fb; font-weight: 600; }
nav small { display: block; color: #6b7487; font-weight: normal; }
main { flex: 1 1 24rem; padding: 1rem 1.5rem; max-width: 48rem; }
.conversation { list-style: none; padding: 0; display: flex; flex-direction: column; gap: .6rem; }
.bubble { max-width: 80%; padding: .55rem .8rem; border-radius: 12px; }
.bubble.outbound { align-self: flex-start; background: #fff; border: 1px solid #dde1e8; }
.bubble.inbound { align-self: flex-end; background: #2f6fde; color: #fff; }
.bubble:target { outline: 3px solid #f5b400; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.meta { font-size: .75rem; opacity: .75; margin-top: .2rem; }
.failed { color: #b42318; font-weight: 600; }
.inbound .failed { color: #ffd7d2; }
form { display: flex; flex-direction: column; gap: .5rem; }
textarea, input { font: inherit; padding: .5rem; border: 1px solid #c5cbd6; border-radius: 6px; width: 100%; }
button { align-self: flex-start; font: inherit; padding: .45rem 1rem; border: 0; border-radius: 6px;
         background: #2f6fde; color: #fff; cursor: pointer; }
.notice { padding: .6rem .8rem; border-radius: 6px; background: #fde8e6; color: #8a1c12; }
.empty { color: #6b7487; }
"""

# Reloads when the set of conversations changes, unless someone is typing.
_AUTO_REFRESH_JS = """
const stamp = document.body.dataset.stamp;
setInterval(async () => {
  const typing = [...document.querySelectorAll("textarea, input")].some((field) => field.value);
  if (typing || document.hidden) return;
  try {
    const { phones } = await (await fetch("/sandbox/api/phones", { cache: "no-store" })).json();
    if (phones.map((p) => `${p.phone}:${p.message_count}`).join(",") !== stamp) location.reload();
  } catch (error) { /* the sandbox is restarting; try again next tick */ }
}, 3000);
if (!location.hash) document.querySelector(".conversation li:last-child")?.scrollIntoView({ block: "end" });
"""


def _inbox_page(
    sandbox: _Sandbox, selected: str | None, *, notice: str | None = None, status: int = 200
) -> HTMLResponse:
    phones = sandbox.store.phones()
    if selected is None and phones:
        selected = phones[0].phone
    stamp = ",".join(f"{summary.phone}:{summary.message_count}" for summary in phones)
    e = html.escape
    phone_items = "".join(_phone_link_html(summary, selected) for summary in phones)
    settings = sandbox.settings
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SMS sandbox</title>
<style>{_CSS}</style>
</head>
<body data-stamp="{e(stamp)}">
<header><h1>SMS sandbox</h1>
<span>org number {e(settings.sandbox_org_number)}</span>
<span>replies go to {e(settings.sandbox_inbound_webhook_url)}</span></header>
<div class="layout">
<nav>
<h2>Phones</h2>
<ul>{phone_items or '<li class="empty">No messages yet.</li>'}</ul>
<h2>Text as a new phone</h2>
<form method="post" action="/inbox/send">
<input type="tel" name="phone" placeholder="+15550100001" pattern="\\+[1-9][0-9]{{6,14}}" required
 aria-label="phone number">
<textarea name="body" rows="3" placeholder="Message" required aria-label="message"></textarea>
<button type="submit">Send</button>
</form>
</nav>
<main>
{f'<p class="notice" role="alert">{e(notice)}</p>' if notice else ""}
{_conversation_html(sandbox, selected)}
</main>
</div>
<script>{_AUTO_REFRESH_JS}</script>
</body>
</html>""",
        status_code=status,
    )


def _phone_link_html(summary: PhoneSummary, selected: str | None) -> str:
    e = html.escape
    css_class = ' class="selected"' if summary.phone == selected else ""
    return (
        f'<li><a href="{e(_inbox_url(summary.phone))}"{css_class}>{e(summary.phone)}'
        f"<small>{summary.message_count} messages · last {_clock_time(summary.last_message_at)}</small>"
        "</a></li>"
    )


def _conversation_html(sandbox: _Sandbox, phone: str | None) -> str:
    e = html.escape
    if phone is None:
        return (
            '<p class="empty">Nothing here yet. SMS our services send through the Twilio API appear here; '
            "to start a conversation yourself, text as a new phone.</p>"
        )
    bubbles = "".join(_bubble_html(message) for message in sandbox.store.conversation(phone))
    return f"""<h2>{e(phone)}</h2>
<ol class="conversation">{bubbles or '<li class="empty">No messages with this phone yet.</li>'}</ol>
<form method="post" action="/inbox/{e(quote(phone, safe=""))}/reply">
<textarea name="body" rows="3" placeholder="Reply as {e(phone)}" required aria-label="reply"></textarea>
<button type="submit">Reply</button>
</form>"""


def _bubble_html(message: StoredMessage) -> str:
    e = html.escape
    details: Iterable[str]
    if message.direction == "outbound":
        details = [f"from {e(message.from_number)}", e(message.status)]
    else:
        details = [f"to {e(message.to_number)}", _webhook_html(message.webhook_status)]
    if message.num_segments > 1:
        details = [*details, f"{message.num_segments} segments"]
    return (
        f'<li id="{e(message.sid)}" class="bubble {message.direction}">'
        f'<div class="text">{e(message.body)}</div>'
        f'<div class="meta"><time datetime="{message.created_at.isoformat()}">'
        f"{_clock_time(message.created_at)}</time> · {' · '.join(details)}</div></li>"
    )


def _webhook_html(status: int | str | None) -> str:
    if status is None:
        return "delivering…"
    if isinstance(status, int) and 200 <= status < 300:
        return f"webhook {status}"
    return f'<span class="failed">webhook failed: {html.escape(str(status))}</span>'


def _clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")
