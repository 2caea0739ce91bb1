"""What the documentation says and how the workspace's form is read, without I/O: EMS activation from what was
recorded, notes that add up, the documented time kept beside a texted one, every value on the record's pages in
plain words, and a form refused with its field named rather than half recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.contract.events import (
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    OverdoseDetails,
)
from services.projections.adapters.pdf_report import documentation_pdf
from services.projections.adapters.record_layout import document_sections
from services.projections.domain.documentation import assemble_documentation
from services.projections.domain.progress import incident_progress
from services.projections.entrypoints.documentation_form import documentation_fields, refusal_words, saved_words
from services.projections.entrypoints.form_values import InvalidFormValue
from tests.integration.test_projections import Story
from tests.support.documents import pdf_text
from tests.unit.test_projections_domain import clinician, recorded

DENVER = ZoneInfo("America/Denver")


def completed(story: Story, minutes: float, by: str = "cleo", **fields) -> object:
    data = DocumentationFieldsCompletedData(
        incident_id=story.incident_id, fields=DocumentationFields(**fields), completed_by=by
    )
    return story._event(DocumentationFieldsCompleted, data, minutes, "tests")


def documented(events, follow_ups=()):
    history = recorded(events)
    return assemble_documentation(history, incident_progress(history), {}, follow_ups)


def rows(doc, zone=UTC, of: str | None = None) -> dict[str, str]:
    """Label -> text of every row (of the section titled ``of`` only, when given)."""
    sections = document_sections(doc, zone)
    return {label: text for title, section in sections if of in (None, title) for label, text in section}


# ---- EMS: what was recorded, never what triage advised ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ems_called", "extra", "fields", "activated", "gaps"),
    [
        # triage said "call 911 now" (ems_now) and nobody has said whether anyone did: a question, not a yes
        (False, [], {}, None, {"ems_activated"}),
        (False, [], {"ems_activated": False}, False, set()),
        (False, [], {"ems_activated": True}, True, {"ems_agency"}),
        (False, [], {"ems_agency": "AMR"}, True, set()),
        (True, [], {}, True, {"ems_agency"}),
        (False, ["arrived"], {}, True, set()),
    ],
)
def test_ems_activated_is_derived_from_what_was_recorded(ems_called, extra, fields, activated, gaps) -> None:
    story = Story(overdose=OverdoseDetails(ems_called=ems_called))
    events = [story.reported()]
    if "arrived" in extra:
        events.append(story.ems_arrived(9, agency="Denver Fire"))
    if fields:
        events.append(completed(story, 30, **fields))
    doc = documented(events)
    assert doc.what["ems"]["activated"] is activated
    assert {g.key for g in doc.gaps if g.key.startswith("ems")} == gaps
    said = rows(doc)["EMS activated"]
    assert said == {None: "not recorded", True: "yes", False: "no"}[activated]


# ---- notes and times ------------------------------------------------------------------------------------------


def test_notes_add_up_with_their_author_and_time_and_every_one_is_on_the_record() -> None:
    story = Story()
    doc = documented(
        [
            story.reported(),
            completed(story, 30, by="cleo", notes="Nobody home.\nLeft a card."),
            completed(story, 90, by="sam", notes="Spoke with him by phone."),
        ]
    )
    assert [(n["by"], n["text"]) for n in doc.notes] == [
        ("cleo", "Nobody home.\nLeft a card."),
        ("sam", "Spoke with him by phone."),
    ]
    notes = dict(next(section for title, section in document_sections(doc, DENVER) if title == "Notes"))
    assert notes == {
        "2026-11-23 02:30:00 MST, cleo": "Nobody home.\nLeft a card.",
        "2026-11-23 03:30:00 MST, sam": "Spoke with him by phone.",
    }


def test_a_documented_time_that_differs_from_the_texted_one_is_shown_beside_it() -> None:
    story, who = Story(), clinician()
    events = story.full_response(who, ack=1, en_route=2, arrive=12, done=40)
    doc = documented([*events, completed(story, 50, en_route_at=story.at(3), on_scene_at=story.at(12))])
    said = rows(doc, DENVER, of="When")
    assert said["En route"] == "2026-11-23 02:02:00 MST (documented as 2026-11-23 02:03:00 MST)"
    assert said["On scene"] == "2026-11-23 02:12:00 MST"  # the same time documented again says it once


def test_a_completed_follow_up_reads_in_words_with_its_note() -> None:
    story = Story()
    task = {
        "task_id": uuid4(),
        "task_code": "7400",
        "title": "Post-overdose outreach visit",
        "assignee_id": uuid4(),
        "assignee_name": "Pat Peer",
        "due_at": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        "status": "done",
        "outcome": "contact_made",
        "note": "Kit replaced.",
        "completed_at": datetime(2026, 11, 25, 17, 0, tzinfo=UTC),
        "completed_by": "coach-user",
    }
    said = rows(documented([story.reported()], [task]), DENVER)
    assert said["Follow-up 7400: Post-overdose outreach visit"] == (
        "done: contact made, 2026-11-25 10:00:00 MST by coach-user; due 2026-11-26 02:00:00 MST; Pat Peer"
    )
    assert said["Follow-up 7400, note"] == "Kit replaced."


def test_the_pdf_gives_a_long_label_a_line_of_its_own_so_nothing_overprints() -> None:
    story = Story()
    task = {
        "task_id": uuid4(),
        "task_code": "7400",
        "title": "Post-overdose outreach visit (naloxone kit, test strips, MOUD referral offer)",
        "assignee_id": None,
        "due_at": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        "status": "open",
        "outcome": None,
    }
    doc = documented([story.reported(), completed(story, 5, notes="See the hand-off sheet.")], [task])
    text = pdf_text(documentation_pdf(doc, "Crisis documentation, incident 4821", story.at(60), DENVER))
    assert "Follow-up 7400: Post-overdose outreach visit (naloxone kit, test strips, MOUD referral offer) open;" in text
    assert "See the hand-off sheet." in text and "Generated 2026-11-23 03:00:00 MST" in text


# ---- the form ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"dose.product": "Narcan"}, "dose.given_at"),
        ({"dose.response": "improved"}, "dose.given_at"),
        ({"dose.given_at": "2026-11-23T02:05:00"}, "dose.product"),
        ({"dose.given_at": "2026-11-23T02:05", "dose.product": "Narcan", "dose.dose_mg": "4 mg"}, "dose.dose_mg"),
        ({"dose.given_at": "2026-11-23T02:05", "dose.product": "Narcan", "dose.route": "oral"}, "dose.route"),
        ({"dose.given_at": "2026-11-23T02:05", "dose.product": "Narcan", "dose.dose_mg": "0"}, "dose.dose_mg"),
        ({"ems_activated": "perhaps"}, "ems_activated"),
        ({"documentation_minutes": "-3"}, "documentation_minutes"),
        ({"safety_plan.means_safety": "x" * 1001}, "safety_plan.means_safety"),
        ({"notes": "x" * 4001}, "notes"),
    ],
)
def test_a_form_value_that_cannot_be_recorded_as_typed_refuses_the_form_naming_its_field(form, field) -> None:
    with pytest.raises(InvalidFormValue) as refused:
        documentation_fields({"notes": "kept", **form}, DENVER)
    assert refused.value.field == field
    assert refusal_words(refused.value).startswith("Not saved; nothing was recorded.")
    assert f"{field}:" in refusal_words(refused.value)


def test_a_whole_form_is_read_in_the_organisations_zone_and_the_answer_says_what_was_saved() -> None:
    fields = documentation_fields(
        {
            "notes": " Met at the bench. ",
            "ems_activated": "false",
            "cleared_at": "2026-11-23T03:05:00",
            "dose.given_at": "2026-11-23T02:05:00",
            "dose.product": "Narcan nasal spray",
            "dose.route": "intranasal",
            "dose.given_by_role": "",
            "safety_plan.warning_signs": "",
        },
        DENVER,
    )
    assert fields.notes == "Met at the bench." and fields.ems_activated is False
    assert fields.cleared_at == datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
    [dose] = fields.naloxone_doses
    assert dose.given_at == datetime(2026, 11, 23, 9, 5, tzinfo=UTC) and dose.given_by_role == "unknown"
    assert fields.safety_plan is None
    assert saved_words(fields) == "Saved: whether EMS was activated, cleared at, a naloxone dose and a note."
    assert documentation_fields({"dose.route": "intramuscular"}).model_fields_set == set()  # a route alone is no dose
