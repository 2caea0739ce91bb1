"""The sandbox's inbox page: each phone's conversation (texts and calls) and a reply box.

Rendered from ``services/sms_sandbox/templates/inbox.html`` (Jinja2, every value escaped); its stylesheet and
script are files in ``services/sms_sandbox/static/``, so the page's Content-Security-Policy allows nothing inline.

Someone playing the person holding a phone reads what our services sent and types a reply; the reply is
delivered to our inbound webhook, signed, exactly as Twilio would deliver it. A call shows as what it said; a call
that listens for a key (a page or check-in call) shows a keypad until a key is pressed (``call_keys``); a call that
takes several keys (a call the phone made to us: code and command) shows a field for them. "Call dispatch" calls
the organisation's number from the phone shown.

The forms send signed SMS, so they carry a CSRF token (``services/runtime/form_csrf.py``, the scheme of the
workspace's sign-in form): a form posted from any other page is refused with 403 and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.html_templates import package_templates
from services.runtime.problems import problem_response
from services.sms_sandbox.call_keys import KEYPAD, KeysRefused, awaits_keys, keys_taken, press_keys
from services.sms_sandbox.state import Sandbox, SandboxDep, is_e164
from services.sms_sandbox.store import StoredMessage
from services.sms_sandbox.twilio_api import MAX_BODY_CHARS, form_text

INBOX_FORMS = FormTokenCookie("sandbox_inbox_form")
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
STATIC_FILES = {  # name -> (text, media type)
    name: (files("services.sms_sandbox").joinpath("static", name).read_text(encoding="utf-8"), media_type)
    for name, media_type in (("inbox.css", "text/css"), ("inbox.js", "text/javascript"))
}


def phone_param(value: str) -> str:
    """A phone from a query string: an unencoded "+" arrives as a space, so "?phone=+1555..." works as typed."""
    value = value.strip()
    return "+" + value if value[:1].isdigit() else value


def _inbox_url(phone: str, anchor: str = "") -> str:
    return "/?" + urlencode({"phone": phone}) + (f"#{anchor}" if anchor else "")


def add_inbox_routes(app: FastAPI) -> None:
    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        """The inbox's stylesheet and script."""
        if name not in STATIC_FILES:
            return problem_response(404, "no such file")
        text, media_type = STATIC_FILES[name]
        return Response(text, media_type=media_type, headers={"Cache-Control": "max-age=300"})

    @app.get("/", response_class=HTMLResponse)
    async def inbox(request: Request, sandbox: SandboxDep, phone: str = "") -> HTMLResponse:
        """The inbox: phones with messages and the chosen phone's conversation."""
        return _inbox_page(sandbox, phone_param(phone) if phone else None, csrf=INBOX_FORMS.token_for(request))

    @app.post("/inbox/{phone}/reply", response_model=None)
    async def reply(phone: str, request: Request, sandbox: SandboxDep) -> Response:
        """Send the form's ``body`` as an SMS from ``phone``; 303 back to its conversation."""
        form = await request.form()
        return await _send_from_page(request, sandbox, phone, form_text(form, "body"), form_text(form, FIELD))

    @app.post("/inbox/calls/{sid}/digits", response_model=None)
    async def press_on_call(sid: str, request: Request, sandbox: SandboxDep) -> Response:
        """Press the form's ``digits`` on call ``sid`` as its phone; 303 back to the call in its conversation."""
        form = await request.form()
        if not INBOX_FORMS.accepts(request, form_text(form, FIELD)):
            return problem_response(403, "this form did not come from the inbox page (CSRF); reload it and press again")
        try:
            call = await press_keys(sandbox, sid, form_text(form, "digits"))
        except KeysRefused as refused:
            stored = sandbox.store.get(sid, kind="call")
            if stored is None:
                return problem_response(refused.status, refused.detail)
            csrf = INBOX_FORMS.token_for(request)
            return _inbox_page(sandbox, stored.phone, csrf=csrf, notice=refused.detail, status=refused.status)
        return RedirectResponse(_inbox_url(call.phone, call.sid), status_code=303)

    @app.post("/inbox/{phone}/call", response_model=None)
    async def call_dispatch(phone: str, request: Request, sandbox: SandboxDep) -> Response:
        """Call the organisation's number from ``phone``; 303 to the call in its conversation."""
        form = await request.form()
        if not INBOX_FORMS.accepts(request, form_text(form, FIELD)):
            return problem_response(403, "this form did not come from the inbox page (CSRF); reload it and call again")
        if not is_e164(phone):
            return problem_response(422, "the phone number must be E.164, like +15550100001")
        call = await sandbox.call_in(phone)
        return RedirectResponse(_inbox_url(phone, call.sid), status_code=303)

    @app.post("/inbox/send", response_model=None)
    async def send_as_new_phone(request: Request, sandbox: SandboxDep) -> Response:
        """Send the form's ``body`` as an SMS from the form's ``phone``; 303 to its conversation."""
        form = await request.form()
        phone, body = form_text(form, "phone"), form_text(form, "body")
        return await _send_from_page(request, sandbox, phone, body, form_text(form, FIELD))


