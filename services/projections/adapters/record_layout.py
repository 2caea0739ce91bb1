"""How a crisis record reads on a page: the same sections and labels for the workspace, the print-ready HTML
and the PDF, so every export says the same thing. Every value the documentation holds is shown (a clinician's
notes and a follow-up's note too), times in the zone given (the organisation's), codes in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from types import SimpleNamespace
from typing import Any

from services.projections.domain.documentation import Documentation
from services.projections.domain.plain_words import CHANNEL_WORDS, INSTRUMENT_WORDS, words
from services.projections.domain.sentences import vitals_words

Section = tuple[str, list[tuple[str, str]]]

SAFETY_STEPS = (
    ("warning_signs", "1. Warning signs"),
    ("internal_coping", "2. Internal coping strategies"),
    ("social_distractions", "3. People and places that distract"),
    ("help_contacts", "4. People to ask for help"),
    ("professional_contacts", "5. Professionals and agencies"),
    ("means_safety", "6. Making the environment safe"),
)
"""The Stanley-Brown safety plan's steps, in order, as the form and every export name them."""

INVOLVEMENT_WORDS = {"acknowledged": "Took the call", "paged": "Paged"}
DOSE_SOURCE_WORDS = {"intake": "reported as it happened", "clinician": "entered on the documentation"}
TASK_STATUS_WORDS = {"open": "open", "done": "done", "cancelled": "cancelled"}
DECISION_WORDS = {"approved": "approved", "returned": "returned for changes"}
TRIAGE_WORDS = dict(
    [
        ("q1", "Q1 wished to be dead"),
        ("q2", "Q2 thoughts of killing oneself"),
        ("q3", "Q3 thought about how"),
        ("q4", "Q4 some intention of acting"),
        ("q5", "Q5 worked out a plan"),
        ("q6_ever", "Q6 ever prepared or acted"),
        ("q6_past_3_months", "Q6 in the past 3 months"),
        ("ciwa_ar_score", "CIWA-Ar score"),
        ("cows_score", "COWS score"),
        ("naloxone_doses_given", "naloxone doses given before the report"),
    ]
)
"""The screeners' answers by what they ask (C-SSRS questions, withdrawal scales), not by their field names."""


def fmt_time(at: Any, zone: tzinfo = UTC) -> str:
    """'2026-11-23 02:04:30 MST': a time in ``zone`` with the zone's abbreviation; '—' when there is none."""
    if isinstance(at, datetime):
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
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


