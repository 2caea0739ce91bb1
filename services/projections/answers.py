"""The shapes of what the projections answer: a board row, a task row, timeline entries, a task's summary in
the documentation, with names put to responder ids and times in the organisation's zone (``Telling``). Pure
functions of read-model rows and events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.projections.domain.documentation import StaffInfo
from services.projections.domain.entries import PLAIN, timeline_entries
from services.projections.domain.followups import RULE_TITLES, TaskState
from services.projections.domain.messages import DeliveryStatus
from services.projections.domain.progress import DispatchStage, RecordedEvent, SlaTargets, stage_words
from services.projections.domain.telling import Telling
from services.projections.stores import parse_time

TASK_SUMMARY_FIELDS = (
    "task_id",
    "task_code",
    "rule",
    "title",
    "owner_role",
    "assignee_id",
    "due_at",
    "status",
    "outcome",
    "note",
    "completed_at",
    "completed_by",
)
"""What the documentation says of each follow-up task (``TaskState`` attributes, in this order)."""


def task_summary(task: TaskState) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_SUMMARY_FIELDS}


def entry_dicts(
    events: Sequence[RecordedEvent], telling: Telling = PLAIN, statuses: Iterable[DeliveryStatus] = ()
) -> list[dict[str, Any]]:
    """One incident's timeline entries, one per event in stream order (a follow-up command its task refused shows
    as refused). Besides the event's own fields, each says when in the organisation's zone (``time_local``), the
    channel in words (``how``), and for a message's reports which message row they fold into (``folded_into``);
    a message row lists what became of it (``outcomes``)."""
    entries = timeline_entries([r.event for r in events], telling, statuses)
    return [
        {
            "event_id": recorded.event.id,
            "type": recorded.event.type,
            "occurred_at": recorded.event.occurred_at,
            "recorded_at": recorded.recorded_at,
            "stream_sequence": recorded.sequence,
            "actor": entry.actor,
            "channel": entry.channel,
            "summary": entry.summary,
            "details": entry.details,
            "sla_breach": False,
            **readable(telling, recorded.event.occurred_at, entry.how),
            "folded_into": entry.folded_into,
            "outcomes": [
                {
                    "status": o.words,
                    "detail": o.detail,
                    "at": o.at,
                    "time_local": telling.clock(o.at),
                    "failed": o.failed,
                }
                for o in entry.outcomes
            ],
        }
        for recorded, entry in zip(events, entries, strict=True)
    ]


def readable(telling: Telling, at: datetime, how: str) -> dict[str, Any]:
    """The words a page shows for an entry's time and channel."""
    return {
        "time_local": telling.clock(at),
        "clock_local": telling.short_clock(at),
        "day_local": telling.day(at),
        "how": how,
    }


def sla_breach_entry(at: datetime, summary: str, telling: Telling = PLAIN) -> dict[str, Any]:
    """The timeline entry the projections add where an SLA target was missed (no event records that)."""
    return {
        "event_id": None,
        "type": "sla.breached",
        "occurred_at": at,
        "recorded_at": None,
        "stream_sequence": None,
        "actor": "workspace",
        "channel": "system",
        "summary": summary,
        "details": {},
        "sla_breach": True,
        **readable(telling, at, "system"),
        "folded_into": None,
        "outcomes": [],
    }


def sla_state(row: dict[str, Any], targets: SlaTargets, now: datetime) -> str | None:
    """The on-scene SLA of a board row at ``now``: met, breached, pending, not_applicable (None: not known)."""
    reported = parse_time(row["reported_at"])
    on_scene = parse_time(row["on_scene_at"])
    if reported is None or not row["priority"]:
        return None
    due = reported + targets.on_scene(row["priority"])
    if on_scene is not None:
        return "met" if on_scene <= due else "breached"
    if row["status"] == "cancelled":
        return "not_applicable"
    ended = parse_time(row["closed_at"]) or now
    return "breached" if ended > due else ("pending" if row["status"] == "open" else "not_applicable")