async def _send_from_page(request: Request, sandbox: Sandbox, phone: str, body: str, csrf: str) -> Response:
    if not INBOX_FORMS.accepts(request, csrf):
        return problem_response(403, "this form did not come from the inbox page (CSRF); reload it and send again")
    token = INBOX_FORMS.token_for(request)
    if not is_e164(phone):
        notice = "The phone number must be E.164, like +15550100001."
        return _inbox_page(sandbox, None, csrf=token, notice=notice, status=422)
    if not body:
        return _inbox_page(sandbox, phone, csrf=token, notice="Type a message before sending.", status=422)
    if len(body) > MAX_BODY_CHARS:
        notice = f"SMS bodies stop at {MAX_BODY_CHARS} characters."
        return _inbox_page(sandbox, phone, csrf=token, notice=notice, status=422)
    message = await sandbox.deliver_inbound(phone, body)
    return RedirectResponse(_inbox_url(phone, message.sid), status_code=303)


@dataclass(frozen=True)
class ConversationItem:
    """A message as the inbox shows it, with how many of its status callbacks reached our webhook."""

    message: StoredMessage
    callbacks_delivered: int = 0
    callbacks_total: int = 0
    awaits_keys: bool = False
    keys_taken: int = 1


def _conversation_item(sandbox: Sandbox, message: StoredMessage) -> ConversationItem:
    if message.kind == "call":
        return ConversationItem(message, awaits_keys=awaits_keys(message), keys_taken=keys_taken(message))
    if not message.status_callback:
        return ConversationItem(message)
    callbacks = sandbox.store.status_callbacks(message.sid)
    delivered = sum(1 for c in callbacks if c.finished and isinstance(c.outcome, int) and 200 <= c.outcome < 300)
    return ConversationItem(message, delivered, len(callbacks))


def _clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


TEMPLATES = package_templates("services.sms_sandbox")
TEMPLATES.filters.update(clock=_clock_time, inbox_url=_inbox_url, path_segment=lambda phone: quote(phone, safe=""))


def _inbox_page(
    sandbox: Sandbox, selected: str | None, *, csrf: str, notice: str | None = None, status: int = 200
) -> HTMLResponse:
    phones = sandbox.store.phones()
    if selected is None and phones:
        selected = phones[0].phone
    html = TEMPLATES.get_template("inbox.html").render(
        # the page's script reloads it when this changes
        stamp=",".join(f"{summary.phone}:{summary.message_count}" for summary in phones),
        org_number=sandbox.settings.sandbox_org_number,
        webhook_url=sandbox.settings.sandbox_inbound_webhook_url,
        phones=phones,
        selected=selected,
        conversation=[_conversation_item(sandbox, m) for m in sandbox.store.conversation(selected)] if selected else [],
        csrf_field=FIELD,
        csrf=csrf,
        keypad=KEYPAD,
        notice=notice,
    )
    response = HTMLResponse(html, status_code=status, headers=PAGE_SECURITY_HEADERS)
    INBOX_FORMS.set_on(response, csrf)
    return response
