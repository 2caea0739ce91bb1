"""The local SMS sandbox: a fake of Twilio's Messages and Calls API, an inbox page and a JSON API for tests.

Our services send SMS and place calls with the official twilio SDK pointed here (``RedirectingHttpClient``);
the sandbox records them, sends signed status callbacks for messages that asked for them, and shows every
phone's conversation. Someone playing the person holding a phone types a reply in the inbox (or a test
POSTs to ``/sandbox/api/inbound``) and the sandbox delivers it to our inbound webhook exactly as Twilio
would, signed with ``X-Twilio-Signature``.

The Twilio-shaped routes (``twilio_api``) answer errors in Twilio's legacy JSON shape so the SDK raises
``TwilioRestException``; the sandbox's own routes answer RFC 9457 problem+json. Message bodies and phone
numbers are never logged.

JSON API (for tests and tools):
- ``GET /sandbox/api/messages?phone=&kind=sms|call|any``: a phone's conversation, oldest first.
- ``GET /sandbox/api/calls?phone=``: a phone's calls, with their TwiML; ``awaiting_digits`` for one that listens
  for a key, and the ``digits`` pressed and the ``keypad_answer`` our webhook spoke once one was.
- ``GET /sandbox/api/phones``: every phone, most recent first.
- ``GET /sandbox/api/wait?phone=&count=&kind=&timeout=``: answers once the phone has ``count`` messages.
- ``GET /sandbox/api/status-callbacks?message_sid=&count=&timeout=``: a message's status callbacks,
  answering once ``count`` of them finished (delivered, or given up after retries).
- ``POST /sandbox/api/inbound``: a phone texts us.
- ``POST /sandbox/api/calls/inbound``: a phone calls us (our voice webhook answers; a <Gather> then waits for keys).
- ``POST /sandbox/api/calls/{sid}/digits``: the phone presses keys on a call that listens for them (``call_keys``).
- ``POST|GET|DELETE /sandbox/api/faults``: arm, list, clear provider failures (``faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.contract.events import E164
from services.contract.gsm7 import count_segments
from services.runtime.body_limit import RequestBodyLimit
from services.runtime.clock import Clock, SystemClock
from services.runtime.offline_docs import serve_offline_docs
from services.runtime.problems import problem_response
from services.sms_sandbox.call_keys import KEYS, KeysRefused, awaits_keys, press_keys
from services.sms_sandbox.faults import FaultInjector, FaultRequest
from services.sms_sandbox.inbox_page import add_inbox_routes, phone_param
from services.sms_sandbox.settings import SandboxSettings
from services.sms_sandbox.state import WEBHOOK_TIMEOUT_SECONDS, Sandbox, SandboxDep, is_e164
from services.sms_sandbox.status_callbacks import StatusCallbackSender
from services.sms_sandbox.store import SandboxMessageStore, StatusCallback, StoredMessage
from services.sms_sandbox.twilio_api import MAX_BODY_CHARS, TWILIO_PREFIX, add_twilio_routes, twilio_error

__all__ = ["build_sandbox_app", "count_segments", "is_e164"]

MAX_WAIT_SECONDS = 30.0
MAX_REQUEST_BYTES = 64 * 1024  # a Twilio-shaped form or an inbound SMS is a few kB at most


def build_sandbox_app(
    settings: SandboxSettings, *, http_client: httpx.AsyncClient | None = None, clock: Clock | None = None
) -> FastAPI:
    """The sandbox as an ASGI app; it must be served with its lifespan (uvicorn does by default).

    The lifespan opens ``<var_dir>/sms-sandbox.sqlite`` (creating it if missing) and, unless
    ``http_client`` is given, an ``httpx.AsyncClient`` for webhooks and status callbacks that it closes on
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
            changed = asyncio.Condition()

            async def announce() -> None:
                async with changed:
                    changed.notify_all()

            callbacks = StatusCallbackSender(
                store,
                client,
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                attempts=settings.sandbox_callback_attempts,
                retry_seconds=settings.sandbox_callback_retry_seconds,
                announce=announce,
            )
            stack.push_async_callback(callbacks.close)
            app.state.sandbox = Sandbox(
                settings=settings,
                store=store,
                http=client,
                changed=changed,
                clock=clock or SystemClock(),
                faults=FaultInjector(),
                callbacks=callbacks,
            )
            yield

    app = FastAPI(title="SMS sandbox", lifespan=lifespan)
    serve_offline_docs(app)
    app.add_middleware(RequestBodyLimit, limit=MAX_REQUEST_BYTES)  # counted as they stream in; 413 past it
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    add_twilio_routes(app)
    add_inbox_routes(app)
    _add_api_routes(app)
    return app


# --- errors -------------------------------------------------------------------------------------------


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
        return twilio_error({404: 20404, 405: 20004}.get(exc.status_code, exc.status_code), exc.status_code)
    return problem_response(exc.status_code, str(exc.detail))


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


KindFilter = Literal["sms", "call", "any"]


def _kind(kind: KindFilter) -> Literal["sms", "call"] | None:
    return None if kind == "any" else kind


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "sid": message.sid,
        "kind": message.kind,
        "direction": message.direction,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "num_segments": message.num_segments,
        "created_at": message.created_at.isoformat(),
        "webhook_status": message.webhook_status,
        "attempt": message.attempt,
        "status_callback": message.status_callback,
    } | (_call_json(message) if message.kind == "call" else {})


def _call_json(call: StoredMessage) -> dict[str, Any]:
    return {
        "twiml": call.twiml,
        "awaiting_digits": awaits_keys(call),
        "digits": call.digits,
        "keypad_answer": call.keypad_answer,
    }


