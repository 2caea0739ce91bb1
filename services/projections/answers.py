"""The shapes of what the projections answer: a board row, a task row, timeline entries, a task's summary in
the documentation, with names put to responder ids. Pure functions of read-model rows and events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.projections.domain.documentation import StaffInfo
from services.projections.domain.entries import timeline_entries
from services.projections.domain.followups import RULE_TITLES, TaskState
from services.projections.domain.progress import RecordedEvent, SlaTargets
from services.projections.stores import parse_time

RESPONDER_MENTION = re.compile(r"responder ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


TASK_SUMMARY_FIELDS = ("task_id", "rule", "title", "owner_role", "assignee_id", "due_at", "status", "outcome")
"""What the documentation says of each follow-up task (``TaskState`` attributes, in this order)."""


def task_summary(task: TaskState) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_SUMMARY_FIELDS}


def entry_dicts(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """One incident's timeline entries, in stream order (a follow-up command its task refused shows as refused)."""
    entries = timeline_entries([r.event for r in events])
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
        }
        for recorded, entry in zip(events, entries, strict=True)
    ]


def sla_breach_entry(at: datetime, summary: str) -> dict[str, Any]:
    """The timeline entry the projections add where an SLA target was missed (no event records that)."""
    return {
        "event_id": None,
        "type": "sla.breached",
        "occurred_at": at,
        "recorded_at": None,
        "stream_sequence": None,
        "actor": "projections",
        "channel": "system",
        "summary": summary,
        "details": {},
        "sla_breach": True,
    }


def name_actor(text: str, staff: dict[UUID, StaffInfo]) -> str:
    """Every 'responder <uuid>' in ``text`` -> 'Name (role)' when the roster knows them."""

    def named(match: re.Match[str]) -> str:
        info = staff.get(UUID(match[1]))
        return f"{info.name} ({info.role.replace('_', ' ')})" if info else match[0]

    return RESPONDER_MENTION.sub(named, text)


def board_row(row: dict[str, Any], targets: SlaTargets, now: datetime) -> dict[str, Any]:
    reported = parse_time(row["reported_at"])
    on_scene = parse_time(row["on_scene_at"])
    sla_state = None
    if reported is not None and row["priority"]:
        due = reported + targets.on_scene(row["priority"])
        if on_scene is not None:
            sla_state = "met" if on_scene <= due else "breached"
        elif row["status"] == "cancelled":
            sla_state = "not_applicable"
        else:
            ended = parse_time(row["closed_at"]) or now
            sla_state = "breached" if ended > due else ("pending" if row["status"] == "open" else "not_applicable")
    return {
        "incident_id": row["incident_id"],
        "short_code": row["short_code"],
        "kind": row["kind"],
        "priority": row["priority"],
        "zone": row["zone"],
        "status": row["status"],
        "reported_at": reported,
        "acknowledged_at": parse_time(row["acknowledged_at"]),
        "on_scene_at": on_scene,
        "closed_at": parse_time(row["closed_at"]),
        "escalations": row["escalations"],
        "unfilled": bool(row["unfilled"]),
        "documentation": row["doc_status"],
        "gaps": row["gaps"],
        "sla": sla_state,
    }


def task_row(row: dict[str, Any], now: datetime, staff: dict[UUID, StaffInfo]) -> dict[str, Any]:
    due = parse_time(row["due_at"])
    assignee = UUID(row["assignee_id"]) if row["assignee_id"] else None
    info = staff.get(assignee) if assignee else None
    return {
        "task_id": row["task_id"],
        "incident_id": row["incident_id"],
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
        "basis": row.get("basis"),
        "history": row.get("history", []),
    }
