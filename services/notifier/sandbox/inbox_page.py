"""The sandbox's inbox page: each phone's conversation (texts and calls) and a reply box.

Someone playing the person holding a phone reads what our services sent and types a reply; the reply is
delivered to our inbound webhook, signed, exactly as Twilio would deliver it. A call shows as what it said.

The forms send signed SMS, so they carry a CSRF token (``services/runtime/form_csrf.py``, the scheme of the
workspace's sign-in form): a form posted from any other page is refused with 403 and sends nothing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.notifier.sandbox.state import Sandbox, SandboxDep, is_e164
from services.notifier.sandbox.store import PhoneSummary, StoredMessage
from services.notifier.sandbox.twilio_api import MAX_BODY_CHARS, form_text
from services.runtime.form_csrf import FIELD, FormTokenCookie
from services.runtime.problems import problem_response

INBOX_FORMS = FormTokenCookie("sandbox_inbox_form")


def phone_param(value: str) -> str:
    """A phone from a query string: an unencoded "+" arrives as a space, so "?phone=+1555..." works as typed."""
    value = value.strip()
    return "+" + value if value[:1].isdigit() else value


def _inbox_url(phone: str, anchor: str = "") -> str:
    return "/?" + urlencode({"phone": phone}) + (f"#{anchor}" if anchor else "")


def add_inbox_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def inbox(request: Request, sandbox: SandboxDep, phone: str = "") -> HTMLResponse:
        """The inbox: phones with messages and the chosen phone's conversation."""
        return _inbox_page(sandbox, phone_param(phone) if phone else None, csrf=INBOX_FORMS.token_for(request))

    @app.post("/inbox/{phone}/reply", response_model=None)
    async def reply(phone: str, request: Request, sandbox: SandboxDep) -> Response:
        """Send the form's ``body`` as an SMS from ``phone``; 303 back to its conversation."""
        form = await request.form()
        return await _send_from_page(request, sandbox, phone, form_text(form, "body"), form_text(form, FIELD))

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
.bubble.call { background: #fff7e0; border: 1px solid #f0d48a; }
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
    sandbox: Sandbox, selected: str | None, *, csrf: str, notice: str | None = None, status: int = 200
) -> HTMLResponse:
    phones = sandbox.store.phones()
    if selected is None and phones:
        selected = phones[0].phone
    stamp = ",".join(f"{summary.phone}:{summary.message_count}" for summary in phones)
    e = html.escape
    phone_items = "".join(_phone_link_html(summary, selected) for summary in phones)
    settings = sandbox.settings
    response = HTMLResponse(
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
<input type="hidden" name="{FIELD}" value="{e(csrf)}">
<input type="tel" name="phone" placeholder="+15550100001" pattern="\\+[1-9][0-9]{{6,14}}" required
 aria-label="phone number">
<textarea name="body" rows="3" placeholder="Message" required aria-label="message"></textarea>
<button type="submit">Send</button>
</form>
</nav>
<main>
{f'<p class="notice" role="alert">{e(notice)}</p>' if notice else ""}
{_conversation_html(sandbox, selected, csrf)}
</main>
</div>
<script>{_AUTO_REFRESH_JS}</script>
</body>
</html>""",
        status_code=status,
    )
    INBOX_FORMS.set_on(response, csrf)
    return response


def _phone_link_html(summary: PhoneSummary, selected: str | None) -> str:
    e = html.escape
    css_class = ' class="selected"' if summary.phone == selected else ""
    return (
        f'<li><a href="{e(_inbox_url(summary.phone))}"{css_class}>{e(summary.phone)}'
        f"<small>{summary.message_count} messages · last {_clock_time(summary.last_message_at)}</small>"
        "</a></li>"
    )


def _conversation_html(sandbox: Sandbox, phone: str | None, csrf: str) -> str:
    e = html.escape
    if phone is None:
        return (
            '<p class="empty">Nothing here yet. SMS and calls our services make through the Twilio API '
            "appear here; to start a conversation yourself, text as a new phone.</p>"
        )
    bubbles = "".join(_bubble_html(message, sandbox) for message in sandbox.store.conversation(phone))
    return f"""<h2>{e(phone)}</h2>
<ol class="conversation">{bubbles or '<li class="empty">No messages with this phone yet.</li>'}</ol>
<form method="post" action="/inbox/{e(quote(phone, safe=""))}/reply">
<input type="hidden" name="{FIELD}" value="{e(csrf)}">
<textarea name="body" rows="3" placeholder="Reply as {e(phone)}" required aria-label="reply"></textarea>
<button type="submit">Reply</button>
</form>"""


def _bubble_html(message: StoredMessage, sandbox: Sandbox) -> str:
    e = html.escape
    details: Iterable[str]
    if message.kind == "call":
        details = [f"voice call from {e(message.from_number)}", e(message.status)]
        text = f"\N{TELEPHONE RECEIVER} {message.body}"
    elif message.direction == "outbound":
        status = e(message.status)
        if message.error_code is not None:
            status = f'<span class="failed">{status} (error {message.error_code})</span>'
        details = [f"from {e(message.from_number)}", status]
        if message.attempt and message.attempt > 1:
            details = [*details, f"attempt {message.attempt}"]
        if message.status_callback:
            details = [*details, _callbacks_html(sandbox, message.sid)]
        text = message.body
    else:
        details = [f"to {e(message.to_number)}", _webhook_html(message.webhook_status)]
        text = message.body
    if message.num_segments > 1:
        details = [*details, f"{message.num_segments} segments"]
    return (
        f'<li id="{e(message.sid)}" class="bubble {message.direction} {message.kind}">'
        f'<div class="text">{e(text)}</div>'
        f'<div class="meta"><time datetime="{message.created_at.isoformat()}">'
        f"{_clock_time(message.created_at)}</time> · {' · '.join(details)}</div></li>"
    )


def _callbacks_html(sandbox: Sandbox, sid: str) -> str:
    callbacks = sandbox.store.status_callbacks(sid)
    delivered = sum(1 for c in callbacks if c.finished and isinstance(c.outcome, int) and 200 <= c.outcome < 300)
    if delivered == len(callbacks):
        return f"{delivered} status callbacks delivered"
    return f'<span class="failed">status callbacks: {delivered} of {len(callbacks)} delivered</span>'


def _webhook_html(status: int | str | None) -> str:
    if status is None:
        return "delivering…"
    if isinstance(status, int) and 200 <= status < 300:
        return f"webhook {status}"
    return f'<span class="failed">webhook failed: {html.escape(str(status))}</span>'


def _clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")
