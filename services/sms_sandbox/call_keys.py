"""Pressing a key on a recorded call, the way Twilio reports a <Gather> to its action URL.

A call whose TwiML wraps its speech in ``<Gather action="...">`` waits for keys (our page and check-in calls: the
notifier's ``twilio_voice``, one key; a call a phone made to us: the gateway's answer, an incident code and a key).
Someone playing the person holding the phone presses them in the inbox, or a test POSTs
``/sandbox/api/calls/{sid}/digits`` (at most the Gather's ``numDigits`` keys); the sandbox posts Twilio's Gather
parameters to the action URL, signed with ``X-Twilio-Signature`` for that exact URL (query string included), and
records the keys, the answer's HTTP status and what its TwiML said. Like a real call, one answered gather ends it:
a call is answered once (a press whose webhook failed may be pressed again).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import httpx
from twilio.request_validator import RequestValidator

from services.sms_sandbox.state import WEBHOOK_TIMEOUT_SECONDS, Sandbox, spoken_text
from services.sms_sandbox.status_callbacks import API_VERSION
from services.sms_sandbox.store import StoredMessage

logger = logging.getLogger(__name__)

KEYS = re.compile(r"^[0-9*#]{1,5}$")
DEFAULT_MOST_KEYS = 4  # a <Gather> without numDigits
KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
"""The phone's keys, in the order the inbox shows them."""


@dataclass(frozen=True)
class Gather:
    """A call's <Gather>: where it posts the keys, and how many it takes (None: until # or a pause)."""

    action: str
    num_digits: int | None


class KeysRefused(Exception):
    """The keys cannot be pressed on this call: ``status`` is the HTTP status the sandbox's API answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def gather_of(call: StoredMessage) -> Gather | None:
    """The <Gather> of a call's TwiML that posts its keys somewhere, or None when the call only speaks."""
    if call.kind != "call" or not call.twiml:
        return None
    try:
        root = ElementTree.fromstring(call.twiml)
    except ElementTree.ParseError:
        return None
    for gather in root.iter("Gather"):
        action = gather.get("action", "")
        if action.startswith(("http://", "https://")):
            num_digits = gather.get("numDigits", "")
            return Gather(action, int(num_digits) if num_digits.isdigit() else None)
    return None


def keys_taken(call: StoredMessage) -> int:
    """How many keys the call's <Gather> takes at most (1 on our page and check-in calls, 5 on a call in)."""
    gather = gather_of(call)
    return (gather.num_digits if gather is not None else None) or DEFAULT_MOST_KEYS


def answered(call: StoredMessage) -> bool:
    """Whether keys were pressed on the call and our webhook took them (2xx)."""
    status = call.webhook_status
    return call.digits is not None and isinstance(status, int) and 200 <= status < 300


def awaits_keys(call: StoredMessage) -> bool:
    """A call that listens for keys and has not been answered yet: the inbox shows it a keypad."""
    return gather_of(call) is not None and not answered(call)


async def press_keys(sandbox: Sandbox, sid: str, digits: str) -> StoredMessage:
    """Press ``digits`` on call ``sid``: post them to its <Gather>'s action, signed; the call as recorded after.

    Raises ``KeysRefused`` (404 no such call, 409 the call takes no keys or was answered, 422 not keys)."""
    call = sandbox.store.get(sid, kind="call")
    if call is None:
        raise KeysRefused(404, "no call with this sid")
    gather = gather_of(call)
    if gather is None:
        raise KeysRefused(409, "this call does not listen for keys (its TwiML has no <Gather> with an action)")
    if answered(call):
        raise KeysRefused(409, f"keys were already pressed on this call ({call.digits}); a call is answered once")
    most = gather.num_digits or DEFAULT_MOST_KEYS
    if not KEYS.fullmatch(digits) or len(digits) > most:
        raise KeysRefused(422, f"digits: 1 to {most} of the keys 0-9, * and #")
    status, answer = await _post_keys(sandbox, call, gather, digits)
    sandbox.store.record_keys(sid, digits, status, answer)
    await sandbox.announce_change()
    pressed = sandbox.store.get(sid, kind="call")
    assert pressed is not None
    return pressed


async def _post_keys(
    sandbox: Sandbox, call: StoredMessage, gather: Gather, digits: str
) -> tuple[int | str, str | None]:
    params = {
        "AccountSid": sandbox.settings.twilio_account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": "in-progress",
        "Called": call.to_number,
        "Caller": call.from_number,
        "Digits": digits,
        "Direction": "inbound" if call.direction == "inbound" else "outbound-api",
        "FinishedOnKey": "",
        "From": call.from_number,
        "To": call.to_number,
        "msg": "Gather End",
    }
    signature = RequestValidator(sandbox.settings.twilio_auth_token).compute_signature(gather.action, params)
    headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1 (sms-sandbox)"}
    try:
        response = await sandbox.http.post(gather.action, data=params, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        logger.warning("keys on call %s: webhook not reachable (%s)", call.sid, type(exc).__name__)
        return f"{type(exc).__name__}: {exc}".rstrip(": "), None
    logger.info("keys on call %s: webhook answered %s", call.sid, response.status_code)
    return response.status_code, spoken_text(response.text) if response.is_success else None