class PressedKeys(BaseModel):
    """Keys pressed on a call, as the phone's keypad sends them."""

    digits: str = Field(
        pattern=KEYS.pattern, description="the keys 0-9, * and #: at most as many as the call's <Gather> takes"
    )


class InboundCall(BaseModel):
    """A phone calling the organisation's number, to be posted to our voice webhook."""

    model_config = ConfigDict(populate_by_name=True)

    from_: E164 = Field(alias="from", description="the phone that calls")
    to: E164 | None = Field(default=None, description="default: the org number")


def _callback_json(callback: StatusCallback) -> dict[str, Any]:
    return {
        "message_sid": callback.message_sid,
        "status": callback.status,
        "error_code": callback.error_code,
        "url": callback.url,
        "attempts": callback.attempts,
        "outcome": callback.outcome,
        "finished": callback.finished,
    }


def _add_api_routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the server answers."""
        return {"status": "ok"}

    @app.get("/sandbox/api/messages")
    async def list_messages(
        sandbox: SandboxDep, phone: Annotated[str, Query(min_length=1)], kind: KindFilter = "sms"
    ) -> dict[str, Any]:
        """The phone's SMS (or calls, or both), oldest first."""
        return {"messages": [_message_json(m) for m in sandbox.store.conversation(phone_param(phone), _kind(kind))]}

    @app.get("/sandbox/api/calls")
    async def list_calls(sandbox: SandboxDep, phone: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
        """The voice calls placed to the phone, oldest first, with what they said and their TwiML."""
        return {"calls": [_message_json(m) for m in sandbox.store.conversation(phone_param(phone), "call")]}

    @app.get("/sandbox/api/phones")
    async def list_phones(sandbox: SandboxDep) -> dict[str, Any]:
        """Every phone with messages or calls, most recent conversation first."""
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

    @app.post("/sandbox/api/calls/inbound", status_code=201)
    async def call_in(incoming: InboundCall, sandbox: SandboxDep) -> dict[str, Any]:
        """A phone calls us: the signed voice webhook is posted like Twilio's, and the call recorded with what our
        answer said; 201 even if the webhook failed (see ``webhook_status``)."""
        call = await sandbox.call_in(incoming.from_, incoming.to)
        return _message_json(call)

    @app.post("/sandbox/api/calls/{sid}/digits", response_model=None)
    async def press_call_keys(sid: str, keys: PressedKeys, sandbox: SandboxDep) -> dict[str, Any] | Response:
        """Press keys on a call that listens for them: posted, signed, to its <Gather>'s action like Twilio; 200
        even if the webhook failed (see ``webhook_status``), 404/409/422 problems when no keys can be pressed."""
        try:
            call = await press_keys(sandbox, sid, keys.digits)
        except KeysRefused as refused:
            return problem_response(refused.status, refused.detail)
        return {
            "sid": call.sid,
            "digits": call.digits,
            "webhook_status": call.webhook_status,
            "keypad_answer": call.keypad_answer,
        }

    @app.get("/sandbox/api/wait")
    async def wait_for_messages(
        sandbox: SandboxDep,
        phone: Annotated[str, Query(min_length=1)],
        count: Annotated[int, Query(ge=1)] = 1,
        kind: KindFilter = "sms",
        timeout: Annotated[float, Query(ge=0, description=f"seconds, at most {MAX_WAIT_SECONDS:g}")] = 10.0,
    ) -> dict[str, Any]:
        """Answer once the phone has at least ``count`` messages (of ``kind``), or when ``timeout`` runs out."""
        phone = phone_param(phone)
        await sandbox.wait_until(
            lambda: sandbox.store.count(phone, _kind(kind)) >= count, min(timeout, MAX_WAIT_SECONDS)
        )
        messages = sandbox.store.conversation(phone, _kind(kind))
        return {"messages": [_message_json(m) for m in messages], "timed_out": len(messages) < count}

    @app.get("/sandbox/api/status-callbacks")
    async def status_callbacks(
        sandbox: SandboxDep,
        message_sid: Annotated[str, Query(pattern=r"^SM[0-9a-f]{32}$")],
        count: Annotated[int, Query(ge=0, description="wait until this many have finished")] = 0,
        timeout: Annotated[float, Query(ge=0, description=f"seconds, at most {MAX_WAIT_SECONDS:g}")] = 10.0,
    ) -> dict[str, Any]:
        """The message's status callbacks, once ``count`` of them finished (or ``timeout`` ran out)."""

        def finished() -> int:
            return sum(1 for c in sandbox.store.status_callbacks(message_sid) if c.finished)

        await sandbox.wait_until(lambda: finished() >= count, min(timeout, MAX_WAIT_SECONDS))
        callbacks = sandbox.store.status_callbacks(message_sid)
        return {
            "callbacks": [_callback_json(c) for c in callbacks],
            "timed_out": sum(1 for c in callbacks if c.finished) < count,
        }

    @app.post("/sandbox/api/faults", status_code=201)
    async def arm_fault(fault: FaultRequest, sandbox: SandboxDep) -> dict[str, Any]:
        """Make the next ``count`` matching creates fail as ``kind`` says."""
        return sandbox.faults.arm(fault).as_json()

    @app.get("/sandbox/api/faults")
    async def list_faults(sandbox: SandboxDep) -> dict[str, Any]:
        """The faults still armed, with how often each has fired."""
        return {"faults": [f.as_json() for f in sandbox.faults.armed()]}

    @app.delete("/sandbox/api/faults", status_code=204)
    async def clear_faults(sandbox: SandboxDep) -> Response:
        """Disarm every fault."""
        sandbox.faults.clear()
        return Response(status_code=204)
