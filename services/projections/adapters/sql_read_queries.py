"""The read side of the read-model tables: what the use cases ask of them.

Rows come back with their sealed ``body`` opened into fields of their own (an incident's ``kind``, a task's
``rule``, ``note``..., a responder's ``name``), so callers never see sealed bytes. Mixed into
``SqlReadModelStore`` (sql_read_models.py), which provides the tables, the transactions and the sealer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.projections.adapters.sql_table import where_clause
from services.projections.adapters.sql_values import Sealer
from services.projections.stores import iso


def uuid_text(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


class SqlReadModelQueries(ABC):
    """Queries over the tables ``{timeline}``, ``{incidents}``, ``{people}``, ``{tasks}``, ``{responders}``,
    ``{dead_letters}``, ``{deliveries}`` and ``{meta}``. Each raises PersistenceError when the database fails."""

    sealer: Sealer

    @abstractmethod
    def query(self, statement: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        """The rows one statement selects, in a read-only transaction of its own."""

    def incident(self, incident_id: UUID) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM {incidents} WHERE incident_id = %s", (str(incident_id),))
        return self._opened(rows[0]) if rows else None

    def incidents(
        self, *, status: str | None = None, responder_id: UUID | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Newest first; only those ``responder_id`` was involved in, when given."""
        clause, params = where_clause(
            ("i.status = %s", status),
            ("i.incident_id IN (SELECT incident_id FROM {people} WHERE responder_id = %s)", uuid_text(responder_id)),
        )
        rows = self.query(
            f"SELECT i.* FROM {{incidents}} i {clause} ORDER BY i.reported_at DESC, i.incident_id LIMIT %s",
            [*params, limit],
        )
        return [self._opened(row) for row in rows]

    def involved(self, incident_id: UUID) -> dict[UUID, str]:
        rows = self.query("SELECT responder_id, involvement FROM {people} WHERE incident_id = %s", (str(incident_id),))
        return {UUID(r["responder_id"]): r["involvement"] for r in rows}

    def tasks(
        self, *, assignee_id: UUID | None = None, incident_id: UUID | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        clause, params = where_clause(
            ("assignee_id = %s", uuid_text(assignee_id)),
            ("incident_id = %s", uuid_text(incident_id)),
            ("status = %s", status),
        )
        rows = self.query(f"SELECT * FROM {{tasks}} {clause} ORDER BY due_at, task_id", params)
        return [self._opened(r) for r in rows]

    def task(self, task_id: UUID) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM {tasks} WHERE task_id = %s", (str(task_id),))
        return self._opened(rows[0]) if rows else None

    def _opened(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its sealed ``body`` opened into fields of its own."""
        body = self.sealer.unseal(row.pop("body"))
        return row | body

    def overdue_by_priority(self, now: datetime) -> dict[str, int]:
        """Open follow-up tasks past their due time at ``now``, counted per priority."""
        rows = self.query(
            "SELECT priority, COUNT(*) AS n FROM {tasks} WHERE status = %s AND due_at < %s GROUP BY priority",
            ("open", iso(now)),
        )
        return {str(row["priority"]): int(row["n"]) for row in rows}

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The newest dead letters first, sealed columns opened."""
        rows = self.query("SELECT * FROM {dead_letters} ORDER BY seq DESC LIMIT %s", (limit,))
        return [self._opened(row) for row in rows]

    def responders(self) -> list[dict[str, Any]]:
        """By name (sealed: sorted here, not by the database)."""
        rows = [self._opened(row) for row in self.query("SELECT * FROM {responders}")]
        return sorted(rows, key=lambda row: (row["name"], row["responder_id"]))

    def delivery_statuses(self, message_sids: Sequence[str]) -> list[dict[str, Any]]:
        """What the phone network said of these texts, in stream order."""
        if not message_sids:
            return []
        marks = ", ".join(["%s"] * len(message_sids))
        return self.query(
            f"SELECT * FROM {{deliveries}} WHERE message_sid IN ({marks}) ORDER BY seq", list(message_sids)
        )

    def incident_ids_with_code(self, short_code: str) -> list[str]:
        """Every incident that had this short code (codes are reused over time), newest first."""
        rows = self.query(
            "SELECT incident_id FROM {incidents} WHERE short_code = %s ORDER BY reported_at DESC", (short_code,)
        )
        return [row["incident_id"] for row in rows]

    def record_labels(self, record_ids: Sequence[str]) -> dict[str, str]:
        """Record id -> what a person calls it: 'incident 4821', 'follow-up 7400 (incident 4821)'."""
        if not record_ids:
            return {}
        ids = list(dict.fromkeys(record_ids))
        marks = ", ".join(["%s"] * len(ids))
        codes = {
            row["incident_id"]: row["short_code"]
            for row in self.query(
                f"SELECT incident_id, short_code FROM {{incidents}} WHERE incident_id IN ({marks})", ids
            )
        }
        labels = {incident: f"incident {code}" for incident, code in codes.items() if code}
        tasks = self.query(
            f"SELECT t.task_id, t.task_code, i.short_code FROM {{tasks}} t "
            f"LEFT JOIN {{incidents}} i ON i.incident_id = t.incident_id WHERE t.task_id IN ({marks})",
            ids,
        )
        for row in tasks:
            of = f" (incident {row['short_code']})" if row["short_code"] else ""
            labels[row["task_id"]] = f"follow-up {row['task_code']}{of}"
        return labels

    def metric_rows(self, since: datetime | None, until: datetime | None) -> tuple[list[dict], list[dict]]:
        """Incidents reported, and tasks due, in [since, until) (either end open when None)."""
        clause, params = where_clause(
            ("reported_at IS NOT NULL", None), ("reported_at >= %s", iso(since)), ("reported_at < %s", iso(until))
        )
        incidents = [self._opened(r) for r in self.query(f"SELECT * FROM {{incidents}} {clause}", params)]
        clause, params = where_clause(("due_at >= %s", iso(since)), ("due_at < %s", iso(until)))
        tasks = self.query(f"SELECT due_at, status, completed_at FROM {{tasks}} {clause}", params)
        return incidents, tasks

    def kits_left_rows(self, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
        """Kits left behind in [since, until), from the incidents' timelines (the zone is sealed there)."""
        clause, params = where_clause(
            ("type = %s", "naloxone.left_behind"), ("occurred_at >= %s", iso(since)), ("occurred_at < %s", iso(until))
        )
        rows = self.query(f"SELECT incident_id, occurred_at, body FROM {{timeline}} {clause} ORDER BY seq", params)
        kits = []
        for row in rows:
            data = self.sealer.unseal(row["body"])["data"]
            at = datetime.fromisoformat(row["occurred_at"])
            kits.append(
                {"incident_id": row["incident_id"], "occurred_at": at, "count": data["count"], "zone": data.get("zone")}
            )
        return kits

    def events_of_types(self, types: Sequence[str]) -> list[dict[str, Any]]:
        """Every incident event of ``types`` on the timelines, in stream order: ``incident_id``, ``type``,
        ``occurred_at`` (a datetime) and ``data`` (unsealed). For the outcome figures (issue 19)."""
        marks = ", ".join("%s" for _ in types)
        rows = self.query(
            f"SELECT incident_id, type, occurred_at, body FROM {{timeline}} WHERE type IN ({marks}) ORDER BY seq",
            tuple(types),
        )
        return [
            {
                "incident_id": row["incident_id"],
                "type": row["type"],
                "occurred_at": datetime.fromisoformat(row["occurred_at"]),
                "data": self.sealer.unseal(row["body"])["data"],
            }
            for row in rows
        ]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every read-model table, sealed columns opened: two stores with equal dumps are equal."""
        result: dict[str, list[dict[str, Any]]] = {}
        orders = {
            "timeline": "seq",
            "incidents": "incident_id",
            "people": "incident_id, responder_id",
            "tasks": "task_id",
            "responders": "responder_id",
            "dead_letters": "seq",
            "deliveries": "seq",
            "meta": "key",
        }
        for name, order in orders.items():
            rows = self.query(f"SELECT * FROM {{{name}}} ORDER BY {order}")
            for row in rows:
                if "body" in row:
                    row["body"] = self.sealer.unseal(row["body"])
            result[name] = rows
        return result
