"""One incident's dispatch told as events with explicit times, beyond the plain response of ``Story``: pages that
time out and climb the ladder, reminders and calls, the ladder running out, the NOBODY ACCEPTED alarm and its end,
and what the notifier and the phone network report for each message. For the board, timeline and audit tests and
for the screenshots (tests/e2e/test_board_unfilled_browser.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID, uuid4

from services.contract.events import (
    AlarmRecipient,
    CallPlaced,
    CallPlacedData,
    DispatchAlarmRaised,
    DispatchAlarmRaisedData,
    DispatchAlarmStopped,
    DispatchAlarmStoppedData,
    DispatchEscalated,
    DispatchEscalatedData,
    DispatchTimedOut,
    DispatchTimedOutData,
    DispatchUnfilled,
    DispatchUnfilledData,
    DispatchWithdrawn,
    DispatchWithdrawnData,
    Envelope,
    NotificationDropped,
    NotificationDroppedData,
    NotificationRequested,
    NotificationRequestedData,
    Reporter,
    Role,
    SmsSent,
    SmsSentData,
    SmsStatusUpdated,
    SmsStatusUpdatedData,
    new_event,
)
from tests.integration.test_projections import Person, Story, sid

Channel = Literal["sms", "voice"]


def director() -> Person:
    """The clinical director, on the roster (the workspace's ``dr-director`` credential names nobody on it)."""
    return Person("Dana Director", Role.DIRECTOR, phone="+15550199005")


@dataclass
class LadderStory(Story):
    """A ``Story`` whose messages can be followed to the phone: ``sent`` keeps each text's SID for ``delivered``."""

    sent: dict[UUID, str] = field(default_factory=dict)  # notification id -> message SID
    relation: str | None = "friend"
    delivery_minutes: float | None = None
    """When set, each text is reported delivered this long after it was sent (else only by ``delivered``)."""
    address: str = "1701 Wynkoop St"

    def reported(self, address: str | None = None) -> Envelope:
        """Reported by the hotline; the reporter's relation as ``relation`` says (None: not given)."""
        event = super().reported(address or self.address)
        reporter = Reporter(channel="hotline", relation=self.relation, callback="+15550188001")
        return event.model_copy(update={"data": event.data.model_copy(update={"reporter": reporter})})

    def message(
        self,
        person: Person,
        template: str,
        minutes: float,
        params: dict[str, Any] | None = None,
        channel: Channel = "sms",
        page_id: UUID | None = None,
        outcome: Literal["sent", "dropped"] = "sent",
    ) -> list[Envelope]:
        """A message to ``person`` and what the notifier reported for it: sent (or the call placed), or dropped."""
        notification_id = uuid4()
        request = NotificationRequestedData(
            notification_id=notification_id,
            incident_id=self.incident_id,
            page_id=page_id,
            to=person.phone,
            channel=channel,
            template=template,
            params=params if params is not None else {"priority": self.priority.value, "code": self.code},
            priority=self.priority,
        )
        events = [self._event(NotificationRequested, request, minutes)]
        if outcome == "dropped":
            dropped = NotificationDroppedData(
                notification_id=notification_id,
                page_id=page_id,
                to=person.phone,
                channel=channel,
                template=template,
                reason="page_accepted",
            )
            return [*events, self._event(NotificationDropped, dropped, minutes + 0.05, "notifier")]
        if channel == "voice":
            placed = CallPlacedData(
                notification_id=notification_id, call_sid="CA" + uuid4().hex, to=person.phone, status="queued"
            )
            return [*events, self._event(CallPlaced, placed, minutes + 0.05, "notifier")]
        data = SmsSentData(
            notification_id=notification_id, message_sid=sid(), to=person.phone, status="queued", segments=1
        )
        return [*events, *self._sent(self._event(SmsSent, data, minutes + 0.05, "notifier"))]

    def _sent(self, sent: Envelope) -> list[Envelope]:
        """A text the notifier sent, remembered for ``delivered``; and its delivery, when ``delivery_minutes``."""
        self.sent[sent.data.notification_id] = sent.data.message_sid
        if self.delivery_minutes is None:
            return [sent]
        after = (sent.occurred_at - self.start).total_seconds() / 60 + self.delivery_minutes
        return [sent, self._status(sent.data.message_sid, after, "delivered", None)]

    def _status(self, message_sid: str, minutes: float, status: str, error_code: int | None) -> Envelope:
        return new_event(
            SmsStatusUpdated,
            SmsStatusUpdatedData(message_sid=message_sid, status=status, error_code=error_code),
            event_id=uuid4(),
            occurred_at=self.at(minutes),
            producer="intake_gateway",
        )

    def delivered(self, minutes: float, status: str = "delivered", error_code: int | None = None) -> list[Envelope]:
        """The phone network's status for every text sent so far (no incident on it: matched by its SID)."""
        return [self._status(message_sid, minutes, status, error_code) for message_sid in self.sent.values()]

    def page(self, person: Person, minutes: float, step: int = 1) -> list[Envelope]:
        """Paged at ``step``; the page text sent (and followed by ``delivered``)."""
        offered, *requested, sent = self.offered(person, minutes, step=step)
        rung = person.role.value if person.role.value in ("supervisor", "director") else "candidates"
        why = f"{self.priority.value}: best 2 on call" if rung == "candidates" else f"escalation: the on-call {rung}"
        reason = offered.data.reason.model_copy(
            update={"rung": rung, "team_role": "primary" if rung == "candidates" else rung, "rule": why}
        )
        offered = offered.model_copy(update={"data": offered.data.model_copy(update={"reason": reason})})
        return [offered, *requested, *self._sent(sent)]

    def timed_out(self, person: Person, minutes: float) -> Envelope:
        answer = self._answer(person)
        answer.pop("message_sid")
        return self._event(DispatchTimedOut, DispatchTimedOutData(**answer, deadline=self.at(minutes)), minutes)

    def withdrawn(self, person: Person, minutes: float) -> Envelope:
        answer = self._answer(person)
        answer.pop("message_sid")
        return self._event(DispatchWithdrawn, DispatchWithdrawnData(**answer, reason="covered"), minutes)

    def climbed(self, from_step: int, to_step: int, rung: str, minutes: float) -> Envelope:
        data = DispatchEscalatedData(
            incident_id=self.incident_id, from_step=from_step, to_step=to_step, rung=rung, reason="timed_out"
        )
        return self._event(DispatchEscalated, data, minutes)

    def unfilled(self, minutes: float, step: int, shortfalls: list[str], rung: str = "director") -> Envelope:
        data = DispatchUnfilledData(
            incident_id=self.incident_id,
            reason="every step was tried" if "ladder_exhausted" in shortfalls else "nobody more to page",
            shortfalls=shortfalls,
            step=step,
            rung=rung,
        )
        return self._event(DispatchUnfilled, data, minutes)

    def alarm_raised(self, minutes: float, told: list[Person], repeat: int = 1) -> list[Envelope]:
        """NOBODY ACCEPTED: texted (and, for P1, called) to each of ``told``, with the notifier's reports."""
        voice = self.priority.value == "P1"
        data = DispatchAlarmRaisedData(
            incident_id=self.incident_id,
            priority=self.priority,
            repeat=repeat,
            minutes_since_report=int(minutes),
            notified=[AlarmRecipient(responder_id=p.responder_id, role=p.role.value) for p in told],
            voice=voice,
            next_at=self.at(minutes + 5),
        )
        params = {"priority": self.priority.value, "code": self.code, "kind": self.kind.value}
        params |= {"minutes_since_report": int(minutes), "repeat": repeat}
        messages = []
        for person in told:
            messages += self.message(person, "nobody_accepted", minutes, params)
            if voice:
                messages += self.message(person, "nobody_accepted_call", minutes, params, channel="voice")
        return [self._event(DispatchAlarmRaised, data, minutes), *messages]

    def alarm_stopped(self, minutes: float, told: list[Person], repeats: int = 1) -> list[Envelope]:
        data = DispatchAlarmStoppedData(incident_id=self.incident_id, reason="accepted", repeats=repeats)
        notices = []
        for person in told:
            notices += self.message(person, "alarm_answered", minutes, {"code": self.code, "reason": "accepted"})
        return [self._event(DispatchAlarmStopped, data, minutes), *notices]


def nobody_accepted(story: LadderStory, people: dict[str, Person], through: float = 4.5) -> list[Envelope]:
    """An overdose paged to the clinician and the peer coach, reminded and called, then the supervisor, then the
    director: nobody answers, the ladder runs out at ``through`` minutes and the alarm sounds."""
    clinician, coach, supervisor = people["clinician"], people["coach"], people["supervisor"]
    director = people["director"]
    reminder = {"priority": story.priority.value, "code": story.code}
    return [
        story.reported(),
        *story.page(clinician, 0.1),
        *story.page(coach, 0.1),
        *story.message(clinician, "page_reminder", 0.6, reminder, page_id=story.pages[clinician.responder_id]),
        *story.message(clinician, "voice_page", 1.0, reminder, channel="voice"),
        story.timed_out(clinician, 1.5),
        story.timed_out(coach, 1.5),
        story.climbed(1, 2, "supervisor", 1.5),
        *story.page(supervisor, 1.5, step=2),
        story.timed_out(supervisor, 3.0),
        story.climbed(2, 3, "director", 3.0),
        *story.page(director, 3.0, step=3),
        story.timed_out(director, through),
        story.unfilled(through, 3, ["ladder_exhausted"]),
        *story.alarm_raised(through, [supervisor, director]),
    ]