def _text(value: Any, zone: tzinfo = UTC) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return fmt_time(value, zone)
    if isinstance(value, dict):
        return "; ".join(f"{words(k)}: {_text(v, zone)}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return ", ".join(_text(v, zone) for v in value)
    if isinstance(value, str) and value.islower() and " " not in value:
        return words(value)  # a code ('transported_to_ed'); free text keeps its own spelling
    return str(value)


class _Layout:
    """The sections of one documentation, with its times told in ``zone``."""

    def __init__(self, doc: Documentation, zone: tzinfo) -> None:
        self.doc = doc
        self.zone = zone

    def time(self, at: Any) -> str:
        return fmt_time(at, self.zone)

    def text(self, value: Any) -> str:
        return _text(value, self.zone)

    def when(self) -> Section:
        when = self.doc.when
        labels = (
            ("reported_at", "Report received"),
            ("dispatch_notified_at", "Dispatch notified"),
            ("responder_notified_at", "Responder notified"),
            ("acknowledged_at", "Acknowledged"),
            ("en_route_at", "En route"),
            ("on_scene_at", "On scene"),
            ("handed_off_at", "Care handed off"),
            ("cleared_at", "Cleared"),
        )
        documented = when.get("as_documented", {})

        def said(key: str) -> str:
            shown, typed = self.time(when[key]), documented.get(key)
            return shown if typed is None or typed == when[key] else f"{shown} (documented as {self.time(typed)})"

        return "When", [(label, said(key)) for key, label in labels]

    def where(self) -> Section:
        where = self.doc.where
        rows = [
            ("Address", self.text(where["address"])),
            ("Place", self.text(where["place"])),
            ("Access notes", self.text(where["access_notes"])),
            ("Coordinates", f"{where['lat']}, {where['lon']}" if where["lat"] is not None else "—"),
            ("Service zone", self.text(where["zone"])),
            ("Outside the service area", self.text(where["outside_service_area"])),
        ]
        for move in where["relocations"]:
            rows.append(
                (f"Moved {self.time(move['at'])}", f"{move['address'] or 'new location'}: {move['reason'] or ''}")
            )
        return "Where", rows

    def who(self) -> Section:
        who = self.doc.who
        reporter = who["reporter"]
        channel = CHANNEL_WORDS.get(reporter["channel"] or "", reporter["channel"] or "an unknown channel")
        said = f"{words(reporter['relation'])}, by {channel}" if reporter["relation"] else f"by {channel}"
        rows = [("Reporter", said), ("Reporter callback", self.text(reporter["callback"]))]
        for person in who["responders"]:
            role = words(person["role"]) if person["role"] else "role not on the roster"
            team = f", {words(person['team_role'])}" if person.get("team_role") else ""
            name = person["name"] or "someone not on the roster"
            rows.append(
                (INVOLVEMENT_WORDS.get(person["involvement"], words(person["involvement"])), f"{name}, {role}{team}")
            )
        rows += [("Supervisor", self.text(who["supervisor"])), ("Closed by", self.text(who["closed_by"]))]
        return "Who", rows

    def dose(self, dose: Mapping[str, Any]) -> str:
        amount = f" {dose['dose_mg']:g} mg" if dose["dose_mg"] else ""
        return (
            f"{self.time(dose['given_at'])}, {dose['product'] or 'product not recorded'}{amount}, "
            f"{words(dose['route']) if dose['route'] else 'route not recorded'}, "
            f"given by {words(dose['given_by_role']) if dose['given_by_role'] else 'someone unknown'}, "
            f"response {dose['response'] or 'not recorded'} ({DOSE_SOURCE_WORDS.get(dose['source'], dose['source'])})"
        )

    def vitals(self, v: Mapping[str, Any]) -> str:
        """'RR 12/min, SpO2 94%, pulse 88/min, responds to voice (Cleo Clinician, by text)'."""
        said = vitals_words(SimpleNamespace(**v))
        channel = CHANNEL_WORDS.get(v["channel"], v["channel"])
        return f"{said} ({v['recorded_by'] or 'someone not on the roster'}, by {channel})"

    def reassessment(self, r: Mapping[str, Any]) -> str:
        """'COWS 14 (moderate): priority P3 -> P2, by director@example.org (COWS 14 >= 8: ...)'."""
        if r["instrument"] == "c_ssrs":
            score = f"C-SSRS {r['c_ssrs_risk']} risk"
        else:
            band = f" ({words(r['risk_level'])})" if r["risk_level"] else ""
            score = f"{INSTRUMENT_WORDS.get(r['instrument'], r['instrument'])} {r['score']}{band}"
        reasons = f" ({'; '.join(r['reasons'])})" if r["reasons"] else ""
        return f"{score}: priority {r['previous_priority']} -> {r['priority']}, by {r['recorded_by']}{reasons}"

    def triage(self, block: Mapping[str, Any]) -> str:
        answers = {TRIAGE_WORDS.get(k, words(k)): v for k, v in block.items()}
        return "; ".join(f"{k}: {self.text(v)}" for k, v in answers.items() if v not in (None, "", []))

    def what(self) -> Section:
        what = self.doc.what
        ems = what["ems"]
        rows = [
            ("Crisis kind", self.text(what["kind"])),
            ("Priority", self.text(what["priority"])),
            ("Needs", self.text(what["needs"])),
            *[(f"Triage: {words(name)}", self.triage(block)) for name, block in what["triage"].items()],
            ("Risk level", self.text(what["risk_level"])),
            ("Triage reasons", self.text(what["triage_reasons"])),
            ("Possible duplicate of", self.text([str(i) for i in what["possible_duplicate_of"]])),
            *[
                (f"Naloxone dose {index}", self.dose(dose))
                for index, dose in enumerate(what["interventions"]["naloxone_doses"], start=1)
            ],
            *[(f"Vitals {self.time(v['taken_at'])}", self.vitals(v)) for v in what.get("vitals", [])],
            *[(f"Re-assessed {self.time(r['at'])}", self.reassessment(r)) for r in what.get("reassessments", [])],
            ("EMS activated", "not recorded" if ems["activated"] is None else self.text(ems["activated"])),
            ("EMS called before dispatch", self.text(ems["called_before_dispatch"])),
            ("911 called", self.time(ems.get("called_at"))),
            ("EMS agency", self.text(ems["agency"])),
            ("EMS arrived", self.time(ems["arrived_at"])),
            ("Hand-off organisation", self.text(what["handoff"]["organisation"])),
            ("Hand-off receiving person", self.text(what["handoff"]["receiving_person"])),
        ]
        return "What", rows

    def follow_up(self, task: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A follow-up task's rows: what became of it, and its note when one was left."""
        status = TASK_STATUS_WORDS.get(task["status"], words(task["status"]))
        if task.get("outcome"):
            status += f": {words(task['outcome'])}"
        if task.get("completed_at"):
            status += f", {self.time(task['completed_at'])}"
            status += f" by {task['completed_by']}" if task.get("completed_by") else ""
        assignee = task.get("assignee_name") or ("assigned" if task["assignee_id"] else "unassigned")
        label = f"Follow-up {task['task_code']}" if task.get("task_code") else "Follow-up"
        rows = [(f"{label}: {task['title']}", f"{status}; due {self.time(task['due_at'])}; {assignee}")]
        if task.get("note"):
            rows.append((f"{label}, note", task["note"]))
        return rows

    def outcome(self) -> Section:
        outcome = self.doc.outcome
        rows = [
            ("Disposition", self.text(outcome["disposition"])),
            ("Follow-up plan", self.text(outcome["follow_up_plan"])),
        ]
        for task in outcome["follow_ups"]:
            rows += self.follow_up(task)
        plan = outcome["safety_plan"]
        if plan is None:
            rows.append(("Safety plan", "—"))
        else:
            rows += [(f"Safety plan {label}", self.text(plan.get(key))) for key, label in SAFETY_STEPS]
        return "Outcome", rows

    def minutes(self) -> Section:
        minutes = self.doc.minutes
        return "Minutes", [
            ("Travel", fmt_minutes(minutes["travel"])),
            ("On scene", fmt_minutes(minutes["on_scene"])),
            ("Documentation", fmt_minutes(minutes["documentation"])),
            ("Language", self.text(minutes["language"])),
            ("Interpreter used", self.text(minutes["interpreter_used"])),
        ]

    def notes(self) -> Section:
        rows = [(f"{self.time(note['at'])}, {note['by']}", note["text"]) for note in self.doc.notes]
        return "Notes", rows or [("Notes", "none recorded")]

    def sign_off(self) -> Section:
        sign = self.doc.sign_off
        decision = DECISION_WORDS.get(sign["decision"] or "", sign["decision"])
        return "Sign-off", [
            ("Status", words(self.doc.status)),
            ("Attested by", f"{sign['attested_by']} ({words(sign['attester_role'])})" if sign["attested_by"] else "—"),
            ("Attested at", self.time(sign["attested_at"])),
            ("Statement", self.text(sign["statement"])),
            ("Director review", f"{decision} by {sign['signed_off_by']}" if sign["signed_off_by"] else "—"),
            ("Reviewed at", self.time(sign["signed_off_at"])),
            ("Director comment", self.text(sign["comment"])),
        ]


def document_sections(doc: Documentation, zone: tzinfo = UTC) -> list[Section]:
    """The documentation as titled lists of (label, text), times in ``zone``; missing values read '—'."""
    layout = _Layout(doc, zone)
    sections = [layout.when(), layout.where(), layout.who(), layout.what(), layout.outcome(), layout.minutes()]
    sections.append(layout.notes())
    if doc.part2_disclosures:
        disclosures = [(f"Disclosure {i}", layout.text(d)) for i, d in enumerate(doc.part2_disclosures, start=1)]
        sections.append(("Emergency disclosures (42 CFR 2.51)", disclosures))
    sections.append(layout.sign_off())
    return sections
