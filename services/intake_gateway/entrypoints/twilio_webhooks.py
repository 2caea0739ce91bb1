"""Twilio's webhooks: inbound SMS, delivery status callbacks, keys pressed on our voice calls, and calls in.

They carry no bearer token: Twilio authenticates each request with ``X-Twilio-Signature``, an HMAC of the
public URL it called and the form parameters, keyed with the account's auth token. During a token rotation
the secondary token is accepted too. The SMS routes answer empty TwiML so Twilio sends nothing on its own; the
keypad route answers a short spoken TwiML ("Thank you" / "Not understood"). A webhook recorded before (a retry or
a replay, however late) is answered the same and records nothing. A call to the organisation's number
(``/twilio/voice/incoming``) records nothing itself: it is answered with a <Gather> for the incident code and a
field command, which Twilio posts to the keypad route with prompt "field".
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import FormData, QueryParams
from twilio.twiml.voice_response import VoiceResponse

from services.contract.events import E164, KeypadPrompt, ShortCode
from services.intake_gateway.sms_webhooks import DeliveryStatus, InboundSms, SmsWebhooks, WebhookLedgerUnavailable
from services.intake_gateway.voice_keypad import (
    SAY_LANGUAGES,
    KeypadPress,
    VoiceKeypad,
    answer_speech,
    field_answer_twiml,
    field_call_twiml,
)
from services.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem, ProblemDocument

log = logging.getLogger(__name__)
UNSUPPORTED_MEDIA_TYPE = {415: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}}}
router = APIRouter(tags=["twilio"], responses=PROBLEM_RESPONSES | UNSUPPORTED_MEDIA_TYPE)

EMPTY_TWIML = "<Response/>"
LEDGER_UNAVAILABLE = "could not check whether this webhook was recorded before; Twilio will retry"
_SID = r"^(SM|MM)[0-9a-fA-F]{32}$"
_E164 = re.compile(r"\+[1-9]\d{6,14}")


async def sms_webhooks(request: Request) -> SmsWebhooks:
    return request.app.state.sms_webhooks


async def signed_form(request: Request) -> FormData:
    """The webhook's form parameters, once ``X-Twilio-Signature`` proved Twilio sent them (403 otherwise)."""
    form = await request.form()
    if any(not isinstance(value, str) for _, value in form.multi_items()):
        # Twilio posts url-encoded fields only; an uploaded file cannot be covered by its signature
        raise Problem(415, "Twilio webhooks are application/x-www-form-urlencoded")
    url = request.app.state.public_url + request.url.path
    if request.url.query:
        url += f"?{request.url.query}"
    signature = request.headers.get("X-Twilio-Signature", "")
    # FormData has getlist, so a repeated parameter is signed the way Twilio signs it
    if not signature or not any(v.validate(url, form, signature) for v in request.app.state.twilio_validators):
        raise Problem(403, "X-Twilio-Signature does not match this request")
    return form


def _parse(model: type[BaseModel], form: FormData | QueryParams, what: str) -> BaseModel:
    try:
        return model.model_validate({key: str(value) for key, value in form.multi_items()})
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise Problem(422, f"{what} fields not accepted: {fields}") from exc


def twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="application/xml")


class InboundSmsForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    MessageSid: str = Field(pattern=_SID)
    From: E164
    To: E164
    Body: str = Field(default="", max_length=1600)
    OptOutType: str | None = Field(default=None, max_length=32)


@router.post("/twilio/sms", response_class=Response)
async def inbound_sms(
    form: Annotated[FormData, Depends(signed_form)], app: Annotated[SmsWebhooks, Depends(sms_webhooks)]
) -> Response:
    """Twilio's incoming-message webhook: append `sms.received` (and `sms.opt_out_changed` for STOP/START)."""
    sms = _parse(InboundSmsForm, form, "inbound SMS")
    # a stream outage answers 503/504 (install_problem_handlers): Twilio retries, and the retry is the same event
    try:
        await app.receive(InboundSms(sms.MessageSid, sms.From, sms.To, sms.Body, sms.OptOutType))
    except WebhookLedgerUnavailable as exc:
        raise Problem(503, LEDGER_UNAVAILABLE) from exc
    return twiml()


class StatusCallbackForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    MessageSid: str = Field(pattern=_SID)
    MessageStatus: str = Field(pattern=r"^[a-z_]{1,32}$")
    To: str | None = None
    ErrorCode: int | None = None

    @field_validator("ErrorCode", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value


@router.post("/twilio/status", response_class=Response)
async def delivery_status(
    form: Annotated[FormData, Depends(signed_form)], app: Annotated[SmsWebhooks, Depends(sms_webhooks)]
) -> Response:
    """Twilio's status callback for messages we sent: append `sms.status_updated`."""
    status = _parse(StatusCallbackForm, form, "status callback")
    # a To that is not a phone (e.g. a WhatsApp address) is not needed to match the message: drop it
    to = status.To if status.To and _E164.fullmatch(status.To) else None
    try:
        await app.record_status(DeliveryStatus(status.MessageSid, status.MessageStatus, to, status.ErrorCode))
    except WebhookLedgerUnavailable as exc:
        raise Problem(503, LEDGER_UNAVAILABLE) from exc
    return twiml()


# ---- keys pressed on a voice call (issue 18: the voice keypad) ----

_CALL_SID = r"^CA[0-9a-fA-F]{32}$"
KEYPAD_PATH = "/twilio/voice/keypad"
PAGE_KEYS = 4  # a page or check-in call takes one key (at most 4 were ever accepted); a call in takes 5


async def voice_keypad(request: Request) -> VoiceKeypad:
    return request.app.state.voice_keypad


class KeypadForm(BaseModel):
    """What Twilio posts to a <Gather>'s action. On our calls (outbound) ``To`` (also ``Called``) is the phone
    that was called and pressed the keys; on a call in (prompt "field") it is ``From``, the caller."""

    model_config = ConfigDict(extra="ignore")
    CallSid: str = Field(pattern=_CALL_SID)
    To: E164
    Called: E164 | None = None
    From: str | None = Field(default=None, max_length=64)
    Digits: str = Field(pattern=r"^[0-9*#]{1,5}$")


class KeypadQuery(BaseModel):
    """What the call carried in its action URL (``notifier/domain/voice_keypad.py``), signed with the rest."""

    model_config = ConfigDict(extra="ignore")
    prompt: KeypadPrompt | None = None
    code: ShortCode | None = None
    notification_id: UUID | None = None
    lang: Literal["en", "es"] = "en"


@router.post(KEYPAD_PATH, response_class=Response)
async def keypad_pressed(
    request: Request,
    form: Annotated[FormData, Depends(signed_form)],
    app: Annotated[VoiceKeypad, Depends(voice_keypad)],
) -> Response:
    """Twilio's <Gather> action of our page and check-in calls: append `call.keypad_pressed`, then say "Thank
    you" when the key means something for the call (1 accept / 2 decline a page; 1 safe / 2 end a check-in),
    "Not understood" when not. On a call in (prompt "field") the keys are the incident's code and a command
    (1 on scene, 2 I am safe, 3 leaving the scene, 4 done); keys that are not are not recorded and asked again."""
    keys = _parse(KeypadForm, form, "keypad")
    call = _parse(KeypadQuery, request.query_params, "keypad action URL")
    phone = keys.Called or keys.To
    if call.prompt == "field":  # a call in: the caller pressed the keys
        if keys.From is None or not _E164.fullmatch(keys.From):
            raise Problem(422, "keypad fields not accepted: From")
        phone = keys.From
    elif len(keys.Digits) > PAGE_KEYS:
        raise Problem(422, "keypad fields not accepted: Digits")
    press = KeypadPress(keys.CallSid, phone, keys.Digits, call.prompt, call.code, call.notification_id)
    try:
        await app.press(press)
    except WebhookLedgerUnavailable as exc:
        raise Problem(503, LEDGER_UNAVAILABLE) from exc
    if call.prompt == "field":
        keypad_url = request.app.state.public_url + KEYPAD_PATH
        return Response(field_answer_twiml(press.understood, keypad_url), media_type="application/xml")
    response = VoiceResponse()
    response.say(answer_speech(press.understood, call.lang), language=SAY_LANGUAGES[call.lang])
    return Response(str(response), media_type="application/xml")


class IncomingCallForm(BaseModel):
    """What Twilio posts when someone calls the organisation's number: ``From`` is the caller (a withheld number
    arrives as text such as "anonymous")."""

    model_config = ConfigDict(extra="ignore")
    CallSid: str = Field(pattern=_CALL_SID)
    From: str = Field(default="", max_length=64)
    To: str = Field(default="", max_length=64)


@router.post("/twilio/voice/incoming", response_class=Response)
async def incoming_call(request: Request, form: Annotated[FormData, Depends(signed_form)]) -> Response:
    """Twilio's voice webhook of the organisation's number: a responder calls in to report from the field. The
    answer asks (English, then Spanish) for the incident code and one key, which Twilio posts to the keypad route
    with prompt "field". It records nothing, so a retry is answered the same."""
    call = _parse(IncomingCallForm, form, "incoming call")
    keypad_url = request.app.state.public_url + KEYPAD_PATH
    twiml_answer = field_call_twiml(keypad_url, caller_known=bool(_E164.fullmatch(call.From)))
    return Response(twiml_answer, media_type="application/xml")