def board_row(row: dict[str, Any], targets: SlaTargets, now: datetime, telling: Telling = PLAIN) -> dict[str, Any]:
    """One incident on the board: what, where, when, how far the response got (``dispatch``), SLA, documentation."""
    reported = parse_time(row["reported_at"])
    dispatch = dispatch_words(row.get("dispatch") or {}, telling)
    return {
        "incident_id": row["incident_id"],
        "short_code": row["short_code"],
        "kind": row["kind"],
        "priority": row["priority"],
        "zone": row["zone"],
        "location": row.get("location"),
        "status": row["status"],
        "reported_at": reported,
        "reported_local": telling.brief(reported, now) if reported else None,
        "acknowledged_at": parse_time(row["acknowledged_at"]),
        "on_scene_at": parse_time(row["on_scene_at"]),
        "closed_at": parse_time(row["closed_at"]),
        "escalations": row["escalations"],
        "unfilled": bool(row["unfilled"]),
        "dispatch": dispatch,
        "field": field_words(row.get("field") or {}, telling, now),
        "documentation": row["doc_status"],
        "gaps": row["gaps"],
        "sla": sla_state(row, targets, now),
    }


def dispatch_words(facts: dict[str, Any], telling: Telling) -> dict[str, Any]:
    """The board's dispatch cell: the stage (a code, for colour and sorting) and what it says, with names."""
    stage = DispatchStage(facts.get("stage") or DispatchStage.WAITING.value)
    names = {key: [telling.name(UUID(r)) for r in facts.get(key, [])] for key in ("accepted", "en_route", "on_scene")}
    said = stage_words(stage, step=facts.get("step", 0), alarm_repeats=facts.get("alarm_repeats", 0), **names)
    return {"stage": stage.value, "words": said}


def field_words(facts: dict[str, Any], telling: Telling, now: datetime) -> dict[str, Any]:
    """The board's field cell: each responder's ETA ('ETA 14:32') until on scene, and their running check-in
    ('check-in due 14:47', or 'CHECK-IN MISSED' since a missed one was due). Names only when more than one
    person is in it. Times in the organisation's zone."""
    etas = {UUID(r): parse_time(at) for r, at in (facts.get("etas") or {}).items()}
    check_ins = {UUID(r): c for r, c in (facts.get("check_ins") or {}).items()}
    named = len(set(etas) | set(check_ins)) > 1
    lines: list[dict[str, Any]] = []
    for responder_id, at in sorted(etas.items(), key=lambda item: str(item[0])):
        lines.append({"missed": False, "text": f"ETA {_clock(telling, at, now)}", "who": responder_id})
    for responder_id, check_in in sorted(check_ins.items(), key=lambda item: str(item[0])):
        due = _clock(telling, parse_time(check_in["due_at"]), now)
        text = f"CHECK-IN MISSED (due {due})" if check_in["missed"] else f"check-in due {due}"
        lines.append({"missed": bool(check_in["missed"]), "text": text, "who": responder_id})
    for line in lines:
        who = line.pop("who")
        line["text"] = f"{telling.name(who)}: {line['text']}" if named else line["text"]
    return {"lines": lines, "check_in_missed": any(line["missed"] for line in lines)}


def _clock(telling: Telling, at: datetime | None, now: datetime) -> str:
    """'14:32' on the same local day as ``now``; else with its date."""
    if at is None:
        return "?"
    return (
        telling.local(at).strftime("%H:%M")
        if telling.local(at).date() == telling.local(now).date()
        else (telling.dated(at))
    )


def board_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unfilled incidents and missed check-ins first, then the rest as they came (newest first)."""
    return sorted(rows, key=lambda row: not (row["unfilled"] or row.get("field", {}).get("check_in_missed")))


def task_row(
    row: dict[str, Any], now: datetime, staff: dict[UUID, StaffInfo], incident: str | None = None
) -> dict[str, Any]:
    """A follow-up task as the API and the tasks page give it; ``incident``: what a person calls its incident
    ('incident 4821')."""
    due = parse_time(row["due_at"])
    assignee = UUID(row["assignee_id"]) if row["assignee_id"] else None
    info = staff.get(assignee) if assignee else None
    return {
        "task_id": row["task_id"],
        "incident_id": row["incident_id"],
        "incident": incident,
        "rule": row["rule"],
        "title": RULE_TITLES.get(row["rule"], row["rule"]),
        "owner_role": row["owner_role"],
        "assignee_id": row["assignee_id"],
        "assignee_name": info.name if info else None,
        "priority": row["priority"],
        "task_code": row["task_code"],
        "status": row["status"],
        "created_at": parse_time(row["created_at"]),
        "due_at": due,
        "deadline_at": parse_time(row["deadline_at"]),
        "completed_at": parse_time(row["completed_at"]),
        "overdue": row["status"] == "open" and due is not None and now > due,
        "overdue_notices": row["overdue_count"],
        "outcome": row["outcome"],
        "note": row.get("note"),
        "completed_by": row.get("completed_by"),
        "basis": row.get("basis"),
        "history": row.get("history", []),
        "attempts": row.get("attempts", []),
    }
