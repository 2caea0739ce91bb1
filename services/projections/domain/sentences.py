"""The parts of a timeline entry, in plain words: who did it (a person by name and role, the reporter, or a part of
the system) and what happened (the longer sentences). Each takes the event (``e.data`` holds its fields) and how
to tell times and people (``t``); ``entries.WORDING`` says which one each event type uses. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.projections.domain.followups import RULE_TITLES
from services.projections.domain.messages import message_words, outcome_of
from services.projections.domain.plain_words import (
    ALARM_STOPPED_WORDS,
    ESCALATION_WORDS,
    PRODUCER_WORDS,
    RUNG_WORDS,
    SHORTFALL_WORDS,
    WITHDRAWN_WORDS,
    ordinal,
    words,
)
from services.projections.domain.telling import Telling, role_words

Text = Callable[[Any, Telling], str]
"""A part of an entry, from the event and how to tell times and people."""


def producer_words(producer: str) -> str:
    return PRODUCER_WORDS.get(producer, producer.replace("_", " "))


# -- who did it ---------------------------------------------------------------------------------------------------


def responder(e: Any, t: Telling) -> str:
    return t.person(e.data.responder_id)


def progress_channel(e: Any, t: Telling) -> str:
    """A text (sms), or a button on the responder's incident page (app)."""
    return e.data.channel


def recorder(e: Any, t: Telling) -> str:
    return e.data.recorded_by or "intake"


def producer(e: Any, t: Telling) -> str:
    return producer_words(e.producer)


def by(field: str) -> Text:
    """The person the event names in ``field`` (``completed_by``, ``attested_by``, ...)."""
    return lambda e, t: getattr(e.data, field)


def reporter(e: Any, t: Telling) -> str:
    relation = e.data.reporter.relation
    return f"reporter ({relation})" if relation else "reporter"


def assigner(e: Any, t: Telling) -> str:
    return "follow-up rules" if e.data.assigned_by == "rules" else e.data.assigned_by


def assigned_through(e: Any, t: Telling) -> str:
    return "system" if e.data.assigned_by == "rules" else "workspace"


# -- what happened: the longer sentences ----------------------------------------------------------------------


def reported(e: Any, t: Telling) -> str:
    d = e.data
    needs = f"; needs {', '.join(words(n) for n in d.needs)}" if d.needs else ""
    return f"{words(d.kind.value)} reported, {d.priority.value}{needs}"


def paged(e: Any, t: Telling) -> str:
    """'paged Cleo Clinician (clinician) as primary at step 1 (front line, P1: best 2 on call): 0.8 km away; answer by
    02:01:36 MST'; a supervisor or director is paged as themselves, by the ladder's rung."""
    d, reason = e.data, e.data.reason
    rung = RUNG_WORDS.get(reason.rung, reason.rung)
    front_line = reason.rung == "candidates"
    as_what = f" as {words(reason.team_role)}" if front_line else ""
    why = f"{rung}, {reason.rule}" if front_line else rung
    return (
        f"paged {t.person(d.responder_id, d.responder_role)}{as_what} at step {d.step} ({why}): "
        f"{reason.distance_km:.1f} km away; answer by {t.moment(d.ack_deadline, e.occurred_at)}"
    )


def unfilled(e: Any, t: Telling) -> str:
    d = e.data
    if "ladder_exhausted" in d.shortfalls:
        return "NOBODY ACCEPTED: every step of the ladder, up to the clinical director, was tried"
    why = "; ".join(SHORTFALL_WORDS.get(s, words(s)) for s in d.shortfalls) or d.reason
    return f"nobody more could be paged at step {d.step} ({RUNG_WORDS.get(d.rung, d.rung)}): {why}"


def escalated(e: Any, t: Telling) -> str:
    d = e.data
    why = ESCALATION_WORDS.get(d.reason, words(d.reason))
    return f"escalated from step {d.from_step} to step {d.to_step} ({RUNG_WORDS.get(d.rung, d.rung)}): {why}"


def alarm_raised(e: Any, t: Telling) -> str:
    d = e.data
    told = ", ".join(t.person(r.responder_id, r.role) for r in d.notified) or "nobody: no one on the roster to tell"
    how = "texted and called" if d.voice else "texted"
    return (
        f"NOBODY ACCEPTED alarm, {ordinal(d.repeat)} time, {d.minutes_since_report} min after the report: "
        f"{how} {told}; sounds again at {t.moment(d.next_at, e.occurred_at)} unless someone accepts"
    )


def alarm_stopped(e: Any, t: Telling) -> str:
    d = e.data
    times = "once" if d.repeats == 1 else f"{d.repeats} times"
    return f"NOBODY ACCEPTED alarm stopped ({ALARM_STOPPED_WORDS.get(d.reason, words(d.reason))}); it sounded {times}"


def message_request(e: Any, t: Telling) -> str:
    d = e.data
    return f"{message_words(d.template, d.channel)} to {t.recipient(d.to)}"


def message_channel(e: Any, t: Telling) -> str:
    return e.data.channel


def message_details(e: Any) -> dict[str, Any]:
    d = e.data
    return {"notification_id": str(d.notification_id), "template": d.template, "channel": d.channel}


def message_report(e: Any, t: Telling) -> str:
    """A report whose request is not on this timeline: its outcome alone."""
    outcome = outcome_of(e)
    if outcome is None:
        return words(e.type)
    return f"message {outcome.words}" + (f" ({outcome.detail})" if outcome.detail else "")


def accepted_late(e: Any, t: Telling) -> str:
    outcome = "kept as backup" if e.data.outcome == "backup" else "stood down"
    return f"accepted page {e.data.code} late: {outcome}"


def documentation_completed(e: Any, t: Telling) -> str:
    names = sorted(e.data.fields.model_dump(exclude_defaults=True))
    return f"documentation saved: {', '.join(words(n) for n in names) or 'nothing'}"


def signed_off(e: Any, t: Telling) -> str:
    verb = "signed off" if e.data.decision == "approved" else "returned for changes"
    return f"documentation {verb} by the director"


def followup_created(e: Any, t: Telling) -> str:
    d = e.data
    title = RULE_TITLES.get(d.rule, words(d.rule))
    return f"follow-up task for a {role_words(d.owner_role.value)}, due {t.moment(d.due_at, e.occurred_at)}: {title}"


def naloxone_given(e: Any, t: Telling) -> str:
    d = e.data
    response = f", response {words(d.response)}" if d.response else ", response not yet known"
    return (
        f"naloxone given at {t.moment(d.given_at, e.occurred_at)} ({d.product}, {d.route}) by "
        f"{words(d.given_by_role or 'someone')}{response}"
    )


def ems_arrived(e: Any, t: Telling) -> str:
    return f"EMS arrived at {t.moment(e.data.arrived_at, e.occurred_at)} ({e.data.agency or 'agency not given'})"


def relocated(e: Any, t: Telling) -> str:
    d = e.data
    where = "outside the service area" if d.outside_service_area else f"zone {d.zone or 'unknown'}"
    return f"person relocated ({where}): {d.reason or 'no reason given'}"


def withdrawn(e: Any, t: Telling) -> str:
    d = e.data
    return f"page {d.code} to {t.person(d.responder_id)} withdrawn: {WITHDRAWN_WORDS.get(d.reason, d.reason)}"
