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
    AVPU_WORDS,
    CHECK_IN_END_WORDS,
    CHECK_IN_STEP_WORDS,
    ESCALATION_WORDS,
    INSTRUMENT_WORDS,
    LAST_KNOWN_WORDS,
    PRODUCER_WORDS,
    RUNG_WORDS,
    SHORTFALL_WORDS,
    STOCK_REASON_WORDS,
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


def recorded_through(e: Any, t: Telling) -> str:
    """An incident update the dispatcher recorded came by text (``NARCAN``, ``EMS``); any other through the API."""
    return "sms" if e.producer == "dispatcher" else "api"


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
    rest = ""  # issue 19: rest after a hard call, and the weekly after-hours cap
    if getattr(reason, "resting", False):
        rest = "; resting after a hard call, paged because nobody else could be"
    elif getattr(reason, "after_hours_capped", False):
        rest = "; at the weekly after-hours cap, paged because nobody else could be"
    if passed := getattr(reason, "passed_over_resting", 0):
        rest += f"; {passed} resting after a hard call passed over"
    if capped := getattr(reason, "passed_over_capped", 0):
        rest += f"; {capped} at the weekly after-hours cap passed over"
    return (
        f"paged {t.person(d.responder_id, d.responder_role)}{as_what} at step {d.step} ({why}): "
        f"{reason.distance_km:.1f} km away; answer by {t.moment(d.ack_deadline, e.occurred_at)}{rest}"
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


# -- the field (issue 18): check-ins, field reports, re-assessment, naloxone in the bag ------------------------


def channel_or_system(e: Any, t: Telling) -> str:
    return getattr(e.data, "channel", None) or "system"


def field_reporter(e: Any, t: Telling) -> str:
    """Who reported it: the person signed in on the incident page, else the responder who texted it (by name and
    role from the roster)."""
    d = e.data
    if d.channel == "app" and d.recorded_by:
        return d.recorded_by
    if d.responder_id is not None:
        return t.person(d.responder_id)
    return d.recorded_by or "dispatch"


def _told(people: Any, t: Telling) -> str:
    return ", ".join(t.person(r) for r in people) or "nobody (no one on the roster to tell)"


def last_known_words(last: Any, t: Telling, near: Any) -> str:
    """'last known at Central Library (their last reported location, 14:02:10 MST)'; coordinates when the
    gazetteer has no name for the point (staff only: the timeline is a staff page)."""
    if last is None:
        return "no last known location"
    where = last.place_name or f"{last.lat:.5f}, {last.lon:.5f}"
    return f"last known at {where} ({LAST_KNOWN_WORDS.get(last.source, last.source)}, {t.moment(last.as_of, near)})"


def check_in_started(e: Any, t: Telling) -> str:
    d = e.data
    return f"check-in started for {d.code}: every {d.minutes} min, first due {t.moment(d.due_at, e.occurred_at)}"


def check_in_prompted(e: Any, t: Telling) -> str:
    d = e.data
    return f"asked {t.person(d.responder_id)} to reply OK {d.code} by {t.moment(d.due_at, e.occurred_at)}"


def check_in_confirmed(e: Any, t: Telling) -> str:
    d = e.data
    return f"checked in (OK {d.code}); next check-in due {t.moment(d.next_due_at, e.occurred_at)}"


def check_in_missed(e: Any, t: Telling) -> str:
    """'CHECK-IN MISSED by Cleo Clinician (clinician), due 14:47:00 MST, 10 min ago: supervisor and partner paged
    (...), last known at ...'."""
    d = e.data
    step = CHECK_IN_STEP_WORDS.get(d.step, words(d.step))
    said = (
        f"CHECK-IN MISSED by {t.person(d.responder_id)}, due {t.moment(d.due_at, e.occurred_at)}, "
        f"{d.minutes_overdue} min ago: {step}"
    )
    if d.step in ("supervisor_paged", "call_911"):
        said += f" ({_told(d.notified, t)}), {last_known_words(d.last_known, t, e.occurred_at)}"
    return said


def duress(e: Any, t: Telling) -> str:
    """Staff only (``access.STAFF_ONLY``): never on a page the responder can open."""
    d = e.data
    return (
        f"Duress signal from {t.person(d.responder_id)}: supervisor paged ({_told(d.notified, t)}), "
        f"{last_known_words(d.last_known, t, e.occurred_at)}. Their phone was answered as for OK."
    )


def check_in_ended(e: Any, t: Telling) -> str:
    return f"check-in for {e.data.code} ended ({CHECK_IN_END_WORDS.get(e.data.reason, words(e.data.reason))})"


def pair_wait(e: Any, t: Telling) -> str:
    d = e.data
    told = f"; supervisor {t.person(d.supervisor_id)} told" if d.supervisor_id else "; no supervisor to tell"
    return f"{t.person(d.responder_id)} told to wait for a partner before going in (pairs only: {d.rule}){told}"


def eta_given(e: Any, t: Telling) -> str:
    d = e.data
    return f"accepted page {d.code} with ETA {d.minutes} min (at {t.moment(d.eta_at, e.occurred_at)})"


def eta_overdue(e: Any, t: Telling) -> str:
    d = e.data
    told = f"supervisor {t.person(d.supervisor_id)} prompted" if d.supervisor_id else "no supervisor to prompt"
    return (
        f"{t.person(d.responder_id)} not on scene {d.minutes_late} min after their ETA "
        f"{t.moment(d.eta_at, e.occurred_at)}: {told}"
    )


def cannot_locate(e: Any, t: Telling) -> str:
    d = e.data
    caller = "the caller was asked to confirm the location" if d.caller_asked else "no callback to ask the caller"
    told = f"supervisor {t.person(d.supervisor_id)} told" if d.supervisor_id else "no supervisor to tell"
    return f"cannot find the person ({d.code}): {told}; {caller}"


def backup_requested(e: Any, t: Telling) -> str:
    d = e.data
    if not d.paged:
        return f"asked for backup on {d.code}: nobody qualified was left to page"
    return f"asked for backup on {d.code}: paged {_told(d.paged, t)}"


def vitals(e: Any, t: Telling) -> str:
    return f"vitals at {t.moment(e.data.taken_at, e.occurred_at)}: {vitals_words(e.data)}"


def vitals_words(d: Any) -> str:
    """'RR 12/min, SpO2 94%, pulse 88/min, responds to voice' (what was given)."""
    parts = []
    if d.respiratory_rate is not None:
        parts.append(f"RR {d.respiratory_rate}/min")
    if d.spo2 is not None:
        parts.append(f"SpO2 {d.spo2}%")
    if d.pulse is not None:
        parts.append(f"pulse {d.pulse}/min")
    if d.responsiveness is not None:
        parts.append(AVPU_WORDS.get(d.responsiveness, d.responsiveness))
    return ", ".join(parts) or "nothing measured"


def ems_called(e: Any, t: Telling) -> str:
    return f"911 called at {t.moment(e.data.called_at, e.occurred_at)}"


def ems_overdue(e: Any, t: Telling) -> str:
    d = e.data
    told = f"supervisor {t.person(d.supervisor_id)} prompted" if d.supervisor_id else "no supervisor to prompt"
    return f"EMS not confirmed on scene {d.minutes_waited} min after {t.moment(d.since, e.occurred_at)}: {told}"


def reassessed(e: Any, t: Telling) -> str:
    """'re-assessed on scene: COWS 14 (moderate); priority P3 -> P2 (COWS 14 >= 8: ...)'."""
    d = e.data
    score = (
        f"C-SSRS {d.c_ssrs_risk} risk" if d.instrument == "c_ssrs" else f"{INSTRUMENT_WORDS[d.instrument]} {d.score}"
    )
    band = f" ({words(d.risk_level)})" if d.risk_level and d.instrument != "c_ssrs" else ""
    prev, now = d.previous_priority.value, d.priority.value
    change = f"priority {prev} -> {now}" if prev != now else f"priority stays {now}"
    reasons = f" ({'; '.join(d.reasons)})" if d.reasons else ""
    return f"re-assessed on scene: {score}{band}; {change}{reasons}"


def stock_changed(e: Any, t: Telling) -> str:
    d = e.data
    kits = "kit" if abs(d.change) == 1 else "kits"
    reason = STOCK_REASON_WORDS.get(d.reason, words(d.reason))
    return f"naloxone of {t.person(d.responder_id)}: {d.change:+d} {kits} ({reason}); {d.usable} usable now"


def restock_reported(e: Any, t: Telling) -> str:
    d = e.data
    return f"restock of {t.person(d.responder_id)}'s naloxone reported: {kits_words(d.kits)}"


def kits_words(kits: Any) -> str:
    """'3 kits (lot AB12, expires 2027-06-30); 1 kit (no lot)'."""
    said = []
    for k in kits:
        lot = f"lot {k.lot}" if k.lot else "no lot"
        expiry = f", expires {k.expires_on.isoformat()}" if k.expires_on else ""
        said.append(f"{k.count} kit{'s' if k.count != 1 else ''} ({lot}{expiry})")
    return "; ".join(said)


def left_behind(e: Any, t: Telling) -> str:
    d = e.data
    lot = f" (lot {d.lot})" if d.lot else ""
    return f"{d.count} naloxone kit{'s' if d.count != 1 else ''}{lot} left with the person or family"


def stock_low(e: Any, t: Telling) -> str:
    d = e.data
    told = f"supervisor {t.person(d.supervisor_id)} told" if d.supervisor_id else "no supervisor to tell"
    return (
        f"naloxone of {t.person(d.responder_id)} is low: {d.usable} usable kit{'s' if d.usable != 1 else ''} "
        f"(threshold {d.threshold}); {told}"
    )
