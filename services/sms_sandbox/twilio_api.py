"""The subset of Twilio's REST API the notifier uses: create and fetch Messages and Calls.

Errors come in Twilio's legacy JSON shape (``code``, ``message``, ``more_info``, ``status``), so the
official SDK raises ``TwilioRestException`` exactly as it would against Twilio. Behaviour beyond Twilio's
documented test numbers is the sandbox's own and is listed here:

- Messages to Twilio's magic test numbers fail like Twilio's test credentials (21211, 21612, 21408, 21610,
  21614; from-numbers 21212, 21606, 21611); so do calls (21217, 21214, 21215, 21216).
- Delivery failures, which Twilio reports only later by status callback: a message to ``+155599300NN``
  (NN = 03 to 08) is accepted, then reported ``undelivered`` with error 300NN (``failed`` for 30008).
- A phone that texted STOP into the sandbox is refused with 21610 until it texts START.
- Faults armed through ``/sandbox/api/faults`` (429, 5xx, timeouts) take precedence over everything.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from services.contract.gsm7 import count_segments
from services.sms_sandbox.faults import HTTP_FAULTS, FaultRequest, Resource
from services.sms_sandbox.settings import SandboxSettings
from services.sms_sandbox.state import Sandbox, SandboxDep, is_e164, new_sid, spoken_text
from services.sms_sandbox.status_callbacks import API_VERSION
from services.sms_sandbox.store import StoredMessage

logger = logging.getLogger(__name__)

TWILIO_PREFIX = f"/{API_VERSION}/Accounts"
MAX_BODY_CHARS = 1600  # Twilio rejects longer bodies (error 21617)

# Twilio's documented error messages, minus the phone number some of them quote: exception text ends up
# in log lines.
TWILIO_ERRORS: dict[int, str] = {
    12100: "Document parse failure",
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: "Url is not a valid URL",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21213: "No 'From' number is specified",
    21214: "'To' phone number cannot be reached",
    21215: "Geo Permission configuration is not permitting call",
    21216: "Account not allowed to call this number",
    21217: "Phone number does not appear to be valid",
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
MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM: dict[str, int] = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
MAGIC_CALL_TO: dict[str, int] = {
    "+15005550001": 21217,
    "+15005550002": 21214,
    "+15005550003": 21215,
    "+15005550004": 21216,
}
# The sandbox's own: accepted, then reported undelivered by status callback.
DELIVERY_FAILURES: dict[str, int] = {f"+155599300{code % 100:02d}": code for code in range(30003, 30009)}


def twilio_error(code: int, status: int) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": TWILIO_ERRORS.get(code, HTTPStatus(status).phrase),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def authenticated(request: Request, account_sid: str, settings: SandboxSettings) -> bool:
    """HTTP Basic as Twilio takes it: account SID + auth token, or API key SID + secret (if configured)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _, password = base64.b64decode(encoded, validate=True).partition(b":")
    except ValueError:
        return False
    expected_sid = settings.twilio_account_sid.encode()
    credentials = [(expected_sid, settings.twilio_auth_token.encode())]
    if settings.twilio_api_key_sid and settings.twilio_api_key_secret:
        credentials.append((settings.twilio_api_key_sid.encode(), settings.twilio_api_key_secret.encode()))
    # Evaluate every comparison so the time taken does not say which part was wrong.
    matches = [
        secrets.compare_digest(username, user) & secrets.compare_digest(password, secret)
        for user, secret in credentials
    ]
    return any(matches) & secrets.compare_digest(account_sid.encode(), expected_sid)


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def message_resource(message: StoredMessage, settings: SandboxSettings, *, status: str) -> dict[str, Any]:
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
        "error_code": message.error_code if status == message.status else None,
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


def call_resource(call: StoredMessage, settings: SandboxSettings, *, status: str) -> dict[str, Any]:
    account = settings.twilio_account_sid
    stamp = format_datetime(call.created_at)
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "date_created": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "from": call.from_number,
        "from_formatted": call.from_number,
        "sid": call.sid,
        "status": status,
        "to": call.to_number,
        "to_formatted": call.to_number,
        "uri": f"{TWILIO_PREFIX}/{account}/Calls/{call.sid}.json",
        "subresource_uris": {},
    }


def _message_rejection(to: str, from_: str, service_sid: str, body: str) -> int | None:
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
    return MAGIC_FROM.get(from_) or MAGIC_TO.get(to)


