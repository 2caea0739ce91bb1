"""The check-ins' outbox: each stored check-in, pairs-only and field-prompt event -> its contract event and texts
(``CHECK_IN_OUTBOX_HANDLERS``, joined into ``contract_outbox.OUTBOX_HANDLERS``). The use cases are in
``check_ins.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import Repository

from services.contract.events import Envelope, derived_id
from services.contract.field import (
    CheckInConfirmed,
    CheckInConfirmedData,
    CheckInDuress,
    CheckInDuressData,
    CheckInEnded,
    CheckInEndedData,
    CheckInMissed,
    CheckInMissedData,
    CheckInPrompted,
    CheckInPromptedData,
    CheckInStarted,
    CheckInStartedData,
    EmsOverdue,
    EmsOverdueData,
    EtaOverdue,
    EtaOverdueData,
    LastKnownLocation,
    PairWait,
    PairWaitData,
)
from services.contract.templates import place_ref
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.outbox_events import contract_event, notification_requested


def place_params(last_known: dict[str, Any] | None) -> dict[str, str | None]:
    """The place parameters of an alert: references to the gazetteer entry and zone of the last known location."""
    if last_known is None or last_known["source"] == "home_base":
        return {"place": None, "zone": None}
    name, zone = last_known.get("place_name"), last_known.get("zone")
    return {"place": place_ref(name) if name else None, "zone": place_ref(zone) if zone else None}


def last_known_location(last_known: dict[str, Any] | None, at: datetime) -> LastKnownLocation | None:
    if last_known is None:
        return None
    return LastKnownLocation(
        lat=last_known["lat"],
        lon=last_known["lon"],
        as_of=last_known["as_of"] or at,
        source=last_known["source"],
        place_name=last_known.get("place_name"),
    )


class CheckInOutbox:
    """Each stored check-in or field event -> its contract event and the texts (and calls) it sends."""

    def __init__(self, repository: Repository, time_zone: str = "UTC") -> None:
        self.repository = repository
        self.zone = ZoneInfo(time_zone)

    def started(self, stored: Any) -> Sequence[Envelope]:
        data = CheckInStartedData(
            **self._ids(stored),
            code=stored.code,
            channel=stored.channel,
            minutes=stored.minutes,
            due_at=stored.due_at,
        )
        return (contract_event(CheckInStarted, data, stored, stored.originator_id),)

    def prompted(self, stored: Any) -> Sequence[Envelope]:
        state = self._state(stored)
        data = CheckInPromptedData(**self._ids(stored), code=state["code"], due_at=state["due_at"])
        params = {"code": state["code"], "due": self._clock_time(state["due_at"])}
        text = self._to_responder(stored, state, "checkin_prompt", params)
        return (contract_event(CheckInPrompted, data, stored, stored.originator_id), text)

    def confirmed(self, stored: Any) -> Sequence[Envelope]:
        """OK, and a duress word: the same event and the same text."""
        state = self._state(stored)
        data = CheckInConfirmedData(
            **self._ids(stored),
            code=state["code"],
            channel=stored.channel,
            message_sid=stored.message_sid,
            next_due_at=stored.due_at,
        )
        params = {"code": state["code"], "next_due": self._clock_time(stored.due_at)}
        text = self._to_responder(stored, state, "checkin_confirmed", params)
        return (contract_event(CheckInConfirmed, data, stored, stored.originator_id), text)

    def missed(self, stored: Any) -> Sequence[Envelope]:
        state = self._state(stored)
        code = state["code"]
        data = CheckInMissedData(
            **self._ids(stored),
            code=code,
            step=stored.step,
            due_at=state["due_at"],
            minutes_overdue=stored.minutes_overdue,
            last_known=last_known_location(stored.last_known, stored.at),
            notified=[UUID(p["responder_id"]) for p in stored.notified],
        )
        event = contract_event(CheckInMissed, data, stored, stored.originator_id)
        if stored.step in ("reminder", "call"):
            template, channel = ("checkin_reminder", "sms") if stored.step == "reminder" else ("checkin_call", "voice")
            return (event, self._to_responder(stored, state, template, {"code": code}, channel))
        about = {"responder_name": stored.responder_name, "code": code, **place_params(stored.last_known)}
        if stored.step == "supervisor_paged":
            template, params = "checkin_missed_alert", {**about, "minutes_overdue": stored.minutes_overdue}
        else:
            template, params = "checkin_call_911", about
        return (event, *self._to_people(stored, stored.notified, template, params))

    def duress(self, stored: Any) -> Sequence[Envelope]:
        code = self._incident_at(stored).on_it.get(str(stored.responder_id))
        data = CheckInDuressData(
            **self._ids(stored),
            code=code or "0000",
            last_known=last_known_location(stored.last_known, stored.at),
            notified=[UUID(p["responder_id"]) for p in stored.notified],
        )
        params = {"responder_name": stored.responder_name, "code": code, **place_params(stored.last_known)}
        alerts = self._to_people(stored, stored.notified, "duress_alert", params)
        return (contract_event(CheckInDuress, data, stored, stored.originator_id), *alerts)

    def ended(self, stored: Any) -> Sequence[Envelope]:
        state = self._state(stored)
        data = CheckInEndedData(**self._ids(stored), code=state["code"], reason=stored.reason, channel=stored.channel)
        event = contract_event(CheckInEnded, data, stored, stored.originator_id)
        if stored.reason != "clear":
            return (event,)  # DONE is confirmed as done; a cancellation or completion tells the responder already
        return (event, self._to_responder(stored, state, "checkin_cleared", {"code": state["code"]}))

    def pair_wait(self, stored: Any) -> Sequence[Envelope]:
        incident = self._incident_at(stored)
        supervisor = stored.supervisor
        data = PairWaitData(
            **self._ids(stored),
            code=stored.code,
            rule=stored.rule,
            supervisor_id=UUID(supervisor["responder_id"]) if supervisor else None,
        )
        page_id = incident.page_by_code(stored.responder_id, stored.code)
        page = incident.page(page_id) if page_id else None
        texts = []
        if page is not None:
            state = {"phone": page.phone, "language": page.language}
            texts.append(self._to_responder(stored, state, "pair_wait", {"code": stored.code}))
        scene = {"source": "scene", "place_name": getattr(incident, "place", None), "zone": incident.zone}
        about = {"responder_name": stored.responder_name, "code": stored.code, **place_params(scene)}
        texts += self._to_people(stored, [supervisor] if supervisor else [], "pair_alert", about)
        return (contract_event(PairWait, data, stored, stored.originator_id), *texts)

    def eta_overdue(self, stored: Any) -> Sequence[Envelope]:
        supervisor = stored.supervisor
        code = self._incident_at(stored).on_it.get(str(stored.responder_id), "0000")
        data = EtaOverdueData(
            **self._ids(stored),
            code=code,
            eta_at=stored.eta_at,
            minutes_late=stored.minutes_late,
            supervisor_id=UUID(supervisor["responder_id"]) if supervisor else None,
        )
        params = {"responder_name": stored.responder_name, "code": code, "minutes_late": stored.minutes_late}
        texts = self._to_people(stored, [supervisor] if supervisor else [], "eta_overdue", params)
        return (contract_event(EtaOverdue, data, stored, stored.originator_id), *texts)

    def ems_overdue(self, stored: Any) -> Sequence[Envelope]:
        supervisor = stored.supervisor
        incident = self._incident_at(stored)
        data = EmsOverdueData(
            incident_id=stored.originator_id,
            since=stored.since,
            minutes_waited=stored.minutes_waited,
            supervisor_id=UUID(supervisor["responder_id"]) if supervisor else None,
        )
        params = {"code": incident.short_code, "minutes": stored.minutes_waited}
        texts = self._to_people(stored, [supervisor] if supervisor else [], "ems_overdue", params)
        return (contract_event(EmsOverdue, data, stored, stored.originator_id), *texts)

    # ---- helpers ------------------------------------------------------------------------------------

    def _incident_at(self, stored: Any) -> IncidentDispatch:
        return self.repository.get(stored.originator_id, version=stored.originator_version)

    def _state(self, stored: Any) -> dict[str, Any]:
        """The responder's check-in as it was right after ``stored``."""
        return self._incident_at(stored).check_ins[str(stored.responder_id)]

    @staticmethod
    def _ids(stored: Any) -> dict[str, UUID]:
        return {"incident_id": stored.originator_id, "responder_id": stored.responder_id}

    def _clock_time(self, at: datetime) -> str:
        return at.astimezone(self.zone).strftime("%H:%M")

    def _priority(self, stored: Any) -> str:
        return self.repository.get(stored.originator_id, version=1).priority

    def _to_responder(
        self,
        stored: Any,
        state: dict[str, Any],
        template: str,
        params: dict[str, Any],
        channel: Literal["sms", "voice"] = "sms",
    ) -> Envelope:
        return notification_requested(
            stored,
            notification_id=derived_id(stored.originator_id, stored.originator_version, template, channel),
            to=state["phone"],
            language=state["language"],
            template=template,
            params=params,
            priority=self._priority(stored),
            page_id=None,
            incident_id=stored.originator_id,
            channel=channel,
        )

    def _to_people(
        self, stored: Any, people: list[dict[str, Any]], template: str, params: dict[str, Any]
    ) -> list[Envelope]:
        """Urgent texts about a responder's safety (P1 whatever the incident's priority)."""
        return [
            notification_requested(
                stored,
                notification_id=derived_id(
                    stored.originator_id, stored.originator_version, template, to["responder_id"]
                ),
                to=to["phone"],
                language=to["language"],
                template=template,
                params=params,
                priority="P1" if template not in ("eta_overdue", "ems_overdue") else self._priority(stored),
                page_id=None,
                incident_id=stored.originator_id,
            )
            for to in people
        ]


