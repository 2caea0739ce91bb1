"""What the field reports recorded on an incident, read (``FieldReads``, a mixin of ``IncidentDispatch``): ETAs,
EMS, check-ins and the field deadlines they set. No events here: the commands that change them are the aggregate's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.dispatcher.domain.incident_pages import FieldDue


class FieldReads:
    """Reads of the field state of ``IncidentDispatch`` (its attributes below are set by its events)."""

    on_it: Any
    priority: str
    needs: list[str]
    call_911: bool
    is_closed: bool
    field: dict[str, Any] | None
    check_ins: dict[str, dict[str, Any]] | None
    field_prompts: dict[str, Any] | None
    report_time: Callable[[], datetime]

    def field_state(self) -> dict[str, Any]:
        """What the field reports recorded: ``etas`` (responder id -> ETA), ``ems_called_at``, ``ems_arrived_at``.
        Read-only for callers."""
        return getattr(self, "field", None) or new_field_state()

    def _field(self) -> dict[str, Any]:
        """The field state, made on first use (an incident stored before field reports has none)."""
        if getattr(self, "field", None) is None:
            self.field = new_field_state()
        return self.field

    def active_check_ins(self) -> dict[str, dict[str, Any]]:
        """Responder id -> their running check-in (read-only for callers)."""
        return {r: state for r, state in (getattr(self, "check_ins", None) or {}).items() if state["active"]}

    def arrived_at(self, responder_id: UUID) -> datetime | None:
        """When the responder first said they arrived (None: not yet)."""
        return self._prompts()["arrived"].get(str(responder_id))

    def field_due(self, now: datetime) -> list[FieldDue]:
        """The check-in prompts and steps, and the ETA and EMS prompts, that are due at ``now``."""
        if self.is_closed:
            return []
        due = []
        for responder_id, state in self.active_check_ins().items():
            if state["next_at"] is not None and state["next_at"] <= now:
                due.append(FieldDue("missed", UUID(responder_id)))
            elif state["prompt_at"] is not None and state["prompt_at"] <= now:
                due.append(FieldDue("prompt", UUID(responder_id)))
        for responder_id, eta_due in self._eta_deadlines().items():
            if eta_due <= now:
                due.append(FieldDue("eta_overdue", UUID(responder_id)))
        ems_due = self.ems_deadline()
        if ems_due is not None and ems_due[1] <= now:
            due.append(FieldDue("ems_overdue", None))
        return due

    def _field_deadlines(self) -> list[datetime]:
        if self.is_closed:
            return []
        times = [
            t
            for state in self.active_check_ins().values()
            for t in (state["prompt_at"], state["next_at"])
            if t is not None
        ]
        times.extend(self._eta_deadlines().values())
        if (ems_due := self.ems_deadline()) is not None:
            times.append(ems_due[1])
        return times

    def _eta_deadlines(self) -> dict[str, datetime]:
        """Responder id -> when being late against their ETA prompts the supervisor (not arrived, not prompted)."""
        grace = (getattr(self, "field_deadlines", None) or {}).get("eta_grace_minutes")
        if grace is None:
            return {}
        prompts = self._prompts()
        return {
            responder_id: eta_at + timedelta(minutes=grace)
            for responder_id, eta_at in self.field_state()["etas"].items()
            if responder_id in self.on_it
            and responder_id not in prompts["arrived"]
            and responder_id not in prompts["eta_overdue"]
        }

    def ems_deadline(self) -> tuple[datetime, datetime] | None:
        """(since, due): a P1 that needed EMS, not yet confirmed on scene nor prompted about; None otherwise.
        ``since`` is when 911 was called, or the report when the reporter had called already."""
        wait = (getattr(self, "field_deadlines", None) or {}).get("ems_confirm_minutes")
        field = self.field_state()
        if wait is None or self.priority != "P1" or "ems_now" not in self.needs or self._prompts()["ems_overdue"]:
            return None
        if field["ems_arrived_at"] is not None:
            return None
        since = field["ems_called_at"] or (self.report_time() if not self.call_911 else None)
        return (since, since + timedelta(minutes=wait)) if since is not None else None

    def _check_ins(self) -> dict[str, dict[str, Any]]:
        if getattr(self, "check_ins", None) is None:
            self.check_ins = {}
        return self.check_ins

    def _prompts(self) -> dict[str, Any]:
        """Who said they arrived, and which field prompts were sent (an incident stored before them has none)."""
        if getattr(self, "field_prompts", None) is None:
            self.field_prompts = {"arrived": {}, "eta_overdue": [], "ems_overdue": False}
        return self.field_prompts


def new_field_state() -> dict[str, Any]:
    """A new incident's field state: no ETA, EMS neither called nor arrived."""
    return {"etas": {}, "ems_called_at": None, "ems_arrived_at": None}
