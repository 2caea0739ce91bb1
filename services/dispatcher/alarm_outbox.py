"""NOBODY ACCEPTED on the stream: each sounding -> ``dispatch.alarm_raised`` and a PHI-free text (and, for P1, a
call) to each person it names; the stored event that answered it -> ``dispatch.alarm_stopped``.

What a text may say is the ``nobody_accepted`` template's: the priority, the incident's short code, its kind
(printed as a neutral label), the minutes since the report and the repeat number; never an address or anything
a reporter typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from eventsourcing.application import Repository

from services.contract.events import (
    AlarmRecipient,
    DispatchAlarmRaised,
    DispatchAlarmRaisedData,
    DispatchAlarmStopped,
    DispatchAlarmStoppedData,
    Envelope,
    derived_id,
)
from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.outbox_events import contract_event, notification_requested

StopReason = Literal["accepted", "cancelled", "disposition_recorded"]


class AlarmOutbox:
    """Reads the incident as it was at each stored event, and says what the alarm publishes for it."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def raised(self, raised: IncidentDispatch.AlarmRaised) -> Sequence[Envelope]:
        incident: IncidentDispatch = self.repository.get(raised.originator_id, version=raised.originator_version)
        data = DispatchAlarmRaisedData(
            incident_id=incident.id,
            priority=incident.priority,
            repeat=raised.repeat,
            minutes_since_report=raised.minutes_since_report,
            notified=[AlarmRecipient(responder_id=p["responder_id"], role=p["role"]) for p in raised.notified],
            voice=raised.voice,
            next_at=raised.next_at,
        )
        params = {
            "priority": incident.priority,
            "code": incident.short_code,
            "kind": incident.kind,
            "minutes_since_report": raised.minutes_since_report,
            "repeat": raised.repeat,
        }
        channels: tuple[Literal["sms", "voice"], ...] = ("sms", "voice") if raised.voice else ("sms",)
        messages = [
            notification_requested(
                raised,
                notification_id=derived_id(incident.id, raised.originator_version, "alarm", person["responder_id"], c),
                to=person["phone"],
                language=person["language"],
                template="nobody_accepted" if c == "sms" else "nobody_accepted_call",
                params=params,
                priority=incident.priority,
                page_id=None,
                incident_id=incident.id,
                channel=c,
            )
            for person in raised.notified
            for c in channels
        ]
        return (contract_event(DispatchAlarmRaised, data, raised, incident.id), *messages)

    def stopped(self, stored: Any, reason: StopReason) -> Sequence[Envelope]:
        """``dispatch.alarm_stopped`` when ``stored`` (an acceptance, the cancellation, a disposition) answered a
        sounding alarm; nothing otherwise."""
        before: IncidentDispatch = self.repository.get(stored.originator_id, version=stored.originator_version - 1)
        after: IncidentDispatch = self.repository.get(stored.originator_id, version=stored.originator_version)
        if not before.alarm_sounding() or after.alarm_sounding():
            return ()
        data = DispatchAlarmStoppedData(incident_id=after.id, reason=reason, repeats=after.alarm_repeats())
        told = (before._alarm() or {}).get("notified", [])  # the last sounding's people
        answered = [
            notification_requested(
                stored,
                notification_id=derived_id(after.id, stored.originator_version, "alarm_answered", p["responder_id"]),
                to=p["phone"],
                language=p["language"],
                template="alarm_answered",
                params={"code": after.short_code, "reason": reason},
                priority=after.priority,
                page_id=None,
                incident_id=after.id,
                channel="sms",
            )
            for p in told
        ]
        return (contract_event(DispatchAlarmStopped, data, stored, after.id), *answered)