def _via(method: Callable[[CheckInOutbox, Any], Sequence[Envelope]]) -> Callable[[Any, Any], Sequence[Envelope]]:
    """An ``OUTBOX_HANDLERS`` row: the contract outbox hands the stored event to its ``check_ins`` outbox."""
    return lambda outbox, stored: method(outbox.check_ins, stored)


CHECK_IN_OUTBOX_HANDLERS: dict[type, Callable[[Any, Any], Sequence[Envelope]]] = {
    IncidentDispatch.CheckInStarted: _via(CheckInOutbox.started),
    IncidentDispatch.CheckInPrompted: _via(CheckInOutbox.prompted),
    IncidentDispatch.CheckInConfirmed: _via(CheckInOutbox.confirmed),
    IncidentDispatch.CheckInMissed: _via(CheckInOutbox.missed),
    IncidentDispatch.DuressSignalled: _via(CheckInOutbox.duress),
    IncidentDispatch.CheckInEnded: _via(CheckInOutbox.ended),
    IncidentDispatch.PairWaitNoted: _via(CheckInOutbox.pair_wait),
    IncidentDispatch.EtaOverdueNoted: _via(CheckInOutbox.eta_overdue),
    IncidentDispatch.EmsOverdueNoted: _via(CheckInOutbox.ems_overdue),
}
"""What the contract outbox publishes for the check-in and field-deadline events (its ``OUTBOX_HANDLERS`` rows)."""
