"""Twilio's webhooks: inbound SMS and delivery status callbacks.

They carry no bearer token: Twilio authenticates each request with ``X-Twilio-Signature``, an HMAC of the
public URL it called and the form parameters, keyed with the account's auth token. During a token rotation
the secondary token is accepted too. Both routes answer empty TwiML so Twilio sends nothing on its own; a
webhook recorded before (a retry or a replay, however late) is answered the same and records nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import FormData

from services.contract.events import E164
from services.intake_gateway.sms_webhooks import DeliveryStatus, InboundSms, SmsWebhooks, WebhookLedgerUnavailable
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


def _parse(model: type[BaseModel], form: FormData, what: str) -> BaseModel:
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