async def _held_back(request: Request, fault: FaultRequest) -> JSONResponse:
    """Answer nothing until the client hangs up or ``hold_seconds`` pass, like a provider that timed out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + fault.hold_seconds
    while loop.time() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.02)
    return twilio_error(20503, 503)


async def _fault_answer(request: Request, sandbox: Sandbox, resource: Resource, to: str) -> tuple[Any, bool]:
    """(the answer a fault gives, whether to create the resource first); (None, True) when no fault is armed."""
    fault = sandbox.faults.take(resource, to)
    if fault is None:
        return None, True
    logger.info("%s create: injected fault %s", resource, fault.kind)
    if fault.kind in HTTP_FAULTS:
        status, code = HTTP_FAULTS[fault.kind]
        return twilio_error(code, status), False
    return fault, fault.kind == "timeout_after_create"


def add_twilio_routes(app: FastAPI) -> None:
    @app.post(TWILIO_PREFIX + "/{account_sid}/Messages.json", response_model=None, include_in_schema=False)
    async def create_message(account_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Message create: 201 with the resource (status queued) or a Twilio error."""
        if not authenticated(request, account_sid, sandbox.settings):
            return twilio_error(20003, 401)
        form = await request.form()
        to, from_, body = form_text(form, "To"), form_text(form, "From"), form_text(form, "Body")
        service_sid = form_text(form, "MessagingServiceSid")
        fault, create = await _fault_answer(request, sandbox, "messages", to)
        if isinstance(fault, JSONResponse):
            return fault
        if not create:  # a timeout before anything was created
            return await _held_back(request, fault)
        rejection = _message_rejection(to, from_, service_sid, body)
        if rejection is None and sandbox.store.is_opted_out(to):
            rejection = 21610
        if rejection is not None:
            logger.info("outbound SMS rejected with Twilio error %s", rejection)
            return twilio_error(rejection, 400)
        delivery_error = DELIVERY_FAILURES.get(to)
        attempt = form_text(form, "Attempt")
        message = StoredMessage(
            sid=new_sid("SM"),
            direction="outbound",
            from_number=from_ or sandbox.settings.sandbox_org_number,
            to_number=to,
            body=body,
            status=("failed" if delivery_error == 30008 else "undelivered") if delivery_error else "delivered",
            error_code=delivery_error,
            num_segments=count_segments(body),
            created_at=sandbox.clock.now(),
            messaging_service_sid=service_sid or None,
            attempt=int(attempt) if attempt.isdigit() else None,
            status_callback=form_text(form, "StatusCallback") or None,
        )
        await sandbox.record(message)
        if message.status_callback:
            sandbox.callbacks.schedule(message)
        logger.info("outbound SMS %s accepted", message.sid)
        if isinstance(fault, FaultRequest):
            return await _held_back(request, fault)
        return JSONResponse(message_resource(message, sandbox.settings, status="queued"), status_code=201)

    @app.get(
        TWILIO_PREFIX + "/{account_sid}/Messages/{message_sid}.json",
        response_model=None,
        include_in_schema=False,
    )
    async def fetch_message(account_sid: str, message_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Message fetch: the stored resource with its final status, or 404 with code 20404."""
        if not authenticated(request, account_sid, sandbox.settings):
            return twilio_error(20003, 401)
        message = sandbox.store.get(message_sid, kind="sms")
        if message is None:
            return twilio_error(20404, 404)
        return JSONResponse(message_resource(message, sandbox.settings, status=message.status))

    @app.post(TWILIO_PREFIX + "/{account_sid}/Calls.json", response_model=None, include_in_schema=False)
    async def create_call(account_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Call create with ``Twiml`` or ``Url``: 201 (status queued), recorded for the inbox."""
        if not authenticated(request, account_sid, sandbox.settings):
            return twilio_error(20003, 401)
        form = await request.form()
        to, from_ = form_text(form, "To"), form_text(form, "From")
        twiml, url = form_text(form, "Twiml"), form_text(form, "Url")
        fault, create = await _fault_answer(request, sandbox, "calls", to)
        if isinstance(fault, JSONResponse):
            return fault
        if not create:  # a timeout before anything was created
            return await _held_back(request, fault)
        if not to:
            return twilio_error(21201, 400)
        if not is_e164(to):
            return twilio_error(21217, 400)
        if not from_:
            return twilio_error(21213, 400)
        if not twiml and not url.startswith(("http://", "https://")):
            return twilio_error(21205, 400)
        if code := MAGIC_CALL_TO.get(to):
            return twilio_error(code, 400)
        spoken = spoken_text(twiml) if twiml else f"(TwiML from {url})"
        if spoken is None:
            return twilio_error(12100, 400)
        call = StoredMessage(
            sid=new_sid("CA"),
            direction="outbound",
            from_number=from_,
            to_number=to,
            body=spoken,
            status="completed",  # the phone "answered" and heard it
            num_segments=1,
            created_at=sandbox.clock.now(),
            kind="call",
            twiml=twiml or None,
        )
        await sandbox.record(call)
        logger.info("outbound call %s placed", call.sid)
        if isinstance(fault, FaultRequest):
            return await _held_back(request, fault)
        return JSONResponse(call_resource(call, sandbox.settings, status="queued"), status_code=201)

    @app.get(TWILIO_PREFIX + "/{account_sid}/Calls/{call_sid}.json", response_model=None, include_in_schema=False)
    async def fetch_call(account_sid: str, call_sid: str, request: Request, sandbox: SandboxDep) -> JSONResponse:
        """Twilio's Call fetch, or 404 with code 20404."""
        if not authenticated(request, account_sid, sandbox.settings):
            return twilio_error(20003, 401)
        call = sandbox.store.get(call_sid, kind="call")
        if call is None:
            return twilio_error(20404, 404)
        return JSONResponse(call_resource(call, sandbox.settings, status=call.status))
