"""How a crisis record reads on a page: the same sections and labels for the workspace, the print-ready HTML
and the PDF, so every export says the same thing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.projections.domain.documentation import Documentation

Section = tuple[str, list[tuple[str, str]]]


def fmt_time(at: Any) -> str:
    if isinstance(at, datetime):
        return at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(at) if at else "—"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_minutes(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} min"


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_text(v)}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return (
        str(value).replace("_", " ") if isinstance(value, str) and value.islower() and " " not in value else str(value)
    )


def document_sections(doc: Documentation) -> list[Section]:
    """The documentation as titled lists of (label, text); missing values read '—'."""
    when = doc.when
    who = doc.who
    what = doc.what
    sections: list[Section] = [
        (
            "When",
            [
                ("Report received", fmt_time(when["reported_at"])),
                ("Dispatch notified", fmt_time(when["dispatch_notified_at"])),
                ("Responder notified", fmt_time(when["responder_notified_at"])),
                ("Acknowledged", fmt_time(when["acknowledged_at"])),
                ("En route", fmt_time(when["en_route_at"])),
                ("On scene", fmt_time(when["on_scene_at"])),
                ("Care handed off", fmt_time(when["handed_off_at"])),
                ("Cleared", fmt_time(when["cleared_at"])),
            ],
        ),
        (
            "Where",
            [
                ("Address", _text(doc.where["address"])),
                ("Place", _text(doc.where["place"])),
                ("Access notes", _text(doc.where["access_notes"])),
                ("Coordinates", f"{doc.where['lat']}, {doc.where['lon']}" if doc.where["lat"] is not None else "—"),
                ("Service zone", _text(doc.where["zone"])),
                ("Outside the service area", _text(doc.where["outside_service_area"])),
                *[
                    (
                        f"Relocated {fmt_time(move['at'])}",
                        f"{move['address'] or 'new location'}: {move['reason'] or ''}",
                    )
                    for move in doc.where["relocations"]
                ],
            ],
        ),
        (
            "Who",
            [
                ("Reporter", f"{who['reporter']['relation'] or 'unknown relation'} via {who['reporter']['channel']}"),
                ("Reporter callback", _text(who["reporter"]["callback"])),
                *[
                    (
                        f"Responder ({person['involvement']})",
                        f"{person['name'] or person['responder_id']} — {_text(person['role'])}"
                        + (f", {person['team_role']}" if person.get("team_role") else ""),
                    )
                    for person in who["responders"]
                ],
                ("Supervisor", _text(who["supervisor"])),
                ("Closed by", _text(who["closed_by"])),
            ],
        ),
        (
            "What",
            [
                ("Crisis kind", _text(what["kind"])),
                ("Priority", _text(what["priority"])),
                ("Needs", _text(what["needs"])),
                *[(f"Triage: {name.replace('_', ' ')}", _text(block)) for name, block in what["triage"].items()],
                ("Risk level", _text(what["risk_level"])),
                ("Triage reasons", _text(what["triage_reasons"])),
                ("Possible duplicate of", _text([str(i) for i in what["possible_duplicate_of"]])),
                *[
                    (
                        f"Naloxone dose {index}",
                        f"{fmt_time(dose['given_at'])}, {dose['product'] or 'product not recorded'}"
                        + (f" {dose['dose_mg']} mg" if dose["dose_mg"] else "")
                        + f", {dose['route'] or 'route not recorded'}, by {dose['given_by_role'] or 'unknown'}"
                        + f", response {dose['response'] or 'not recorded'}",
                    )
                    for index, dose in enumerate(what["interventions"]["naloxone_doses"], start=1)
                ],
                ("EMS activated", _text(what["ems"]["activated"])),
                ("EMS called before dispatch", _text(what["ems"]["called_before_dispatch"])),
                ("EMS agency", _text(what["ems"]["agency"])),
                ("EMS arrived", fmt_time(what["ems"]["arrived_at"])),
                ("Hand-off organisation", _text(what["handoff"]["organisation"])),
                ("Hand-off receiving person", _text(what["handoff"]["receiving_person"])),
            ],
        ),
        (
            "Outcome",
            [
                ("Disposition", _text(doc.outcome["disposition"])),
                ("Follow-up plan", _text(doc.outcome["follow_up_plan"])),
                *[
                    (
                        f"Follow-up: {task['title']}",
                        f"{task['status']}, due {fmt_time(task['due_at'])}, "
                        f"{task.get('assignee_name') or ('assigned' if task['assignee_id'] else 'unassigned')}"
                        + (f", outcome {task['outcome']}" if task.get("outcome") else ""),
                    )
                    for task in doc.outcome["follow_ups"]
                ],
                ("Safety plan", _text(doc.outcome["safety_plan"])),
            ],
        ),
        (
            "Minutes",
            [
                ("Travel", fmt_minutes(doc.minutes["travel"])),
                ("On scene", fmt_minutes(doc.minutes["on_scene"])),
                ("Documentation", fmt_minutes(doc.minutes["documentation"])),
                ("Language", _text(doc.minutes["language"])),
                ("Interpreter used", _text(doc.minutes["interpreter_used"])),
            ],
        ),
    ]
    if doc.part2_disclosures:
        sections.append(
            (
                "Emergency disclosures (42 CFR 2.51)",
                [(f"Disclosure {i}", _text(d)) for i, d in enumerate(doc.part2_disclosures, start=1)],
            )
        )
    sign = doc.sign_off
    sections.append(
        (
            "Sign-off",
            [
                ("Status", doc.status.replace("_", " ")),
                ("Attested by", f"{sign['attested_by']} ({sign['attester_role']})" if sign["attested_by"] else "—"),
                ("Attested at", fmt_time(sign["attested_at"])),
                ("Statement", _text(sign["statement"])),
                ("Director review", f"{sign['decision']} by {sign['signed_off_by']}" if sign["signed_off_by"] else "—"),
                ("Reviewed at", fmt_time(sign["signed_off_at"])),
                ("Director comment", _text(sign["comment"])),
            ],
        )
    )
    return sections
