"""The projections' pure decisions: progress and SLA, documentation gaps and signatures, follow-up rules and
task state, metrics, and the small adapters with no I/O (session cookies, charts, timeline entries)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.utils import resolve_topic

from services.contract.events import (
    CrisisKind,
    DocumentationAttested,
    DocumentationAttestedData,
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    DocumentationSignedOff,
    DocumentationSignedOffData,
    FollowUpCompleted,
    FollowUpCompletedData,
    FollowUpCreated,
    FollowUpCreatedData,
    FollowUpRescheduled,
    FollowUpRescheduledData,
    OverdoseDetails,
    Priority,
    Role,
    SafetyPlan,
    SmsReceived,
    SmsReceivedData,
    WithdrawalDetails,
    new_event,
)
from services.projections.adapters.session_cookies import Session, SessionCodec, WorkspaceSessions
from services.projections.adapters.svg_charts import grouped_bars, minutes_label
from services.projections.domain.documentation import (
    DocumentationRefused,
    assemble_documentation,
    check_attestation,
    check_sign_off,
)
from services.projections.domain.entries import timeline_entry
from services.projections.domain.followup_aggregates import DueIndex, IncidentCase
from services.projections.domain.followups import (
    FollowUpPolicy,
    TaskRefused,
    can_take,
    check_task_command,
    fold_task,
    task_code,
    task_on_ed_visit,
    tasks_on_report,
)
from services.projections.domain.metrics import IncidentRow, TaskRow, follow_up_metrics, percentile, response_metrics
from services.projections.domain.progress import RecordedEvent, SlaTargets, incident_progress, known_at, sla_marks
from services.runtime.credentials import (
    AccessRole,
    CredentialStore,
    Principal,
    issue_credential,
    revoke_credential,
    token_digest,
)
from tests.integration.test_projections import T0, Person, Story

TARGETS = SlaTargets()


def recorded(events, start: int = 1) -> list[RecordedEvent]:
    return [RecordedEvent(start + i, e.occurred_at + timedelta(seconds=1), e) for i, e in enumerate(events)]


def clinician() -> Person:
    return Person("Cleo", Role.CLINICIAN, phone="+15550199001")


# ---- progress ----------------------------------------------------------------------------------------------


def test_durations_are_measured_from_the_report() -> None:
    story, who = Story(), clinician()
    progress = incident_progress(recorded(story.full_response(who, ack=1, en_route=2, arrive=30, done=45)))
    assert progress is not None and progress.status == "closed" and progress.closed_by == who.responder_id
    assert progress.durations() == {
        "first_page": 12.0,
        "acknowledged": 60.0,
        "en_route": 120.0,
        "on_scene": 1800.0,
        "closed": 2700.0,
    }
    assert progress.sla(TARGETS, story.at(500)).state == "met"


@pytest.mark.parametrize(
    ("arrive", "now", "state"),
    [(None, 30, "pending"), (None, 61, "breached"), (75, 80, "breached"), (59, 80, "met")],
)
def test_on_scene_sla(arrive, now, state) -> None:
    story, who = Story(), clinician()
    events = [story.reported(), *story.offered(who, 0.2), story.acknowledged(who, 1)]
    if arrive is not None:
        events.append(story.arrived(who, arrive))
    progress = incident_progress(recorded(events))
    status = progress.sla(TARGETS, story.at(now))
    assert status.state == state
    marks = sla_marks(progress, TARGETS, story.at(now))
    assert bool(marks) == (state == "breached")


def test_sla_target_is_configurable_per_priority() -> None:
    story = Story(priority=Priority.P3)
    progress = incident_progress(recorded([story.reported()]))
    targets = SlaTargets(on_scene_minutes={"P3": 120})
    assert progress.sla(targets, story.at(100)).state == "pending"
    assert progress.sla(TARGETS, story.at(100)).state == "breached"


def test_an_incident_stays_open_until_the_last_responder_is_done_and_documented_times_fill_gaps() -> None:
    story, who = Story(), clinician()
    events = [story.reported(), *story.offered(who, 0.2), story.acknowledged(who, 1)]
    done = story.completed(who, 30)
    not_last = done.model_copy(update={"data": done.data.model_copy(update={"closes_incident": False})})
    progress = incident_progress(recorded([*events, not_last]))
    assert progress.status == "open"
    fields = DocumentationFields(on_scene_at=story.at(14), cleared_at=story.at(50))
    completed = new_event(
        DocumentationFieldsCompleted,
        DocumentationFieldsCompletedData(incident_id=story.incident_id, fields=fields, completed_by="cleo"),
        event_id=uuid4(),
        occurred_at=story.at(60),
        producer="tests",
        incident_id=story.incident_id,
    )
    progress = incident_progress(recorded([*events, not_last, completed]))
    assert progress.on_scene_at == story.at(14) and progress.closed_at == story.at(50) and progress.status == "closed"


def test_known_at_keeps_only_what_was_recorded_by_then() -> None:
    story = Story()
    events = recorded(story.full_response(clinician(), ack=1, en_route=2, arrive=30, done=45))
    cut = events[3].recorded_at
    assert [e.sequence for e in known_at(events, cut)] == [1, 2, 3, 4]
    assert known_at(reversed(events), None) == events


# ---- documentation ----------------------------------------------------------------------------------------


def _doc(events):
    history = recorded(events)
    return assemble_documentation(history, incident_progress(history), {})


def _fields(story: Story, minutes: float, **fields) -> object:
    return new_event(
        DocumentationFieldsCompleted,
        DocumentationFieldsCompletedData(
            incident_id=story.incident_id, fields=DocumentationFields(**fields), completed_by="cleo"
        ),
        event_id=uuid4(),
        occurred_at=story.at(minutes),
        producer="tests",
        incident_id=story.incident_id,
    )


def test_documentation_lists_what_is_missing_and_completion_removes_it() -> None:
    story, who = Story(overdose=OverdoseDetails(ems_called=True, naloxone_doses_given=2)), clinician()
    events = story.full_response(who, ack=1, en_route=2, arrive=12, done=40)
    doc = _doc(events)
    keys = [g.key for g in doc.gaps]
    assert keys == [
        "naloxone_doses",
        "ems_agency",
        "disposition",
        "follow_up_plan",
        "documentation_minutes",
        "language",
    ]
    assert "2 naloxone dose(s)" in doc.gaps[0].label
    doses = [
        {
            "given_at": story.at(-5),
            "product": "naloxone 4 mg nasal",
            "route": "intranasal",
            "given_by_role": "bystander",
        },
        {
            "given_at": story.at(-2),
            "product": "naloxone 4 mg nasal",
            "route": "intranasal",
            "given_by_role": "bystander",
            "response": "improved",
        },
    ]
    events.append(
        _fields(
            story,
            50,
            naloxone_doses=doses,
            ems_agency="AMR",
            disposition="stabilised_on_scene",
            follow_up_plan="outreach",
            documentation_minutes=10,
            language="en",
        )
    )
    doc = _doc(events)
    assert [g.key for g in doc.gaps] == ["naloxone_doses[1].response"]
    events.append(_fields(story, 55, naloxone_doses=[{**doses[0], "given_at": story.at(-4), "response": "unchanged"}]))
    assert len(_doc(events).what["interventions"]["naloxone_doses"]) == 3  # each dose record is kept


def test_self_harm_documentation_needs_every_safety_plan_step() -> None:
    story = Story(kind=CrisisKind.SELF_HARM_RISK, overdose=None)
    who = clinician()
    events = [story.reported(), *story.offered(who, 0.2), story.acknowledged(who, 1), story.arrived(who, 20)]
    events.append(_fields(story, 30, safety_plan=SafetyPlan(warning_signs="pacing", means_safety="meds locked")))
    keys = {g.key for g in _doc(events).gaps}
    assert {"safety_plan.internal_coping", "safety_plan.help_contacts"} <= keys and "safety_plan" not in keys
    assert "safety_plan.warning_signs" not in keys


def test_attestation_needs_no_gaps_and_a_licensed_role_and_sign_off_needs_attestation() -> None:
    story, who = Story(), clinician()
    events = story.full_response(who, ack=1, en_route=2, arrive=12, done=40)
    with pytest.raises(DocumentationRefused, match="gap"):
        check_attestation(_doc(events), "clinician")
    events.append(
        _fields(
            story,
            50,
            disposition="refused_care",
            follow_up_plan="call tomorrow",
            ems_agency="AMR",
            documentation_minutes=5,
            language="en",
        )
    )
    ready = _doc(events)
    assert ready.gaps == []
    with pytest.raises(DocumentationRefused, match="peer coach"):
        check_attestation(ready, "peer_coach")
    check_attestation(ready, "clinician")
    with pytest.raises(DocumentationRefused, match="attested"):
        check_sign_off(ready)

    def signed(cls, data_cls, minutes, **data):
        return new_event(
            cls,
            data_cls(incident_id=story.incident_id, **data),
            event_id=uuid4(),
            occurred_at=story.at(minutes),
            producer="tests",
            incident_id=story.incident_id,
        )

    events.append(
        signed(
            DocumentationAttested,
            DocumentationAttestedData,
            60,
            attested_by="cleo",
            attester_role="clinician",
            statement="true",
        )
    )
    assert _doc(events).status == "attested"
    events.append(
        signed(DocumentationSignedOff, DocumentationSignedOffData, 70, signed_off_by="dr", decision="returned")
    )
    returned = _doc(events)
    assert returned.status == "returned"
    check_attestation(returned, "clinician")  # a returned record can be attested again


# ---- follow-ups ------------------------------------------------------------------------------------------------


def test_rules_create_the_domain_follow_ups_with_configurable_due_times() -> None:
    overdose = Story().reported()
    [outreach] = tasks_on_report(overdose.data, T0, FollowUpPolicy())
    assert (outreach.rule, outreach.owner_role, outreach.due_at) == (
        "post_overdose_outreach",
        Role.PEER_COACH,
        T0 + timedelta(hours=72),
    )
    [outreach] = tasks_on_report(overdose.data, T0, FollowUpPolicy(outreach_hours=48))
    assert outreach.due_at == T0 + timedelta(hours=48)
    crisis = Story(kind=CrisisKind.SELF_HARM_RISK, overdose=None).reported()
    rules = {(s.rule, s.owner_role, s.due_at - T0) for s in tasks_on_report(crisis.data, T0, FollowUpPolicy())}
    assert rules == {
        ("caring_contact", Role.PEER_COACH, timedelta(hours=24)),
        ("follow_up_appointment", Role.CLINICIAN, timedelta(hours=48)),
    }
    ed = task_on_ed_visit(T0, FollowUpPolicy(), "transported")
    assert ed.due_at == T0 + timedelta(days=7) and ed.deadline_at == T0 + timedelta(days=30)


def test_task_codes_and_who_can_take_a_task() -> None:
    task_id = uuid4()
    assert len(task_code(task_id)) == 4 and task_code(task_id) == task_code(task_id)
    assert can_take(Role.PEER_COACH, "peer_coach") and not can_take(Role.PEER_COACH, "clinician")
    assert can_take(Role.CLINICIAN, "nurse") and not can_take(Role.PRESCRIBER, "clinician")


def test_task_state_refuses_changes_by_someone_else_and_after_completion() -> None:
    story = Story()
    assignee, stranger = uuid4(), uuid4()
    task_id = uuid4()

    def event(cls, data, minutes):
        return new_event(
            cls, data, event_id=uuid4(), occurred_at=story.at(minutes), producer="t", incident_id=story.incident_id
        )

    created = event(
        FollowUpCreated,
        FollowUpCreatedData(
            task_id=task_id,
            incident_id=story.incident_id,
            rule="caring_contact",
            owner_role=Role.PEER_COACH,
            assignee_id=assignee,
            due_at=story.at(60 * 24),
            priority=Priority.P2,
            task_code="1234",
            basis="test",
        ),
        0,
    )
    state = fold_task(None, created)
    by_stranger = event(
        FollowUpCompleted,
        FollowUpCompletedData(
            task_id=task_id,
            incident_id=story.incident_id,
            outcome="contact_made",
            completed_by="x",
            responder_id=stranger,
        ),
        5,
    )
    state = fold_task(state, by_stranger)
    assert state.status == "open" and state.history[-1]["what"] == "completion refused"
    with pytest.raises(TaskRefused, match="assignee"):
        check_task_command(state, "complete", stranger)
    with pytest.raises(TaskRefused, match="director"):
        check_task_command(state, "assign", assignee)
    moved = event(
        FollowUpRescheduled,
        FollowUpRescheduledData(
            task_id=task_id,
            incident_id=story.incident_id,
            due_at=story.at(60 * 48),
            reason="r",
            rescheduled_by="me",
            responder_id=assignee,
        ),
        6,
    )
    state = fold_task(state, moved)
    assert state.due_at == story.at(60 * 48)
    done = by_stranger.model_copy(update={"data": by_stranger.data.model_copy(update={"responder_id": None})})
    state = fold_task(state, done)
    assert state.status == "done" and state.on_time() is True
    with pytest.raises(TaskRefused, match="already done"):
        check_task_command(state, "reschedule", None)


def test_due_index_finds_only_tasks_past_due() -> None:
    index = DueIndex()
    first, second, incident = uuid4(), uuid4(), uuid4()
    index.schedule(task_id=first, incident_id=incident, due_at=T0)
    index.schedule(task_id=second, incident_id=incident, due_at=T0 + timedelta(hours=1))
    assert index.due_by(T0) == []
    assert [t for t, _, _ in index.due_by(T0 + timedelta(hours=2))] == [first, second]
    index.settle(task_id=first)
    assert [t for t, _, _ in index.due_by(T0 + timedelta(hours=2))] == [second]


def test_the_desk_reads_events_stored_under_its_aggregates_old_module_name() -> None:
    import services.projections.followup_desk  # noqa: F401 - registers the old topic

    assert resolve_topic("services.projections.domain.desk:IncidentCase.TaskCreated") is IncidentCase.TaskCreated
    assert resolve_topic("services.projections.domain.desk:DueIndex") is DueIndex


# ---- metrics ---------------------------------------------------------------------------------------------------


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([5, 1, 3], 50) == 3 and percentile(list(range(1, 11)), 90) == 9
    assert percentile([7], 90) == 7


def test_metrics_group_by_priority_zone_and_week() -> None:
    def row(priority, zone, reported, ack, arrive, escalations=0):
        at = T0 + timedelta(days=reported)
        return IncidentRow(
            str(uuid4()),
            priority,
            zone,
            "closed",
            at,
            at + timedelta(seconds=ack),
            at + timedelta(minutes=arrive) if arrive is not None else None,
            at + timedelta(hours=2),
            escalations,
        )

    rows = [row("P1", "north", 0, 60, 30), row("P1", "north", 1, 120, 70, 1), row("P2", None, 8, 300, None)]
    by_priority = response_metrics(rows, TARGETS, T0 + timedelta(days=30), "priority")
    p1 = by_priority[0]
    assert p1["key"] == "P1" and p1["acknowledge_median_s"] == 90 and p1["arrive_p90_s"] == 4200
    assert p1["escalation_rate"] == 0.5 and p1["sla_compliance"] == 0.5
    assert by_priority[-1]["key"] == "all" and by_priority[-1]["incidents"] == 3
    assert by_priority[1]["sla_breached"] == 1  # closed after the target without arriving
    assert [g["key"] for g in response_metrics(rows, TARGETS, T0, "zone")] == ["north", "unzoned", "all"]
    assert [g["key"] for g in response_metrics(rows, TARGETS, T0, "week")] == ["2026-W48", "2026-W49", "all"]
    tasks = [
        TaskRow(T0, "done", T0 - timedelta(hours=1)),
        TaskRow(T0, "done", T0 + timedelta(hours=1)),
        TaskRow(T0, "open", None),
        TaskRow(T0 + timedelta(days=9), "open", None),
    ]
    summary = follow_up_metrics(tasks, T0 + timedelta(days=1))
    assert summary["done_on_time"] == 1 and summary["done_late"] == 1 and summary["open_overdue"] == 1
    assert summary["on_time_rate"] == pytest.approx(1 / 3)


# ---- adapters without I/O ----------------------------------------------------------------------------------


def test_session_cookies_are_signed_and_expire() -> None:
    codec = SessionCodec(b"k" * 32, timedelta(hours=8))
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    value = codec.seal("session-1", now + codec.lifetime)
    assert codec.unseal(value, now + timedelta(hours=1)) == "session-1"
    assert codec.unseal(value, now + timedelta(hours=9)) is None
    body, signature = value.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    assert codec.unseal(forged, now) is None
    assert SessionCodec(b"other" * 8, timedelta(hours=8)).unseal(value, now) is None
    assert codec.unseal("garbage", now) is None and codec.unseal(None, now) is None


class InMemorySessions:
    """The SessionStore port, in a dict."""

    def __init__(self) -> None:
        self.kept: dict[str, Session] = {}

    def save(self, session: Session, now: datetime) -> None:
        self.kept[session.session_id] = session

    def find(self, session_id: str) -> Session | None:
        return self.kept.get(session_id)

    def end(self, session_id: str) -> None:
        self.kept.pop(session_id, None)


async def test_a_session_ends_when_signed_out_or_when_its_credential_leaves_the_file(tmp_path) -> None:
    path = tmp_path / "credentials.json"
    token = issue_credential(path, "dr", AccessRole.DIRECTOR)
    other_token = issue_credential(path, "pat", AccessRole.RESPONDER, uuid4())
    store = InMemorySessions()
    sessions = WorkspaceSessions(SessionCodec(b"k" * 32, timedelta(hours=8)), store, CredentialStore.from_file(path))
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    dr = Principal("dr", AccessRole.DIRECTOR)
    cookie, session = await sessions.begin(dr, token_digest(token), now)
    assert await sessions.current(cookie, now + timedelta(hours=1)) == session
    assert await sessions.current(cookie, now + timedelta(hours=9)) is None  # expired
    await sessions.end(cookie, now)
    assert await sessions.current(cookie, now) is None and store.kept == {}  # signed out: the copy is refused
    cookie, _ = await sessions.begin(dr, token_digest(token), now)
    pat_principal = sessions.credentials.verify_token(other_token)
    pat, _ = await sessions.begin(pat_principal, token_digest(other_token), now)
    revoke_credential(path, "dr")
    assert await sessions.current(cookie, now) is None  # revoked: refused at once
    assert (await sessions.current(pat, now)).principal == pat_principal  # the others' sessions live on
    forged, _ = await sessions.begin(Principal("pat", AccessRole.DIRECTOR), token_digest(other_token), now)
    assert await sessions.current(forged, now) is None  # a session must say what its credential says


def test_charts_are_well_formed_svg_with_one_bar_per_value() -> None:
    svg = grouped_bars("Ack <by> priority", [("P1", [60, 120]), ("P2", [None, 300])], ["median", "p90"], minutes_label)
    tree = ET.fromstring(svg)
    rects = [
        e
        for e in tree.iter("{http://www.w3.org/2000/svg}rect")
        if e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(rects) == 3 and "n/a" in svg and "&lt;by&gt;" in svg


def test_an_event_type_without_its_own_entry_gets_a_generic_one_without_phone_numbers() -> None:
    event = new_event(
        SmsReceived,
        SmsReceivedData(message_sid="SM" + "a" * 32, from_number="+15550199009", to_number="+15005550006", body="Y 1"),
        event_id=uuid4(),
        occurred_at=T0,
        producer="intake_gateway",
    )
    # a type without its own wording: its producer and its type in plain words
    entry = timeline_entry(event)
    assert entry.actor == "intake" and entry.summary == "sms received"
    assert "+15550199009" not in str(entry.details) and entry.details["body"] == "Y 1"


@pytest.mark.parametrize(
    ("details", "rules"),
    [
        (WithdrawalDetails(substance="alcohol", ciwa_ar_score=19), {"medical_review"}),
        (WithdrawalDetails(substance="alcohol", ciwa_ar_score=18), set()),
        (WithdrawalDetails(substance="alcohol", ciwa_ar_score=30, seizure=True), set()),  # EMS now, not tomorrow
        (WithdrawalDetails(substance="opioid", cows_score=8), {"prescriber_review"}),
        (WithdrawalDetails(substance="opioid", cows_score=7), set()),
    ],
)
def test_withdrawal_rules_follow_the_configurable_thresholds(details, rules) -> None:
    report = Story(kind=CrisisKind.WITHDRAWAL, overdose=None, withdrawal=details).reported()
    assert {spec.rule for spec in tasks_on_report(report.data, T0, FollowUpPolicy())} == rules
    stricter = FollowUpPolicy(cows_prescriber_threshold=12, ciwa_severe_threshold=25)
    assert tasks_on_report(report.data, T0, stricter) == []  # every case above is under the stricter thresholds
