"""The person desk on a real store (SQLite and PostgreSQL), issue 17's must-show for Part 2 consent: no family SMS
without an active consent; one with it, and a disclosure naming the contact's relation, the scope and the
consent; none after revocation (asked for, or automatic); none after expiry or outside the consent's scope; the
disclosure list names each disclosure; the caller hears once that help is on the way; nothing doubles across a
restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    ConsentRecipient,
    ConsentRecorded,
    ConsentRecordedData,
    ConsentRevoked,
    ConsentRevokedData,
    Envelope,
    FamilyContactAdded,
    FamilyContactAddedData,
    FamilyMessageRequested,
    FamilyMessageRequestedData,
    PersonIncidentLinkData,
    PersonIncidentLinked,
    PersonProfile,
    PersonRegistered,
    new_event,
)
from services.projections.bootstrap import build_person_desk
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.integration.test_projections import T0, Story, team
from tests.integration.test_referral_desk import Fed

MOTHER = "+15550142201"


def ev(cls, data, at=T0) -> Envelope:
    incident = getattr(data, "incident_id", None)
    return new_event(cls, data, event_id=uuid4(), occurred_at=at, producer="projections", incident_id=incident)


@pytest.fixture
def fed(tmp_path: Path, database_url: str):
    settings = ProjectionsSettings(var_dir=tmp_path, database_url=database_url)
    clock = ManualClock(T0)
    desk = build_person_desk(settings, clock)
    yield Fed(desk), settings, clock
    desk.close()


def person_with_mother(person: UUID, contact: UUID, incident: UUID) -> list[Envelope]:
    profile = PersonProfile(person_id=person, alias="River", actor="cleo")
    added = FamilyContactAddedData(
        contact_id=contact, person_id=person, name="Ann Example", relation="parent", phone=MOTHER, actor="cleo"
    )
    link = PersonIncidentLinkData(person_id=person, incident_id=incident, actor="cleo")
    return [ev(PersonRegistered, profile), ev(FamilyContactAdded, added), ev(PersonIncidentLinked, link)]


def consent(person: UUID, contact: UUID, scopes: list[str], expires_days: float = 90) -> Envelope:
    data = ConsentRecordedData(
        consent_id=uuid4(),
        person_id=person,
        patient_name="River Example",
        discloser="Example Crisis Team",
        recipient=ConsentRecipient(kind="family_contact", contact_id=contact),
        information=scopes,
        purpose="family_support",
        expires_at=T0 + timedelta(days=expires_days),
        revocation_explained=True,
        revoke_how="tell any staff member or text STOP",
        signed_by="River Example",
        signer_relation="self",
        signed_at=T0,
        actor="cleo",
    )
    return ev(ConsentRecorded, data)


def ask(person: UUID, contact: UUID, message: str, at=T0) -> Envelope:
    data = FamilyMessageRequestedData(
        request_id=uuid4(), person_id=person, contact_id=contact, message=message, actor="cleo"
    )
    return ev(FamilyMessageRequested, data, at)


def family_texts(events: list[Envelope]) -> list[tuple[str, str]]:
    return [
        (e.data.to, e.data.params["message"])
        for e in events
        if e.type == "notification.requested" and e.data.template == "family_update"
    ]


def blocked(events: list[Envelope]) -> list[str]:
    return [e.data.reason for e in events if e.type == "family.message_blocked"]


def test_family_is_texted_only_under_an_active_consent_and_each_disclosure_is_listed(fed) -> None:
    fed, _, clock = fed
    person, contact, story = uuid4(), uuid4(), Story()
    fed.feed(*person_with_mother(person, contact, story.incident_id))

    no_consent = fed.feed(ask(person, contact, "person_safe"))
    assert family_texts(no_consent) == [] and blocked(no_consent) == ["no_consent"]

    granted = consent(person, contact, ["safety_status"])
    fed.feed(granted)
    sent = fed.feed(ask(person, contact, "person_safe"))
    assert family_texts(sent) == [(MOTHER, "person_safe")]
    (disclosure,) = [e for e in sent if e.type == "disclosure.recorded"]
    assert disclosure.data.recipient_label == "parent" and [s.value for s in disclosure.data.information] == [
        "safety_status"
    ]
    assert disclosure.data.consent_id == granted.data.consent_id and disclosure.data.channel == "sms"
    assert "Ann" not in disclosure.to_json().decode()  # the relation, never the name

    outside = fed.feed(ask(person, contact, "admitted_to_care"))  # treatment status is not in this consent
    assert family_texts(outside) == [] and blocked(outside) == ["outside_consent_scope"]

    # the automatic update at the first accept goes under the same consent
    accepted = fed.feed(*story.full_response(team()["clinician"], 1, 2, 20, 40)[:5])
    assert family_texts(accepted) == [(MOTHER, "help_on_the_way")]

    revoked = ConsentRevokedData(
        consent_id=granted.data.consent_id,
        person_id=person,
        revoked_at=T0 + timedelta(minutes=3),
        how="verbal",
        actor="cleo",
    )
    fed.feed(ev(ConsentRevoked, revoked, T0 + timedelta(minutes=3)))
    after = fed.feed(ask(person, contact, "person_safe", T0 + timedelta(minutes=4)))
    assert family_texts(after) == [] and blocked(after) == ["consent_revoked"]

    # the desk's own events come back from the stream: the record lists each disclosure and block once
    fed.feed(*[e for e in fed.published() if e.type in ("disclosure.recorded", "family.message_blocked")])
    view = fed.desk.person(person)
    assert [(d.recipient_label, d.information, d.consent_id) for d in view.disclosures] == [
        ("parent", ("safety_status",), granted.data.consent_id),
        ("parent", ("safety_status",), granted.data.consent_id),
    ]
    assert [b.reason for b in view.blocked] == ["no_consent", "outside_consent_scope", "consent_revoked"]
    assert clock.now() == T0


def test_an_expired_consent_allows_nothing_and_nothing_doubles_after_a_restart(fed) -> None:
    fed, settings, clock = fed
    person, contact, incident = uuid4(), uuid4(), uuid4()
    fed.feed(*person_with_mother(person, contact, incident), consent(person, contact, ["safety_status"], 1))
    late = fed.feed(ask(person, contact, "person_safe", T0 + timedelta(days=2)))
    assert family_texts(late) == [] and blocked(late) == ["consent_expired"]

    request = ask(person, contact, "person_safe", T0 + timedelta(days=2))
    fed.feed(request)
    sequence, count = fed.sequence, len(fed.published())
    fed.desk.close()
    desk = build_person_desk(settings, clock)
    try:
        again = Fed(desk, sequence)
        assert again.feed(request) == []  # the same request again (a re-publish): decided once
        assert len(again.published()) == count
    finally:
        desk.close()


def test_the_caller_hears_once_that_help_is_on_the_way(fed) -> None:
    fed, _, _ = fed
    story = Story()
    people = team()
    events = story.full_response(people["clinician"], 1, 2, 20, 40)
    texts = [e for e in fed.feed(*events) if e.type == "notification.requested"]
    updates = [(e.data.to, e.data.params["update"]) for e in texts if e.data.template == "caller_update"]
    callback = story.reported().data.reporter.callback
    assert callback and updates == [(callback, "help_on_the_way"), (callback, "responder_with_them")]
    assert fed.feed(*events[4:5]) == []  # another accept: not again


def test_the_caller_is_texted_in_the_language_they_reported_in(fed) -> None:
    fed, _, _ = fed
    story = Story()
    report, *rest = story.full_response(team()["clinician"], 1, 2, 20, 40)
    assert report.type == "incident.reported"
    reporter = report.data.reporter.model_copy(update={"language": "es"})
    spanish = report.model_copy(update={"data": report.data.model_copy(update={"reporter": reporter})})
    texts = [e for e in fed.feed(spanish, *rest) if e.type == "notification.requested"]
    updates = [(e.data.params["update"], e.data.language) for e in texts if e.data.template == "caller_update"]
    assert updates == [("help_on_the_way", "es"), ("responder_with_them", "es")]


def test_an_incident_event_touches_only_that_incidents_aggregate(fed) -> None:
    """The desk's per-event cost does not grow with history: no stored aggregate collects events from more than one
    incident (the one index of earlier versions did, and was rebuilt per event)."""
    fed, _, _ = fed
    people = team()
    for _ in range(12):
        fed.feed(*Story().full_response(people["clinician"], 1, 2, 20, 40))
    notifications = fed.desk.recorder.select_notifications(start=1, limit=10_000)
    per_aggregate: dict[UUID, int] = {}
    for n in notifications:
        per_aggregate[n.originator_id] = per_aggregate.get(n.originator_id, 0) + 1
    assert len(per_aggregate) == 12  # one per incident (its caller, the updates given)
    assert max(per_aggregate.values()) == min(per_aggregate.values())


def test_an_earlier_versions_index_is_copied_once_and_answers_as_before(fed) -> None:
    """A store written by a version with the one ``PersonIndex``: the desk copies it per incident at start, and
    the links, the search, the updates already given and the caller's told updates all hold."""
    from services.projections.domain.person_file import PersonDirectory, PersonFile, PersonIndex

    fed, settings, clock = fed
    person, contact, story = uuid4(), uuid4(), Story()
    incident = str(story.incident_id)
    registered, added, linked = person_with_mother(person, contact, story.incident_id)
    granted = consent(person, contact, ["safety_status"])
    file = PersonFile(person_id=person, event_json=registered.to_json().decode())
    for event in (added, linked, granted):
        file.apply(event_json=event.to_json().decode())
    callback = story.reported().data.reporter.callback
    legacy = PersonIndex()
    legacy.name(str(person), "River")
    legacy.link(incident, str(person))
    legacy.note_caller(incident, callback, "en")
    legacy.tell_caller(incident, "help_on_the_way", callback, T0, "en")
    legacy.give_update(incident, "help_on_the_way")
    fed.desk.save(file, legacy)
    assert PersonDirectory.create_id() not in fed.desk.repository
    fed.desk.close()

    desk = build_person_desk(settings, clock)
    try:
        assert [v.person_id for v in desk.people_for_incident(story.incident_id)] == [person]
        assert [v.person_id for v in desk.search("riv")] == [person]
        again = Fed(desk, 100)
        responses = story.full_response(team()["clinician"], 1, 2, 20, 40)
        texts = [e for e in again.feed(*responses) if e.type == "notification.requested"]
        # help_on_the_way was given before the upgrade: only the arrival now, to the caller and the mother
        assert [(e.data.template, e.data.to) for e in texts] == [
            ("caller_update", callback),
            ("family_update", MOTHER),
        ]
        assert [e.data.params for e in texts] == [{"update": "responder_with_them"}, {"message": "responder_with_them"}]
        assert desk.migrate_index() == 0  # once
    finally:
        desk.close()


def test_the_directory_is_snapshotted_and_a_restart_finds_every_person(fed) -> None:
    from services.projections.domain.person_file import PersonDirectory

    fed, settings, clock = fed
    people = [uuid4() for _ in range(60)]
    fed.feed(
        *[
            ev(PersonRegistered, PersonProfile(person_id=p, alias=f"Sky {i}", actor="cleo"))
            for i, p in enumerate(people)
        ]
    )
    assert list(fed.desk.snapshots.get(PersonDirectory.create_id()))  # taken at 50 events
    fed.desk.close()
    desk = build_person_desk(settings, clock)
    try:
        assert {v.person_id for v in desk.all_people()} == set(people)
        assert [v.person_id for v in desk.search("sky 59")] == [people[59]]
    finally:
        desk.close()
