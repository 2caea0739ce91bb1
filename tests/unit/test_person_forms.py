"""The person pages' forms as the workspace reads them (entrypoints/person_forms.py): a consent with every 42 CFR
2.31 element or a refusal naming the field; a place by its gazetteer name or lat/lon; ids that repeat for a form
sent twice and differ between forms."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.contract.person import ConsentRecordedData
from services.projections.entrypoints.form_values import InvalidFormValue
from services.projections.entrypoints.person_forms import (
    PersonPageSettings,
    chosen_place,
    consent_values,
    contact_values,
    form_ids,
    place_names,
    profile_values,
)
from services.runtime.credentials import AccessRole, Principal

DENVER = ZoneInfo("America/Denver")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PLACES = PersonPageSettings(gazetteer_file=Path(__file__).parents[2] / "deploy/demo/gazetteer.json").places()
CONTACT = uuid4()
SIGNED = {
    "patient_name": "Jordan Avery",
    "discloser": "Front Range Crisis Team",
    "recipient": f"contact:{CONTACT}",
    "purpose": "family_support",
    "expires_on": "2027-05-31",
    "revocation_explained": "yes",
    "revoke_how": "Tell any staff member",
    "signed_by": "Jordan Avery",
    "signer_relation": "self",
}


def test_a_complete_consent_has_every_element_and_holds_through_its_last_day() -> None:
    values = consent_values(SIGNED, ["safety_status", "contact_point"], DENVER, NOW)
    data = ConsentRecordedData(**values, consent_id=uuid4(), person_id=uuid4(), actor="maya")
    assert data.recipient.contact_id == CONTACT and data.recipient.kind == "family_contact"
    assert data.expires_at == datetime(2027, 6, 1, tzinfo=DENVER)  # the end of 31 May, Denver time
    assert data.signed_at == NOW and data.revocation_explained is True


@pytest.mark.parametrize(
    ("change", "information", "field"),
    [
        ({"revocation_explained": ""}, ["safety_status"], "revocation_explained"),
        ({"expires_on": "", "expiry_event": ""}, ["safety_status"], "expires_on"),
        ({}, [], "information"),
        ({}, ["everything"], "information"),
        ({"recipient": "designation"}, ["safety_status"], "designation"),
        ({"recipient": "contact:not-an-id"}, ["safety_status"], "recipient"),
        ({"purpose": "marketing"}, ["safety_status"], "purpose"),
        ({"expires_on": "2026-11-01"}, ["safety_status"], "expires_on"),
        ({"signed_at": "yesterday"}, ["safety_status"], "signed_at"),
    ],
)
def test_a_consent_missing_an_element_is_refused_naming_it(change: dict, information: list, field: str) -> None:
    with pytest.raises(InvalidFormValue) as refused:
        consent_values({**SIGNED, **change}, information, DENVER, NOW)
    assert refused.value.field == field


def test_a_place_is_chosen_by_its_gazetteer_name_or_by_lat_and_lon() -> None:
    assert chosen_place({"place": "union station"}, PLACES) == {"lat": 39.7527, "lon": -105.0001}
    assert chosen_place({"lat": "39.7", "lon": "-104.9", "place": "ignored"}, PLACES) == {"lat": 39.7, "lon": -104.9}
    assert chosen_place({}, PLACES) is None
    refusals = (({"place": "Nowhere St"}, "place"), ({"lat": "39.7"}, "lon"), ({"lat": "x", "lon": "1"}, "lat"))
    for values, field in refusals:
        with pytest.raises(InvalidFormValue) as refused:
            chosen_place(values, PLACES)
        assert refused.value.field == field
    assert "Union Station" in place_names(PLACES) and "1701 Wynkoop St" not in place_names(PLACES)


def test_profile_and_contact_values_read_the_choices_and_tidy_phones() -> None:
    profile = profile_values({"alias": " Jay ", "phone": "+1 555-019-8877", "preferred_language": "es"}, None)
    assert profile == {
        "alias": "Jay",
        "preferred_language": "es",
        "contact_preference": "none",
        "phone": "+15550198877",
        "chosen_place": None,
    }
    with pytest.raises(InvalidFormValue) as refused:
        contact_values({"name": "Robin", "relation": "landlord", "phone": "+15550198877"})
    assert refused.value.field == "relation"


def test_a_form_sent_twice_records_under_the_same_ids_and_two_forms_never_share_one() -> None:
    who = Principal(subject="maya", role=AccessRole.RESPONDER, responder_id=uuid4())
    key = {"form_key": str(uuid4())}
    again = form_ids(who, key, "/workspace/people/1/contact").id_for("family.contact_added")
    assert form_ids(who, key, "/workspace/people/1/contact").id_for("family.contact_added") == again
    assert form_ids(who, key, "/workspace/people/2/contact").id_for("family.contact_added") != again
    assert form_ids(who, {}, "/x").id_for("a") != form_ids(who, {}, "/x").id_for("a")  # no key: fresh each time
