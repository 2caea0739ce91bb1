"""The director workspace's pages, rendered on the server from Jinja2 templates.

The templates are in ``services/projections/templates/``; the one stylesheet and one small script every page
loads are in ``services/projections/static/`` (served under /workspace/static/), charts are inline SVG. The
environment escapes every value unless it is marked as markup; forms carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from importlib.resources import files
from typing import Any
from uuid import UUID, uuid4

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from services.projections.adapters.record_layout import SAFETY_STEPS, document_sections, fmt_duration, fmt_time
from services.projections.adapters.svg_charts import (
    BAD,
    GOOD,
    LATE,
    WAITING,
    grouped_bars,
    minutes_label,
    percent_label,
)
from services.projections.domain.audit import action_words
from services.projections.domain.documentation import Documentation
from services.projections.domain.plain_words import words
from services.runtime.credentials import Principal
from services.runtime.html_templates import package_templates

STYLESHEET = files("services.projections").joinpath("static/app.css").read_text(encoding="utf-8")
SCRIPT = files("services.projections").joinpath("static/app.js").read_text(encoding="utf-8")

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
DOSE_RESPONSES = ("improved", "unchanged", "worse")


def label(value: Any) -> str:
    """A code as words ("on_scene" -> "on scene", "ems_now" -> "EMS now"); "—" when there is none."""
    return "—" if value is None else words(str(value))


@pass_context
def time_here(context: Context, at: Any) -> str:
    """A time in the page's ``zone`` (the organisation's) with the zone's abbreviation; in UTC on a page given none."""
    zone = context.get("zone")
    if zone is None or not isinstance(at, datetime):
        return fmt_time(at)
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@pass_context
def time_near(context: Context, at: Any, near: Any) -> str:
    """``time_here``, without the date when ``at`` is on the same local day as ``near`` ('02:06:00 MST')."""
    zone = context.get("zone")
    if zone is None or not isinstance(at, datetime) or not isinstance(near, datetime):
        return time_here(context, at)
    if at.astimezone(zone).date() != near.astimezone(zone).date():
        return time_here(context, at)
    return at.astimezone(zone).strftime("%H:%M:%S %Z")


def sentence(text: str) -> str:
    """The first letter upper case, the rest as it is (names and codes keep their case)."""
    return text[:1].upper() + text[1:] if text else text


def group_words(key: str, dimension: str) -> str:
    """A metrics group's key as a director reads it: 'all' -> 'All incidents', '2026-W48' -> 'week of 23 Nov
    2026', 'unzoned' -> 'no zone'."""
    if key == "all":
        return "All incidents"
    if dimension == "by_week":
        year, week = key.split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
        return f"week of {monday.day} {monday.strftime('%b %Y')}"
    return "no zone" if key == "unzoned" else words(key)


def month_words(key: str) -> str:
    """A month key as a director reads it: '2026-11' -> 'November 2026' (naloxone kits left behind)."""
    return date.fromisoformat(f"{key}-01").strftime("%B %Y")


TEMPLATES = package_templates("services.projections")
TEMPLATES.filters.update(
    label=label,
    fmt_time=time_here,
    fmt_time_near=time_near,
    fmt_duration=fmt_duration,
    percent_label=percent_label,
    sentence=sentence,
    action_words=action_words,
    group_words=group_words,
    month_words=month_words,
)


def render(template: str, **context: Any) -> str:
    return TEMPLATES.get_template(template).render(**context)


def sign_in_page(next_path: str, csrf: str, error: str | None = None) -> str:
    return render("sign_in.html", title="Sign in", who=None, csrf=csrf, next_path=next_path, error=error)


BOARD_HEADINGS = {"open": "Open incidents", "closed": "Closed incidents", "cancelled": "Cancelled incidents"}


def board_rows(rows: Sequence[Mapping[str, Any]], zone: tzinfo) -> str:
    return render("board_rows.html", rows=rows, zone=zone)


def board_page(
    rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str, status: str, position: int, zone: tzinfo
) -> str:
    """The board: ``status`` is the filter shown (open, closed, cancelled or all)."""
    heading = BOARD_HEADINGS.get(status, "All incidents")
    context = {"who": who, "csrf": csrf, "active": "board", "zone": zone}
    unfilled = sum(1 for row in rows if row["unfilled"])
    missed = sum(1 for row in rows if row["field"]["check_in_missed"])
    return render(
        "board.html",
        title=heading,
        rows=rows,
        status=status,
        position=position,
        unfilled=unfilled,
        checkin_missed=missed,
        **context,
    )


