"""The director workspace's pages, rendered on the server as plain HTML.

Everything a page needs is served by this service: one stylesheet and one small script under
/workspace/static/, charts as inline SVG. Every value is escaped; forms carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote
from uuid import UUID

from services.projections.adapters.record_layout import document_sections, fmt_duration, fmt_time
from services.projections.adapters.svg_charts import grouped_bars, minutes_label, percent_label
from services.projections.domain.documentation import Documentation
from services.runtime.credentials import Principal

STYLESHEET = """
:root {
  --ink:#1d2430; --muted:#5b6575; --line:#d8dde5; --accent:#2f6fb0; --bad:#b03a48; --ok:#3a7a4b; --warn:#b7791f;
}
* { box-sizing: border-box; }
body {
  margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink);
  background:#f6f7f9;
}
header {
  background:#1d2430; color:#fff; padding:.6rem 1.2rem; display:flex; gap:1.2rem; align-items:center;
  flex-wrap:wrap;
}
header a { color:#fff; text-decoration:none; opacity:.85; }
header a.active, header a:hover { opacity:1; text-decoration:underline; }
header .who { margin-left:auto; font-size:.9rem; opacity:.85; }
header form { display:inline; }
header button {
  background:none; border:1px solid #fff8; color:#fff; border-radius:4px; padding:.15rem .5rem; cursor:pointer;
}
main { padding:1.2rem; max-width:1200px; margin:0 auto; }
h1 { font-size:1.4rem; margin:.2rem 0 1rem; }
h2 { font-size:1.1rem; margin:1.4rem 0 .5rem; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { text-align:left; padding:.4rem .55rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-weight:600; font-size:.85rem; }
tr.breach td { background:#fbe9eb; }
.badge { display:inline-block; padding:0 .45rem; border-radius:9px; font-size:.8rem; background:#e6e9ee; }
.badge.P1, .badge.breached, .badge.overdue { background:var(--bad); color:#fff; }
.badge.P2, .badge.pending { background:var(--warn); color:#fff; }
.badge.met, .badge.done, .badge.signed_off { background:var(--ok); color:#fff; }
.badge.attested { background:var(--accent); color:#fff; }
.panel { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.8rem 1rem; margin-bottom:1rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(230px, 1fr)); gap:.8rem; }
.grid.sections { grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); }
dl { display:grid; grid-template-columns:minmax(8rem, 12rem) 1fr; gap:.2rem .8rem; margin:0; }
dt { color:var(--muted); }
dd { margin:0; }
.gaps li { color:var(--bad); }
.flash { background:#e8f3ea; border:1px solid #b7d9bf; padding:.5rem .8rem; border-radius:4px; }
.error { background:#fbe9eb; border:1px solid #e5b3ba; padding:.5rem .8rem; border-radius:4px; }
form.inline { display:inline-flex; gap:.3rem; flex-wrap:wrap; align-items:center; }
label { display:block; font-size:.85rem; color:var(--muted); margin-top:.4rem; }
input, select, textarea {
  font:inherit; padding:.25rem .4rem; border:1px solid #b9c0cb; border-radius:4px; max-width:100%;
}
textarea { width:100%; min-height:3rem; }
button { font:inherit; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border:0; border-radius:4px; padding:.35rem .9rem; }
.muted { color:var(--muted); font-size:.9rem; }
.charts svg {
  background:#fff; border:1px solid var(--line); margin:.3rem .3rem .8rem 0; max-width:100%; height:auto;
}
.signin { max-width:380px; margin:4rem auto; }
@media print {
  header, form, .no-print { display:none !important; }
  body { background:#fff; }
  .panel { border:0; }
}
"""

SCRIPT = """
"use strict";
// The open-incidents board follows the server's change feed (Server-Sent Events) and reloads its rows.
document.addEventListener("DOMContentLoaded", function () {
  var board = document.querySelector("[data-live-rows]");
  if (!board || !window.EventSource) { return; }
  var source = new EventSource(board.getAttribute("data-events") || "/workspace/events");
  var refresh = function () {
    fetch(board.getAttribute("data-live-rows"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) { board.innerHTML = html; board.setAttribute("data-refreshed", String(Date.now())); }
      });
  };
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () { document.body.setAttribute("data-live", "connected"); });
});
"""

PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PRINT_SECURITY_HEADERS = PAGE_SECURITY_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
}

DISPOSITIONS = (
    "stabilised_on_scene",
    "transported_to_ed",
    "admitted",
    "referred_to_treatment",
    "refused_care",
    "deceased",
    "false_alarm",
    "unable_to_locate",
)
OUTCOMES = ("contact_made", "no_contact", "declined", "referred", "other")
ROUTES = ("intranasal", "intramuscular", "intravenous", "subcutaneous")
SAFETY_STEPS = (
    ("warning_signs", "1. Warning signs"),
    ("internal_coping", "2. Internal coping strategies"),
    ("social_distractions", "3. People and places that distract"),
    ("help_contacts", "4. People to ask for help"),
    ("professional_contacts", "5. Professionals and agencies"),
    ("means_safety", "6. Making the environment safe"),
)


def h(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def label(value: Any) -> str:
    return h(str(value).replace("_", " ")) if value is not None else "—"


def badge(value: Any, css: str | None = None) -> str:
    if value is None:
        return "—"
    return f'<span class="badge {h(css or value)}">{label(value)}</span>'


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{h(token)}">'


def layout(title: str, body: str, who: Principal | None, csrf: str | None, active: str = "") -> str:
    nav = ""
    if who is not None:
        links = [("board", "/workspace/", "Open incidents"), ("tasks", "/workspace/tasks", "Follow-up tasks")]
        if who.role.value == "director":
            links += [
                ("metrics", "/workspace/metrics", "Metrics"),
                ("audit", "/workspace/audit", "Audit log"),
                ("dead-letters", "/workspace/dead-letters", "Dead letters"),
            ]
        items = "".join(
            f'<a href="{href}" class="{"active" if key == active else ""}">{text}</a>' for key, href, text in links
        )
        nav = (
            f'<header><strong>Crisis workspace</strong>{items}<span class="who">{h(who.subject)} ·'
            f" {label(who.role.value)}"
            f'</span><form method="post" action="/workspace/sign-out">{csrf_field(csrf or "")}'
            f'<button type="submit">Sign out</button></form></header>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · Crisis workspace</title>"
        '<link rel="stylesheet" href="/workspace/static/app.css">'
        '<script src="/workspace/static/app.js" defer></script>'
        f"</head><body>{nav}<main>{body}</main></body></html>"
    )


def flash(message: str | None, error: str | None = None) -> str:
    parts = []
    if message:
        parts.append(f'<p class="flash" role="status">{h(message)}</p>')
    if error:
        parts.append(f'<p class="error" role="alert">{h(error)}</p>')
    return "".join(parts)


def sign_in_page(next_path: str, csrf: str, error: str | None = None) -> str:
    body = (
        '<div class="signin panel"><h1>Sign in</h1>'
        '<p class="muted">Use your user name and the access token from your organisation\'s credentials.</p>'
        f"{flash(None, error)}"
        '<form method="post" action="/workspace/sign-in">'
        f'{csrf_field(csrf)}<input type="hidden" name="next" value="{h(next_path)}">'
        '<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>'
        '<label for="token">Access token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" required>'
        '<p><button class="primary" type="submit">Sign in</button></p></form></div>'
    )
    return layout("Sign in", body, None, None)


def _gap_count(gaps: int) -> str:
    return "" if not gaps else f"{gaps} gap" + ("s" if gaps != 1 else "")


def board_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<tr><td colspan="9" class="muted">No incidents to show.</td></tr>'
    out = []
    for row in rows:
        css = "breach" if row["sla"] == "breached" else ""
        out.append(
            f'<tr class="{css}" data-incident="{h(row["incident_id"])}">'
            f'<td><a href="/workspace/incidents/{h(row["incident_id"])}">{h(row["short_code"] or "?")}</a></td>'
            f"<td>{badge(row['priority'])}</td><td>{label(row['kind'])}</td><td>{label(row['zone'] or 'unzoned')}</td>"
            f"<td>{fmt_time(row['reported_at'])}</td><td>{fmt_time(row['acknowledged_at'])}</td>"
            f"<td>{fmt_time(row['on_scene_at'])}</td><td>{badge(row['sla'])}</td>"
            f"<td>{badge(row['documentation'])} {_gap_count(row['gaps'])}</td></tr>"
        )
    return "".join(out)


def board_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str, status: str, position: int) -> str:
    scope = "all incidents" if who.role.value == "director" else "incidents you were paged for"
    tabs = " · ".join(
        f'<a href="/workspace/?status={s}">{"<strong>" + t + "</strong>" if s == status else t}</a>'
        for s, t in (("open", "Open"), ("closed", "Closed"), ("cancelled", "Cancelled"), ("all", "All"))
    )
    body = (
        f"<h1>{'Open incidents' if status == 'open' else 'Incidents'}</h1>"
        f'<p class="muted">Showing {h(scope)}. This board updates by itself when a report arrives. {tabs}</p>'
        '<table id="board"><thead><tr><th>Code</th><th>Priority</th><th>Kind</th><th>Zone</th><th>Reported</th>'
        "<th>Acknowledged</th><th>On scene</th><th>On-scene SLA</th><th>Documentation</th></tr></thead>"
        f'<tbody id="board-rows" data-live-rows="/workspace/board/rows?status={h(status)}" '
        f'data-events="/workspace/events?after={position}">{board_rows(rows)}</tbody>'
        "</table>"
    )
    return layout("Open incidents", body, who, csrf, "board")


def timeline_page(view: Mapping[str, Any], who: Principal, csrf: str, as_of_text: str) -> str:
    incident = view["incident_id"]
    sla = view["sla"]
    durations = view["durations_seconds"]
    milestone_rows = "".join(
        f"<tr><td>{name}</td><td>{fmt_time(view['milestones'][key])}</td><td>{fmt_duration(durations.get(short))}</td>"
        "</tr>"
        for name, key, short in (
            ("First page", "first_page_at", "first_page"),
            ("Acknowledged", "acknowledged_at", "acknowledged"),
            ("En route", "en_route_at", "en_route"),
            ("On scene", "on_scene_at", "on_scene"),
            ("Closed", "closed_at", "closed"),
        )
    )
    entries = "".join(
        f'<tr class="{"breach" if e["sla_breach"] else ""}" data-type="{h(e["type"])}">'
        f"<td>{fmt_time(e['occurred_at'])}</td><td>{h(e['type'])}</td><td>{h(e['actor'])}</td>"
        f"<td>{h(e['channel'])}</td><td>{h(e['summary'])}</td>"
        f'<td class="muted">{fmt_time(e["recorded_at"]) if e["recorded_at"] else ""}</td></tr>'
        for e in view["entries"]
    )
    known = (
        f'<p class="flash">As known at {h(fmt_time(view["as_of"]))}: later events are not shown.</p>'
        if view["as_of"]
        else ""
    )
    sla_text = (
        f"{badge(sla['state'])} target {sla['target_minutes']} min, due {fmt_time(sla['due_at'])}"
        + (f", {sla['minutes_late']:.0f} min late" if sla.get("minutes_late") else "")
        if sla
        else "—"
    )
    body = (
        f"<h1>Incident {h(view['short_code'] or incident)} {badge(view['priority'])} {label(view['kind'])}</h1>"
        f"{known}"
        f'<div class="grid"><div class="panel"><h2>Status</h2><dl><dt>Status</dt><dd>{badge(view["status"])}</dd>'
        f"<dt>Zone</dt><dd>{label(view['zone'] or 'unzoned')}</dd><dt>Reported</dt>"
        f'<dd>{fmt_time(view["milestones"]["reported_at"])}</dd><dt>On-scene SLA</dt><dd id="sla">{sla_text}</dd>'
        f"<dt>Escalations</dt><dd>{view['escalations']}</dd></dl></div>"
        '<div class="panel"><h2>Time from the report</h2><table><thead><tr><th>Milestone</th><th>At</th>'
        f"<th>After report</th></tr></thead><tbody>{milestone_rows}</tbody></table></div></div>"
        '<div class="panel no-print"><form class="inline" method="get">'
        '<label for="as_of">Show as known at (UTC)</label>'
        f'<input id="as_of" name="as_of" type="datetime-local" step="1" value="{h(as_of_text)}">'
        '<button type="submit">Show</button> <a href="?">now</a></form> · '
        f'<a id="documentation-link" href="/workspace/incidents/{h(incident)}/documentation">Documentation and'
        " sign-off</a></div>"
        '<h2>Timeline</h2><table id="timeline"><thead><tr><th>Time</th><th>Event</th><th>Actor</th><th>Channel</th>'
        f"<th>What happened</th><th>Recorded</th></tr></thead><tbody>{entries}</tbody></table>"
    )
    return layout(f"Incident {view['short_code']}", body, who, csrf, "board")


def _definition_sections(doc: Documentation) -> str:
    return "".join(
        f'<div class="panel"><h2>{h(title)}</h2><dl>'
        + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in rows)
        + "</dl></div>"
        for title, rows in document_sections(doc)
    )


def _gaps(doc: Documentation) -> str:
    if not doc.gaps:
        return '<p id="gaps" class="flash">No gaps: every required item is documented.</p>'
    items = "".join(
        f'<li data-gap="{h(g.key)}">{h(g.label)} <span class="muted">({h(g.section)})</span></li>' for g in doc.gaps
    )
    return f'<div class="panel"><h2>Gaps ({len(doc.gaps)})</h2><ul id="gaps" class="gaps">{items}</ul></div>'


def _fields_form(incident: str, doc: Documentation, csrf: str, kind: str | None) -> str:
    options = "".join(
        f'<option value="{d}" {"selected" if doc.outcome["disposition"] == d else ""}>{label(d)}</option>'
        for d in DISPOSITIONS
    )
    safety = ""
    if kind == "self_harm_risk":
        current = doc.outcome.get("safety_plan") or {}
        safety = "<h2>Safety plan</h2>" + "".join(
            f'<label for="sp_{k}">{h(t)}</label><textarea id="sp_{k}"'
            f' name="safety_plan.{k}">{h(current.get(k))}</textarea>'
            for k, t in SAFETY_STEPS
        )
    routes = "".join(f'<option value="{r}">{label(r)}</option>' for r in ROUTES)
    times = "".join(
        f'<label for="{k}">{t} (UTC)</label><input id="{k}" name="{k}" type="datetime-local" step="1">'
        for k, t in (
            ("acknowledged_at", "Acknowledged at"),
            ("en_route_at", "En route at"),
            ("on_scene_at", "On scene at"),
            ("handed_off_at", "Care handed off at"),
            ("cleared_at", "Cleared at"),
        )
    )
    return (
        '<form id="fields-form" class="panel no-print" method="post"'
        f' action="/workspace/incidents/{h(incident)}/documentation/fields">'
        f'{csrf_field(csrf)}<h2>Complete the documentation</h2><p class="muted">Only the fields you fill in are '
        'recorded; the rest stay as they are.</p><div class="grid"><div>'
        '<label for="disposition">Disposition</label><select id="disposition" name="disposition"><option'
        f' value="">—</option>{options}</select>'
        '<label for="ems_agency">EMS agency</label><input id="ems_agency" name="ems_agency">'
        '<label for="handoff_organisation">Hand-off organisation</label><input id="handoff_organisation"'
        ' name="handoff_organisation">'
        '<label for="handoff_receiving_person">Hand-off receiving person</label>'
        '<input id="handoff_receiving_person" name="handoff_receiving_person">'
        '<label for="supervisor_name">Supervisor</label><input id="supervisor_name" name="supervisor_name">'
        '<label for="documentation_minutes">Minutes documenting</label>'
        '<input id="documentation_minutes" name="documentation_minutes" type="number" min="0" max="1440">'
        '<label for="language">Language used</label><input id="language" name="language">'
        '<label for="interpreter_used">Interpreter used</label><select id="interpreter_used" name="interpreter_used">'
        '<option value="">—</option><option value="true">yes</option><option value="false">no</option></select>'
        f"</div><div>{times}</div><div>"
        "<h2>Naloxone dose</h2>"
        '<label for="dose_given_at">Given at (UTC)</label><input id="dose_given_at" name="dose.given_at"'
        ' type="datetime-local" step="1">'
        '<label for="dose_product">Product</label><input id="dose_product" name="dose.product" placeholder="naloxone'
        ' nasal spray 4 mg">'
        '<label for="dose_mg">Dose (mg)</label><input id="dose_mg" name="dose.dose_mg" type="number" step="0.1"'
        ' min="0">'
        f'<label for="dose_route">Route</label><select id="dose_route" name="dose.route">{routes}</select>'
        '<label for="dose_by">Given by (role)</label><input id="dose_by" name="dose.given_by_role">'
        '<label for="dose_response">Response</label><select id="dose_response" name="dose.response"><option'
        ' value="">—</option>'
        '<option value="improved">improved</option><option value="unchanged">unchanged</option>'
        '<option value="worse">worse</option></select></div></div>'
        '<label for="follow_up_plan">Follow-up plan</label><textarea id="follow_up_plan" name="follow_up_plan">'
        "</textarea>"
        f"{safety}"
        '<label for="notes">Notes</label><textarea id="notes" name="notes"></textarea>'
        '<p><button class="primary" type="submit">Save</button></p></form>'
    )


def documentation_page(
    doc: Documentation, view: Mapping[str, Any], who: Principal, csrf: str, message: str | None, error: str | None
) -> str:
    incident = str(doc.incident_id)
    actions = []
    if who.role.value == "responder" and doc.status in ("draft", "returned"):
        actions.append(
            f'<form method="post" action="/workspace/incidents/{h(incident)}/documentation/attest">{csrf_field(csrf)}'
            f'<button id="attest" class="primary" type="submit" {"disabled" if doc.gaps else ""}>Attest: complete and'
            " accurate"
            "</button></form>"
        )
    if who.role.value == "director" and doc.status == "attested":
        actions.append(
            f'<form method="post" action="/workspace/incidents/{h(incident)}/documentation/sign-off">{csrf_field(csrf)}'
            '<label for="comment">Comment (optional)</label><textarea id="comment" name="comment"></textarea>'
            '<p><button id="sign-off" class="primary" type="submit" name="decision" value="approved">Sign off</button> '
            '<button id="return" type="submit" name="decision" value="returned">Return for changes</button></p></form>'
        )
    exports = (
        f'<p class="no-print">Export: <a href="/v1/incidents/{h(incident)}/documentation.html">print-ready HTML</a> · '
        f'<a href="/v1/incidents/{h(incident)}/documentation.pdf">PDF</a> · '
        f'<a href="/v1/incidents/{h(incident)}/fhir">FHIR R4 Bundle</a></p>'
    )
    body = (
        f"<h1>Documentation · incident {h(view.get('short_code') or incident)} "
        f'<span id="doc-status">{badge(doc.status)}</span></h1>'
        f'{flash(message, error)}<p><a href="/workspace/incidents/{h(incident)}">Back to the timeline</a></p>{exports}'
        f"{_gaps(doc)}"
        '<div class="panel no-print">'
        f"<h2>Sign-off</h2>{''.join(actions) or '<p class=muted>Nothing to sign now.</p>'}</div>"
        f'<div class="grid sections">{_definition_sections(doc)}</div>'
    )
    if doc.status not in ("attested", "signed_off"):
        body += _fields_form(incident, doc, csrf, view.get("kind"))
    return layout("Documentation", body, who, csrf, "board")


def print_documentation(doc: Documentation, title: str, generated_at: datetime) -> str:
    """A standalone print-ready page (its own inline styles, nothing to fetch)."""
    gaps = (
        "<h2>Documentation gaps</h2><ul>"
        + "".join(f"<li>{h(g.label)} ({h(g.section)})</li>" for g in doc.gaps)
        + "</ul>"
        if doc.gaps
        else "<p>No documentation gaps.</p>"
    )
    sections = "".join(
        f"<section><h2>{h(t)}</h2><table>"
        + "".join(f"<tr><th>{h(k)}</th><td>{h(v)}</td></tr>" for k, v in rows)
        + "</table></section>"
        for t, rows in document_sections(doc)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{h(title)}</title><style>"
        "body{font:11pt/1.4 Georgia,serif;margin:2cm;color:#000} h1{font-size:16pt} h2{font-size:12.5pt;"
        "border-bottom:1px solid #999;margin-top:1.2em} table{border-collapse:collapse;width:100%} th{width:32%;"
        "text-align:left;font-weight:600;vertical-align:top;padding:2px 8px 2px 0} td{padding:2px 0}"
        " section{break-inside:avoid} @page{size:A4;margin:1.5cm} .note{font-size:9pt;color:#444}"
        f'</style></head><body><h1>{h(title)}</h1><p class="note">Generated {h(fmt_time(generated_at))}. '
        "Confidential: this record is protected by 42 CFR Part 2 and HIPAA.</p>"
        f"{gaps}{sections}</body></html>"
    )


def tasks_page(
    tasks: Sequence[Mapping[str, Any]],
    who: Principal,
    csrf: str,
    candidates: Mapping[str, Iterable[tuple[UUID, str]]],
    message: str | None,
    error: str | None,
    show: str,
) -> str:
    director = who.role.value == "director"
    rows = []
    outcomes = "".join(f'<option value="{o}">{label(o)}</option>' for o in OUTCOMES)
    for task in tasks:
        task_id = h(task["task_id"])
        forms = []
        if task["status"] == "open":
            if director:
                people = "".join(
                    f'<option value="{h(rid)}">{h(name)}</option>' for rid, name in candidates.get(task["task_id"], ())
                )
                forms.append(
                    f'<form class="inline" method="post" action="/workspace/tasks/{task_id}/assign">{csrf_field(csrf)}'
                    f'<select name="assignee_id" aria-label="assignee">{people}</select><button'
                    ' type="submit">Assign</button></form>'
                )
            if director or task["assignee_id"] == (str(who.responder_id) if who.responder_id else None):
                forms.append(
                    '<form class="inline" method="post"'
                    f' action="/workspace/tasks/{task_id}/complete">{csrf_field(csrf)}'
                    f'<select name="outcome" aria-label="outcome">{outcomes}</select>'
                    '<input name="note" placeholder="note" aria-label="note"><button type="submit">Complete</button>'
                    "</form>"
                )
                forms.append(
                    '<form class="inline" method="post"'
                    f' action="/workspace/tasks/{task_id}/reschedule">{csrf_field(csrf)}'
                    '<input name="due_at" type="datetime-local" step="1" required aria-label="new due time (UTC)">'
                    '<input name="reason" placeholder="reason" required aria-label="reason"><button'
                    ' type="submit">Reschedule</button></form>'
                )
        status = badge("overdue") if task["overdue"] else badge(task["status"])
        rows.append(
            f'<tr data-task="{task_id}" class="{"breach" if task["overdue"] else ""}"><td>{h(task["task_code"])}</td>'
            f'<td>{h(task["title"])}<div class="muted">{h(task.get("basis") or "")}</div></td>'
            f"<td>{label(task['owner_role'])}</td>"
            f"<td>{h(task['assignee_name'] or ('—' if not task['assignee_id'] else task['assignee_id']))}</td>"
            f"<td>{fmt_time(task['due_at'])}</td>"
            f"<td>{status}{' ' + label(task['outcome']) if task['outcome'] else ''}</td>"
            f'<td><a href="/workspace/incidents/{h(task["incident_id"])}">incident</a></td><td>{"".join(forms)}</td>'
            "</tr>"
        )
    switch = (
        ' · <a href="/workspace/tasks?show=mine">my tasks</a> · <a href="/workspace/tasks?show=all">all tasks</a>'
        if director
        else ""
    )
    body = (
        f"<h1>{'My follow-up tasks' if show == 'mine' else 'Follow-up tasks'}</h1>{flash(message, error)}"
        f'<p class="muted">Overdue tasks page their assignee and tell the supervisor.{switch}</p>'
        '<table id="tasks"><thead><tr><th>Code</th><th>Task</th><th>Owner role</th><th>Assignee</th><th>Due</th>'
        "<th>Status</th><th></th><th>Actions</th></tr></thead>"
        f"<tbody>{''.join(rows) or '<tr><td colspan=8 class=muted>No tasks.</td></tr>'}"
        "</tbody></table>"
    )
    return layout("Follow-up tasks", body, who, csrf, "tasks")


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def metrics_page(metrics: Mapping[str, Any], who: Principal, csrf: str, since: str, until: str) -> str:
    charts = []
    for dimension, title in (("by_priority", "priority"), ("by_zone", "zone"), ("by_week", "week")):
        groups = [g for g in metrics[dimension] if g["key"] != "all"]
        charts.append(
            grouped_bars(
                f"Time to acknowledge and to arrive by {title}",
                [
                    (
                        g["key"],
                        [
                            _minutes(g["acknowledge_median_s"]),
                            _minutes(g["acknowledge_p90_s"]),
                            _minutes(g["arrive_median_s"]),
                            _minutes(g["arrive_p90_s"]),
                        ],
                    )
                    for g in groups
                ],
                ["ack median", "ack p90", "arrive median", "arrive p90"],
                minutes_label,
            )
        )
    by_priority = [g for g in metrics["by_priority"] if g["key"] != "all"]
    charts.append(
        grouped_bars(
            "SLA compliance and escalation rate by priority",
            [(g["key"], [g["sla_compliance"], g["escalation_rate"]]) for g in by_priority],
            ["on-scene SLA met", "escalated"],
            percent_label,
            maximum=1.0,
        )
    )
    follow = metrics["follow_ups"]
    charts.append(
        grouped_bars(
            "Follow-up tasks",
            [("tasks", [follow["done_on_time"], follow["done_late"], follow["open_overdue"], follow["open_not_due"]])],
            ["done on time", "done late", "open, overdue", "open, not due"],
        )
    )
    table_rows = "".join(
        f"<tr><td>{h(dimension.removeprefix('by_'))}</td><td>{h(g['key'])}</td><td>{g['incidents']}</td>"
        f"<td>{fmt_duration(g['acknowledge_median_s'])}</td><td>{fmt_duration(g['acknowledge_p90_s'])}</td>"
        f"<td>{fmt_duration(g['arrive_median_s'])}</td><td>{fmt_duration(g['arrive_p90_s'])}</td>"
        f"<td>{percent_label(g['escalation_rate']) if g['escalation_rate'] is not None else '—'}</td>"
        f"<td>{percent_label(g['sla_compliance']) if g['sla_compliance'] is not None else '—'}</td></tr>"
        for dimension in ("by_priority", "by_zone", "by_week")
        for g in metrics[dimension]
    )
    on_time = follow["on_time_rate"]
    body = (
        "<h1>Response metrics</h1>"
        '<form class="inline panel no-print" method="get"><label for="since">Reported from (UTC date)</label>'
        f'<input id="since" name="since" type="date" value="{h(since)}"><label for="until">until</label>'
        f'<input id="until" name="until" type="date" value="{h(until)}"><button type="submit">Show</button></form>'
        '<p class="muted">On-scene target:'
        f" {h(', '.join(f'{k} {v} min' for k, v in metrics['sla_on_scene_minutes'].items()))}. "
        f"Follow-ups done on time: {percent_label(on_time) if on_time is not None else '—'}.</p>"
        f'<div class="charts" id="charts">{"".join(charts)}</div>'
        '<h2>Figures</h2><table id="metrics"><thead><tr><th>By</th><th>Group</th><th>Incidents</th><th>Ack median</th>'
        "<th>Ack p90</th><th>Arrive median</th><th>Arrive p90</th><th>Escalated</th><th>SLA met</th></tr></thead>"
        f"<tbody>{table_rows}</tbody></table>"
    )
    return layout("Metrics", body, who, csrf, "metrics")


def audit_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str, subject: str, record_id: str) -> str:
    body_rows = "".join(
        f"<tr><td>{fmt_time(r['at'])}</td><td>{h(r['subject'])}</td><td>{label(r['role'])}</td>"
        f"<td>{h(r['action'])}</td>"
        f"<td>{h(r['record_type'])} {h(r['record_id'])}</td>"
        f"<td>{badge(r['outcome'], 'breached' if r['outcome'] == 'denied' else 'met')}</td></tr>"
        for r in rows
    )
    body = (
        '<h1>Audit log</h1><p class="muted">Every read and change of a clinical record: who, what, when. '
        "Newest first.</p>"
        '<form class="inline panel" method="get"><label for="subject">User</label>'
        f'<input id="subject" name="subject" value="{h(subject)}"><label for="record_id">Record id</label>'
        f'<input id="record_id" name="record_id" value="{h(record_id)}"><button type="submit">Filter</button></form>'
        '<table id="audit"><thead><tr><th>When</th><th>Who</th><th>Role</th><th>Action</th><th>Record</th>'
        "<th>Outcome</th>"
        f"</tr></thead><tbody>{body_rows}</tbody></table>"
    )
    return layout("Audit log", body, who, csrf, "audit")


def dead_letters_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str) -> str:
    body_rows = "".join(
        f"<tr><td>{fmt_time(r['recorded_at'])}</td><td>DL-{r['original_sequence']}</td><td>{h(r['consumer'])}</td>"
        f"<td>{h(r['original_subject'])}</td>"
        f"<td>{incident_link(r['incident_id'])}</td>"
        f"<td><code>{h(r['reason'])}</code><details><summary>message</summary><pre>{h(r['payload'])}</pre></details>"
        "</td></tr>"
        for r in rows
    )
    body = (
        '<h1>Dead letters</h1><p class="muted">Messages a service could not process, newest first. The on-call '
        "supervisor was paged for each (the reference is the DL number in the SMS). One about an incident may "
        "mean a report nobody was paged for: handle that incident by phone now, then fix the cause.</p>"
        '<table id="dead-letters"><thead><tr><th>When</th><th>Reference</th><th>Service</th><th>Message</th>'
        f"<th>Incident</th><th>Why</th></tr></thead><tbody>{body_rows}</tbody></table>"
        + ("" if rows else '<p class="muted">None. Every message was processed.</p>')
    )
    return layout("Dead letters", body, who, csrf, "dead-letters")


def incident_link(incident_id: str | None) -> str:
    return f'<a href="/workspace/incidents/{h(incident_id)}">{h(incident_id[:8])}</a>' if incident_id else ""


def error_page(status: int, message: str, who: Principal | None, csrf: str | None) -> str:
    return layout(
        f"Error {status}",
        f'<h1>{status}</h1><p class="error">{h(message)}</p><p><a href="/workspace/">Back to the board</a></p>',
        who,
        csrf,
    )


def next_target(value: str | None) -> str:
    """Only local workspace paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/workspace") and not value.startswith("//"):
        return value
    return "/workspace/"


def sign_in_location(path: str) -> str:
    return f"/workspace/sign-in?next={quote(path, safe='/')}"
