"""The director workspace's pages, rendered on the server from Jinja2 templates.

The templates are in ``services/projections/templates/``; the one stylesheet and one small script every page
loads are in ``services/projections/static/`` (served under /workspace/static/), charts are inline SVG. The
environment escapes every value unless it is marked as markup; forms carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any
from uuid import UUID

from markupsafe import Markup

from services.projections.adapters.record_layout import document_sections, fmt_duration, fmt_time
from services.projections.adapters.svg_charts import (
    BAD,
    GOOD,
    LATE,
    WAITING,
    grouped_bars,
    minutes_label,
    percent_label,
)
from services.projections.domain.documentation import Documentation
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
SAFETY_STEPS = (
    ("warning_signs", "1. Warning signs"),
    ("internal_coping", "2. Internal coping strategies"),
    ("social_distractions", "3. People and places that distract"),
    ("help_contacts", "4. People to ask for help"),
    ("professional_contacts", "5. Professionals and agencies"),
    ("means_safety", "6. Making the environment safe"),
)


def label(value: Any) -> str:
    """A code as words ("on_scene" -> "on scene"); "—" when there is none."""
    return "—" if value is None else str(value).replace("_", " ")


TEMPLATES = package_templates("services.projections")
TEMPLATES.filters.update(label=label, fmt_time=fmt_time, fmt_duration=fmt_duration, percent_label=percent_label)


def render(template: str, **context: Any) -> str:
    return TEMPLATES.get_template(template).render(**context)


def sign_in_page(next_path: str, csrf: str, error: str | None = None) -> str:
    return render("sign_in.html", title="Sign in", who=None, csrf=csrf, next_path=next_path, error=error)


def board_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    return render("board_rows.html", rows=rows)


def board_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str, status: str, position: int) -> str:
    context = {"who": who, "csrf": csrf, "active": "board"}
    return render("board.html", title="Open incidents", rows=rows, status=status, position=position, **context)


def timeline_page(view: Mapping[str, Any], who: Principal, csrf: str, as_of_text: str) -> str:
    title = f"Incident {view['short_code']}"
    return render("timeline.html", title=title, who=who, csrf=csrf, active="board", view=view, as_of_text=as_of_text)


def documentation_page(
    doc: Documentation, view: Mapping[str, Any], who: Principal, csrf: str, message: str | None, error: str | None
) -> str:
    return render(
        "documentation.html",
        title="Documentation",
        who=who,
        csrf=csrf,
        active="board",
        doc=doc,
        short_code=view.get("short_code"),
        kind=view.get("kind"),
        sections=document_sections(doc),
        message=message,
        error=error,
        dispositions=DISPOSITIONS,
        routes=ROUTES,
        safety_steps=SAFETY_STEPS,
    )


def print_documentation(doc: Documentation, title: str, generated_at: datetime) -> str:
    """A standalone print-ready page (its own inline styles, nothing to fetch)."""
    sections = document_sections(doc)
    return render("documentation_print.html", doc=doc, title=title, generated_at=generated_at, sections=sections)


def tasks_page(
    tasks: Sequence[Mapping[str, Any]],
    who: Principal,
    csrf: str,
    candidates: Mapping[str, Iterable[tuple[UUID, str]]],
    message: str | None,
    error: str | None,
    show: str,
) -> str:
    return render(
        "tasks.html",
        title="Follow-up tasks",
        who=who,
        csrf=csrf,
        active="tasks",
        tasks=tasks,
        candidates=candidates,
        # a task assigned to nobody is open to anyone without a responder id of their own
        own_responder_id=str(who.responder_id) if who.responder_id else None,
        outcomes=OUTCOMES,
        message=message,
        error=error,
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
                [(g["key"], [_minutes(g[name]) for name in times]) for g in groups],
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


def metrics_page(metrics: Mapping[str, Any], who: Principal, csrf: str, since: str, until: str) -> str:
    charts = _metric_charts(metrics)
    context = {"who": who, "csrf": csrf, "active": "metrics"}
    return render("metrics.html", title="Metrics", metrics=metrics, charts=charts, since=since, until=until, **context)


def audit_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str, subject: str, record_id: str) -> str:
    context = {"who": who, "csrf": csrf, "active": "audit"}
    return render("audit.html", title="Audit log", rows=rows, subject=subject, record_id=record_id, **context)


def dead_letters_page(rows: Sequence[Mapping[str, Any]], who: Principal, csrf: str) -> str:
    return render("dead_letters.html", title="Dead letters", who=who, csrf=csrf, active="dead-letters", rows=rows)


def error_page(status: int, message: str, who: Principal | None, csrf: str | None) -> str:
    return render("error.html", title=f"Error {status}", who=who, csrf=csrf, active="", status=status, message=message)


def next_target(value: str | None) -> str:
    """Only local workspace paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/workspace") and not value.startswith("//"):
        return value
    return "/workspace/"