def timeline_page(
    view: Mapping[str, Any],
    who: Principal,
    csrf: str,
    as_of_text: str,
    zone: tzinfo,
    people: Sequence[Any] = (),
    may_link: bool = False,
) -> str:
    """``may_link``: ``who`` may link a person to the incident (the link is offered only then)."""
    title = f"Incident {view['short_code']}"
    context = {"who": who, "csrf": csrf, "active": "board", "zone": zone, "people": people, "may_link": may_link}
    context["form_key"] = str(uuid4())  # the bridge form records once however often it is sent
    return render("timeline.html", title=title, view=view, as_of_text=as_of_text, **context)


def _yes_no(value: bool | None) -> str:
    return "not recorded" if value is None else "yes" if value else "no"


def documentation_page(
    doc: Documentation,
    view: Mapping[str, Any],
    who: Principal,
    csrf: str,
    zone: tzinfo,
    labels: Mapping[str, str],
    *,
    done: str | None = None,
    error: str | None = None,
    typed: Mapping[str, str] | None = None,
    invalid: str | None = None,
) -> str:
    """The documentation with its form (``labels``: each form field's label). After a refused form, ``typed``
    fills the form in again as it was sent and ``invalid`` marks the field named in ``error``; otherwise the form
    starts empty but for the safety plan (edited in place), and each choice says what is recorded now."""
    plan = doc.outcome.get("safety_plan") or {}
    form = dict(typed) if typed is not None else {f"safety_plan.{k}": plan.get(k) or "" for k, _ in SAFETY_STEPS}
    recorded = {
        "disposition": label(doc.outcome["disposition"]) if doc.outcome["disposition"] else "not recorded",
        "ems_activated": _yes_no(doc.what["ems"]["activated"]),
        "interpreter_used": _yes_no(doc.minutes["interpreter_used"]),
    }
    return render(
        "documentation.html",
        title=f"Documentation, incident {view.get('short_code') or doc.incident_id}",
        who=who,
        csrf=csrf,
        active="board",
        zone=zone,
        zone_label=str(zone),
        doc=doc,
        short_code=view.get("short_code"),
        kind=view.get("kind"),
        sections=document_sections(doc, zone),
        message=done,
        error=error,
        form=form,
        invalid=invalid,
        recorded=recorded,
        labels=labels,
        dispositions=[(value, label(value)) for value in DISPOSITIONS],
        routes=ROUTES,
        responses=[(value, value) for value in DOSE_RESPONSES],
        safety_steps=SAFETY_STEPS,
    )


def print_documentation(doc: Documentation, title: str, generated_at: datetime, zone: tzinfo = UTC) -> str:
    """A standalone print-ready page (its own inline styles, nothing to fetch), times in ``zone``."""
    sections = document_sections(doc, zone)
    context = {"doc": doc, "title": title, "generated_at": generated_at, "sections": sections, "zone": zone}
    return render("documentation_print.html", **context)


def tasks_page(
    tasks: Sequence[Mapping[str, Any]],
    who: Principal,
    csrf: str,
    candidates: Mapping[str, Iterable[tuple[UUID, str]]],
    show: str,
    zone: tzinfo,
    *,
    done: str | None = None,
    error: str | None = None,
    typed: Mapping[str, Any] | None = None,
) -> str:
    """The follow-up tasks, due times in ``zone``. After a refused form, ``typed`` (task id, action, values) puts
    what was typed back into that task's form."""
    return render(
        "tasks.html",
        title="Follow-up tasks",
        who=who,
        csrf=csrf,
        active="tasks",
        zone=zone,
        zone_label=str(zone),
        tasks=tasks,
        candidates=candidates,
        # a task assigned to nobody is open to anyone without a responder id of their own
        own_responder_id=str(who.responder_id) if who.responder_id else None,
        outcomes=OUTCOMES,
        message=done,
        error=error,
        typed=typed or {},
        show=show,
    )


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _metric_charts(metrics: Mapping[str, Any]) -> list[Markup]:
    """The metrics page's charts as inline SVG (``svg_charts`` escapes every text it draws)."""
    charts = []
    for dimension, title in (("by_priority", "priority"), ("by_zone", "zone"), ("by_week", "week")):
        groups = [g for g in metrics[dimension] if g["key"] != "all"]
        times = ("acknowledge_median_s", "acknowledge_p90_s", "arrive_median_s", "arrive_p90_s")
        charts.append(
            grouped_bars(
                f"Time to acknowledge and to arrive by {title}",
                [(group_words(g["key"], dimension), [_minutes(g[name]) for name in times]) for g in groups],
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
            colours=(GOOD, LATE, BAD, WAITING),  # overdue is the alarming one: red; not yet due is neutral
        )
    )
    return [Markup(chart) for chart in charts]


