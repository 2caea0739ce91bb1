"""NOBODY ACCEPTED: when an incident's ladder ran out, the people who can still get someone there are told, and
told again at an interval until someone accepts, the incident is cancelled, or a disposition is recorded.

The decisions are the domain's (``domain/ladder.py``: ``plan_alarm``, ``alarm_recipients``); this module reads
the roster cache for the people on call and records the alarm on the incident, with whom it tells, so the
outbox turns it into the same messages however late it runs. The next sounding is a deadline in the store, fired
by the same ticker as the ladder's, so a restart loses none.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from services.dispatcher.domain.incident import IncidentDispatch
from services.dispatcher.domain.ladder import alarm_recipients, plan_alarm
from services.dispatcher.domain.policy import AlarmPolicy
from services.dispatcher.roster_cache import RosterCache

log = logging.getLogger(__name__)


class NobodyAcceptedAlarm:
    """Sounds the NOBODY ACCEPTED alarm for an incident whose ladder ran out."""

    def __init__(self, cache: RosterCache, policy: AlarmPolicy) -> None:
        self.cache = cache
        self.policy = policy

    def sound(self, incident: IncidentDispatch, cause: UUID | None, now: datetime) -> bool:
        """Sound the alarm's next repeat for ``incident``; False when its priority sounds none (P3 by default)."""
        plan = plan_alarm(incident.priority, incident.report_time(), incident.alarm_repeats(), self.policy, now)
        if plan is None:
            return False
        cache = self.cache
        in_zone = (view for r in sorted(cache.on_call(incident.zone, now), key=str) if (view := cache.roster.get(r)))
        people = alarm_recipients(in_zone, cache.on_duty(now), cache.active_with_role("director"))
        if not people:
            log.error("NOBODY ACCEPTED: nobody on the roster to tell (no supervisor on call, no active director)")
        incident.raise_alarm(
            repeat=plan.repeat,
            minutes_since_report=plan.minutes_since_report,
            voice=plan.voice,
            notified=[
                {"responder_id": str(p.responder_id), "role": p.role, "phone": p.phone, "language": p.language}
                for p in people
            ],
            next_at=plan.next_at,
            caused_by=cause,
            at=now,
        )
        return True
