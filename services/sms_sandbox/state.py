"""What the sandbox's routes share while it runs, and the phone side of it: texting our webhook, calling us.

A phone that texts a Twilio opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) is blocked
from then on (creates to it fail with 21610, as Twilio does on a long code) until it texts START or
UNSTOP; the inbound webhook carries ``OptOutType`` like Twilio's Advanced Opt-Out. YES is not an opt-in
keyword here, matching the gateway (a responder accepts pages with "YES").

A phone that calls the organisation's number (``call_in``) is posted to our voice webhook, signed, as Twilio posts
an incoming call; the call is recorded with the TwiML our webhook answered, and waits for keys like our own calls
do when that TwiML has a <Gather> (``call_keys``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, replace
from typing import Annotated

import httpx
from fastapi import Depends, Request
from pydantic import TypeAdapter, ValidationError
from twilio.request_validator import RequestValidator

from services.contract.events import E164
from services.contract.gsm7 import count_segments
from services.runtime.clock import Clock
from services.sms_sandbox.faults import FaultInjector
from services.sms_sandbox.settings import SandboxSettings
from services.sms_sandbox.status_callbacks import API_VERSION, StatusCallbackSender
from services.sms_sandbox.store import SandboxMessageStore, StoredMessage

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio gives a messaging webhook 15 s
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_E164 = TypeAdapter(E164)


def is_e164(number: str) -> bool:
    """Whether ``number`` is an E.164 phone number as the event contract defines it."""
    try:
        _E164.validate_python(number)
    except ValidationError:
        return False
    return True


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def opt_out_type(body: str) -> str | None:
    """Twilio's OptOutType for a message that is exactly a reserved keyword: STOP, START or HELP."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "STOP"
    if word in OPT_IN_KEYWORDS:
        return "START"
    if word in HELP_KEYWORDS:
        return "HELP"
    return None


@dataclass
class Sandbox:
    """Built in the app's lifespan; every route reaches it through ``SandboxDep``."""

    settings: SandboxSettings
    store: SandboxMessageStore
    http: httpx.AsyncClient
    changed: asyncio.Condition
    clock: Clock
    faults: FaultInjector
    callbacks: StatusCallbackSender

    async def record(self, message: StoredMessage) -> None:
        self.store.add(message)
        await self.announce_change()

    async def announce_change(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, condition, timeout: float) -> bool:
        """Wait until ``condition()`` holds (re-checked on every change) or ``timeout`` seconds pass."""
        try:
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(condition)
        except TimeoutError:
            return bool(condition())
        return True

    async def deliver_inbound(self, phone: str, body: str, to: str | None = None) -> StoredMessage:
        """Store an SMS from ``phone`` and POST it to the inbound webhook; webhook failures are recorded."""
        to_number = to or self.store.last_sender_to(phone) or self.settings.sandbox_org_number
        message = StoredMessage(
            sid=new_sid(),
            direction="inbound",
            from_number=phone,
            to_number=to_number,
            body=body,
            status="received",
            num_segments=count_segments(body),
            created_at=self.clock.now(),
        )
        keyword_type = opt_out_type(body)
        if keyword_type in ("STOP", "START"):
            self.store.set_opted_out(phone, body.strip().upper(), message.created_at, keyword_type == "STOP")
        # Stored before the webhook runs, so a reply our app sends while handling it sorts after it.
        await self.record(message)
        webhook_status, twiml_replies = await self._post_webhook(message, keyword_type)
        self.store.record_webhook_status(message.sid, webhook_status)
        for reply in twiml_replies:
            self.store.add(reply)
        await self.announce_change()
        return replace(message, webhook_status=webhook_status)

    async def _post_webhook(
        self, message: StoredMessage, keyword_type: str | None
    ) -> tuple[int | str, list[StoredMessage]]:
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
        if keyword_type:
            params["OptOutType"] = keyword_type
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

    async def call_in(self, phone: str, to: str | None = None) -> StoredMessage:
        """``phone`` calls ``to`` (default: the org number): POST the signed voice webhook, record the call with the
        TwiML it answered (what it says is the call's body). A webhook failure is recorded on the call."""
        sid, to_number = new_sid("CA"), to or self.settings.sandbox_org_number
        params = {
            "AccountSid": self.settings.twilio_account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": sid,
            "CallStatus": "ringing",
            "Called": to_number,
            "Caller": phone,
            "Direction": "inbound",
            "From": phone,
            "To": to_number,
        }
        url = self.settings.voice_webhook_url
        signature = RequestValidator(self.settings.twilio_auth_token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (sms-sandbox)"}
        twiml: str | None = None
        try:
            response = await self.http.post(url, data=params, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.warning("call in %s: voice webhook not reachable (%s)", sid, type(exc).__name__)
            webhook_status: int | str = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            logger.info("call in %s: voice webhook answered %s", sid, response.status_code)
            webhook_status = response.status_code
            twiml = response.text if response.is_success else None
        call = StoredMessage(
            sid=sid,
            direction="inbound",
            from_number=phone,
            to_number=to_number,
            body=(spoken_text(twiml) or "") if twiml else "",
            status="in-progress" if twiml else "failed",
            num_segments=1,
            created_at=self.clock.now(),
            webhook_status=webhook_status,
            kind="call",
            twiml=twiml,
        )
        await self.record(call)
        return call

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
                    sid=new_sid(),
                    direction="outbound",
                    from_number=verb.get("from") or inbound.to_number,
                    to_number=to,
                    body=body.strip(),
                    status="delivered",
                    num_segments=count_segments(body.strip()),
                    created_at=self.clock.now(),
                )
            )
        return replies


def spoken_text(twiml: str) -> str | None:
    """What a TwiML document says (its <Say> verbs joined), or None if it is not TwiML."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    if root.tag != "Response":
        return None
    return " / ".join((say.text or "").strip() for say in root.iter("Say") if (say.text or "").strip())


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


SandboxDep = Annotated[Sandbox, Depends(_sandbox)]