FOLLOW_UP_FIGURES = (
    ("done_on_time", "done on time", "met"),
    ("done_late", "done late", "pending"),
    ("open_overdue", "open, overdue", "overdue"),
    ("open_not_due", "open, not due", "waiting"),
    ("cancelled", "cancelled", "cancelled"),
)
"""The follow-up counts as the metrics page lists them: key, words, and the badge class that colours them (the
same meaning as the chart's colours: overdue red, on time green, late amber, not yet due neutral)."""


def metrics_page(
    metrics: Mapping[str, Any], who: Principal, csrf: str, since: str, until: str, zone: tzinfo = UTC
) -> str:
    charts = _metric_charts(metrics)
    context = {"who": who, "csrf": csrf, "active": "metrics", "zone": zone, "zone_label": str(zone)}
    return render(
        "metrics.html",
        title="Metrics",
        metrics=metrics,
        charts=charts,
        since=since,
        until=until,
        follow_up_figures=FOLLOW_UP_FIGURES,
        dimensions=(("by_priority", "By priority"), ("by_zone", "By service zone"), ("by_week", "By week reported")),
        **context,
    )


RATIO_FIGURES = (
    ("contacted_72h", "Overdose survivors reached within 72 h"),
    ("moud_30d", "MOUD started within 30 days (overdose or withdrawal survivors)"),
)
REPEAT_WINDOWS = (
    ("any_30d", "Another crisis within 30 days"),
    ("any_90d", "Another crisis within 90 days"),
    ("any_365d", "Another crisis within 365 days"),
    ("overdose_30d", "Another overdose within 30 days of an overdose"),
    ("overdose_90d", "Another overdose within 90 days of an overdose"),
    ("overdose_365d", "Another overdose within 365 days of an overdose"),
)


def outcomes_page(figures: Mapping[str, Any], who: Principal, csrf: str, zone: tzinfo = UTC) -> str:
    """The outcome figures (issue 19) with their charts (inline SVG) and the incidents behind each."""
    short = {"contacted_72h": "reached in 72 h", "moud_30d": "MOUD in 30 d"}
    rates = [(short[key], [figures[key]["rate"]]) for key, _ in RATIO_FIGURES]
    rates += [(f"repeat in {key[4:-1]} d", [figures["repeat_crisis"][key]["rate"]]) for key, _ in REPEAT_WINDOWS[:3]]
    series = figures["series_outcomes"]
    counts = [*series["ended"].items(), ("in_progress", series["in_progress"])]
    charts = [
        Markup(grouped_bars("Outcome rates", rates, ["rate"], percent_label, maximum=1.0, width=900)),
        Markup(
            grouped_bars(
                "Outreach series by outcome",
                [(o.replace("_", " "), [n]) for o, n in counts],
                ["series"],
            )
        ),
    ]
    context = {"who": who, "csrf": csrf, "active": "outcomes", "zone": zone, "zone_label": str(zone)}
    return render(
        "outcomes.html",
        title="Outcomes",
        figures=figures,
        charts=charts,
        ratio_figures=RATIO_FIGURES,
        repeat_windows=REPEAT_WINDOWS,
        **context,
    )


def audit_page(
    rows: Sequence[Mapping[str, Any]],
    who: Principal,
    csrf: str,
    people: Sequence[tuple[str, str]],
    filters: Mapping[str, str],
    zone: tzinfo,
) -> str:
    """The audit log, with its filters (``filters``: subject, incident code, record id as the form gave them)."""
    context = {"who": who, "csrf": csrf, "active": "audit", "zone": zone}
    return render("audit.html", title="Audit log", rows=rows, people=people, filters=filters, **context)


def dead_letters_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str) -> str:
    return render("dead_letters.html", title="Dead letters", who=who, csrf=csrf, active="dead-letters", rows=rows)


def error_page(status: int, message: str, who: Principal | None, csrf: str | None) -> str:
    return render("error.html", title=f"Error {status}", who=who, csrf=csrf, active="", status=status, message=message)


def next_target(value: str | None) -> str:
    """Only local workspace paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/workspace") and not value.startswith("//"):
        return value
    return "/workspace/"
