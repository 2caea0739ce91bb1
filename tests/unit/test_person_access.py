"""Who may see and change a person's record (domain/person_access.py): directors everything; a responder by
relation (paged for a linked incident, or registered the person) and by roster role."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.projections.domain.person_access import (
    PersonAction,
    Reader,
    Relation,
    may,
    may_see,
    refusal,
)

INCIDENT, OTHER = uuid4(), uuid4()


def responder(roster_role: str | None, subject: str = "maya") -> Reader:
    return Reader("responder", subject, uuid4(), roster_role)


DIRECTOR = Reader("director", "dr-director")
VIA_INCIDENT = Relation("someone-else", frozenset({INCIDENT}), frozenset({INCIDENT}))
NOT_PAGED = Relation("someone-else", frozenset({INCIDENT}), frozenset())
REGISTERED_BY_MAYA = Relation("maya", frozenset(), frozenset())


@pytest.mark.parametrize("action", list(PersonAction))
def test_a_director_may_do_everything_to_anyone(action: PersonAction) -> None:
    assert may(DIRECTOR, action, Relation())


@pytest.mark.parametrize("role", ["admin", "intake"])
@pytest.mark.parametrize("action", list(PersonAction))
def test_other_credentials_may_do_nothing(role: str, action: PersonAction) -> None:
    reader = Reader(role, "someone")
    assert refusal(reader, action, VIA_INCIDENT) == "people's records are for directors and responders"


def test_a_responder_credential_without_a_responder_sees_nobody() -> None:
    assert not may_see(Reader("responder", "x", None, "clinician"), VIA_INCIDENT)


@pytest.mark.parametrize("role", ["clinician", "nurse", "prescriber", "supervisor", "peer_coach"])
def test_anyone_paged_for_a_linked_incident_sees_the_person(role: str) -> None:
    reader = responder(role)
    assert may_see(reader, VIA_INCIDENT)
    assert not may_see(reader, NOT_PAGED)


@pytest.mark.parametrize(("role", "sees"), [("clinician", True), ("supervisor", True), ("peer_coach", False)])
def test_who_registered_a_person_sees_them_unless_a_peer_coach(role: str, sees: bool) -> None:
    assert may_see(responder(role, "maya"), REGISTERED_BY_MAYA) is sees
    assert not may_see(responder(role, "luis"), REGISTERED_BY_MAYA)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("clinician", True), ("nurse", True), ("prescriber", True), ("supervisor", True), ("peer_coach", False)],
)
@pytest.mark.parametrize("action", [PersonAction.SEARCH, PersonAction.REGISTER])
def test_search_and_register_by_roster_role(role: str, allowed: bool, action: PersonAction) -> None:
    assert may(responder(role), action) is allowed


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("clinician", True), ("nurse", True), ("prescriber", True), ("supervisor", False), ("peer_coach", False)],
)
@pytest.mark.parametrize("action", [PersonAction.LINK, PersonAction.UNLINK])
def test_a_link_is_made_by_a_clinical_role_paged_for_that_incident(
    role: str, allowed: bool, action: PersonAction
) -> None:
    paged = Relation(None, frozenset(), frozenset({INCIDENT}), INCIDENT)
    assert may(responder(role), action, paged) is allowed
    elsewhere = Relation(None, frozenset(), frozenset({INCIDENT}), OTHER)
    assert refusal(responder(role), action, elsewhere) is not None


def test_a_link_names_an_incident() -> None:
    assert refusal(responder("clinician"), PersonAction.LINK, Relation()) == "you were not paged for this incident"


@pytest.mark.parametrize("action", [PersonAction.UPDATE, PersonAction.CONTACTS, PersonAction.CONSENT])
def test_a_peer_coach_on_the_incident_reads_but_does_not_change_the_record(action: PersonAction) -> None:
    coach = responder("peer_coach")
    assert may(coach, PersonAction.READ, VIA_INCIDENT)
    assert "changes a person's record" in (refusal(coach, action, VIA_INCIDENT) or "")
    assert may(responder("clinician"), action, VIA_INCIDENT)


@pytest.mark.parametrize("action", [PersonAction.REVOKE, PersonAction.FAMILY_MESSAGE])
def test_anyone_who_sees_the_person_records_a_revocation_or_asks_for_a_family_message(action: PersonAction) -> None:
    assert may(responder("peer_coach"), action, VIA_INCIDENT)
    assert not may(responder("peer_coach"), action, NOT_PAGED)


@pytest.mark.parametrize("action", [PersonAction.READ, PersonAction.UPDATE, PersonAction.CONSENT])
def test_a_clinician_not_on_any_incident_of_the_person_is_refused(action: PersonAction) -> None:
    assert refusal(responder("clinician"), action, NOT_PAGED) == "you were not paged for an incident of this person's"
