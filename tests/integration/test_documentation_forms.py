"""Nothing a clinician types is lost: every field of the workspace's documentation form reaches the page, the
print-ready HTML and the PDF; a form that cannot be recorded as typed is refused with its field named and shown
again as typed (never "Saved." for something not saved); EMS activation is what was recorded. Over a real
nats-server and the projections service on a real port."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest

from services.contract.events import CrisisKind, OverdoseDetails, SelfHarmRiskDetails
from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import Story, page_csrf, publish_all, signed_in, workspace
from tests.support.documents import page_text, pdf_text, section_text

# The workspace reads a form's times in the organisation's zone (America/Denver by default): 09:00 UTC, when the
# stories start, is 02:00 MST.
EVERY_FIELD: list[tuple[str, str, str, str]] = [
    # form field, what is typed, the row's label, what the row then says
    ("disposition", "transported_to_ed", "Disposition", "transported to ED"),
    ("ems_activated", "true", "EMS activated", "yes"),
    ("ems_agency", "Denver Fire Station 6", "EMS agency", "Denver Fire Station 6"),
    ("handoff_organisation", "Denver Health ED", "Hand-off organisation", "Denver Health ED"),
    ("handoff_receiving_person", "Charge nurse Alvarez", "Hand-off receiving person", "Charge nurse Alvarez"),
    ("supervisor_name", "Sam Supervisor", "Supervisor", "Sam Supervisor"),
    ("documentation_minutes", "17", "Documentation", "17 min"),
    ("language", "Spanish", "Language", "Spanish"),
    ("interpreter_used", "true", "Interpreter used", "yes"),
    ("acknowledged_at", "2026-11-23T02:01:00", "Acknowledged", "2026-11-23 02:01:00 MST"),
    # the coach texted OTW at 02:02: the texted time stays, the documented one is shown beside it
    (
        "en_route_at",
        "2026-11-23T02:03:00",
        "En route",
        "2026-11-23 02:02:00 MST (documented as 2026-11-23 02:03:00 MST)",
    ),
    ("on_scene_at", "2026-11-23T02:12:00", "On scene", "2026-11-23 02:12:00 MST"),
    ("handed_off_at", "2026-11-23T02:50:00", "Care handed off", "2026-11-23 02:50:00 MST"),
    ("cleared_at", "2026-11-23T03:05:00", "Cleared", "2026-11-23 03:05:00 MST"),
    ("follow_up_plan", "Caring contact within 24 h", "Follow-up plan", "Caring contact within 24 h"),
    ("safety_plan.warning_signs", "Pacing at night", "Safety plan 1. Warning signs", "Pacing at night"),
    ("safety_plan.internal_coping", "Music, a walk", "Safety plan 2. Internal coping strategies", "Music, a walk"),
    ("safety_plan.social_distractions", "Cafe on 5th", "Safety plan 3. People and places that distract", "Cafe on 5th"),
    ("safety_plan.help_contacts", "Sister Ana", "Safety plan 4. People to ask for help", "Sister Ana"),
    ("safety_plan.professional_contacts", "988", "Safety plan 5. Professionals and agencies", "988"),
    ("safety_plan.means_safety", "Meds locked away", "Safety plan 6. Making the environment safe", "Meds locked away"),
]
DOSE_FORM = {
    "dose.given_at": "2026-11-23T02:05:00",
    "dose.product": "Narcan nasal spray",
    "dose.dose_mg": "4",
    "dose.route": "intramuscular",
    "dose.given_by_role": "bystander",
    "dose.response": "improved",
}
DOSE_SAYS = (
    "Naloxone dose 1",
    "2026-11-23 02:05:00 MST, Narcan nasal spray 4 mg, intramuscular, given by bystander, response improved "
    "(entered on the documentation)",
)
NOTE_LINES = ["Met at the bench by track 3.", "Agreed to a call tomorrow; sister present."]


def self_harm_story() -> Story:
    answers = SelfHarmRiskDetails(q1=True, q2=True, q3=True, q4=False, q5=False, q6_ever=False)
    return Story(kind=CrisisKind.SELF_HARM_RISK, overdose=None, self_harm=answers, risk_level="moderate")


async def test_every_documentation_form_field_reaches_the_page_the_print_html_and_the_pdf(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = self_harm_story()
        await publish_all(js, story.full_response(space.people["clinician"], ack=1, en_route=2, arrive=12, done=58))
        await space.settled(js)
        url = f"/workspace/incidents/{story.incident_id}/documentation"
        director = await signed_in(space, "dr-director", "director")
        try:
            form = {name: typed for name, typed, _, _ in EVERY_FIELD} | DOSE_FORM | {"notes": "\n".join(NOTE_LINES)}
            saved = await director.post(
                f"{url}/fields", data=form | {"csrf_token": page_csrf((await director.get(url)).text)}
            )
            assert saved.status_code == 303, saved.text
            assert "Saved" in saved.headers["location"] and "error" not in saved.headers["location"]
            shown = (await director.get(url)).text
        finally:
            await director.aclose()
        async with space.client("director") as api:
            printed = (await api.get(f"/v1/incidents/{story.incident_id}/documentation.html")).text
            pdf = (await api.get(f"/v1/incidents/{story.incident_id}/documentation.pdf")).content
    exports = {"page": page_text(shown), "print": page_text(printed), "pdf": pdf_text(pdf)}
    missing = [
        f"{name} ({label}: {says}) not in the {where}"
        for name, _, label, says in [*EVERY_FIELD, ("dose", "", *DOSE_SAYS)]
        for where, text in exports.items()
        if f"{label} {says}" not in text
    ]
    missing += [
        f"note line {line!r} not in the {where}"
        for line in NOTE_LINES
        for where, text in exports.items()
        if line not in text
    ]
    assert not missing, "\n".join(missing)
    notes = section_text(shown, "section-notes")
    assert "dr-director" in notes and all(line in notes for line in NOTE_LINES)
    assert "\n".join(NOTE_LINES) not in shown and "<br>".join(html_lib.escape(line) for line in NOTE_LINES) in shown


async def test_a_second_note_is_added_to_the_first_not_written_over_it(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        url = f"/workspace/incidents/{story.incident_id}/documentation"
        director = await signed_in(space, "dr-director", "director")
        try:
            for note in ("First visit: nobody home.", "Second visit: spoke with him."):
                csrf = page_csrf((await director.get(url)).text)
                answer = await director.post(f"{url}/fields", data={"notes": note, "csrf_token": csrf})
                assert answer.status_code == 303 and "Saved%3A+a+note." in answer.headers["location"]
            notes = section_text((await director.get(url)).text, "section-notes")
        finally:
            await director.aclose()
    assert "First visit: nobody home." in notes and "Second visit: spoke with him." in notes


async def stream_length(js) -> int:
    return (await js.stream_info(STREAM_NAME)).state.last_seq


@pytest.mark.parametrize(
    ("typed", "field", "kept"),
    [
        # a dose without the time it was given used to answer "Saved." and drop the dose
        ({"dose.product": "Narcan nasal spray", "dose.response": "improved"}, "dose.given_at", "Narcan nasal spray"),
        ({"dose.given_at": "2026-11-23T02:05:00", "dose.dose_mg": "4"}, "dose.product", "2026-11-23T02:05:00"),
        (
            {"dose.given_at": "2026-11-23T02:05:00", "dose.product": "Narcan", "dose.dose_mg": "four"},
            "dose.dose_mg",
            "Narcan",
        ),
        ({"documentation_minutes": "a quarter hour"}, "documentation_minutes", "a quarter hour"),
        ({"cleared_at": "yesterday"}, "cleared_at", "yesterday"),
        ({"disposition": "went_home"}, "disposition", "Keep every word of this note."),
        ({"interpreter_used": "maybe"}, "interpreter_used", "Keep every word of this note."),
        ({"language": "x" * 51}, "language", "x" * 51),
    ],
)
async def test_a_documentation_form_that_cannot_be_recorded_is_refused_with_its_field_named_and_kept_as_typed(
    js, nats_server, tmp_path, typed, field, kept
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [story.reported()])
        await space.settled(js)
        url = f"/workspace/incidents/{story.incident_id}/documentation"
        director = await signed_in(space, "dr-director", "director")
        try:
            before = await stream_length(js)
            csrf = page_csrf((await director.get(url)).text)
            form = typed | {"notes": "Keep every word of this note.", "csrf_token": csrf}
            refused = await director.post(f"{url}/fields", data=form)
            assert await stream_length(js) == before  # nothing recorded, not even the note
        finally:
            await director.aclose()
    assert refused.status_code == 422
    text = page_text(refused.text)
    assert "Not saved; nothing was recorded." in text and f"{field}:" in text and "Saved." not in text
    assert f'aria-invalid="true" aria-describedby="{field.replace(".", "_")}-error"' in refused.text
    assert "Keep every word of this note." in refused.text and html_lib.escape(kept) in refused.text


async def test_a_dose_typed_with_its_time_is_recorded_and_the_answer_says_what_was_saved(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story(overdose=OverdoseDetails(ems_called=False, naloxone_doses_given=1))
        await publish_all(js, [story.reported()])
        await space.settled(js)
        url = f"/workspace/incidents/{story.incident_id}/documentation"
        director = await signed_in(space, "dr-director", "director")
        try:
            csrf = page_csrf((await director.get(url)).text)
            saved = await director.post(f"{url}/fields", data=DOSE_FORM | {"csrf_token": csrf})
        finally:
            await director.aclose()
        async with space.client("director") as api:
            doc = (await api.get(f"/v1/incidents/{story.incident_id}/documentation")).json()
    assert saved.status_code == 303 and "Saved%3A+a+naloxone+dose." in saved.headers["location"]
    [dose] = doc["what"]["interventions"]["naloxone_doses"]
    assert dose["given_at"].startswith("2026-11-23T09:05:00") and dose["product"] == "Narcan nasal spray"
    assert "naloxone_doses" not in {gap["key"] for gap in doc["gaps"]}


async def test_ems_activated_is_what_was_recorded_and_the_form_records_it(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        not_called = Story(overdose=OverdoseDetails(ems_called=False), code="5101")
        called = Story(overdose=OverdoseDetails(ems_called=True), code="5102")
        arrived = Story(overdose=OverdoseDetails(ems_called=False), code="5103")
        await publish_all(js, [not_called.reported(), called.reported(), arrived.reported(), arrived.ems_arrived(9)])
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        try:
            pages = {}
            for story in (not_called, called, arrived):
                pages[story.code] = (await director.get(f"/workspace/incidents/{story.incident_id}/documentation")).text
            url = f"/workspace/incidents/{not_called.incident_id}/documentation"
            answer = await director.post(
                f"{url}/fields", data={"ems_activated": "false", "csrf_token": page_csrf(pages["5101"])}
            )
            assert answer.status_code == 303 and "EMS" in answer.headers["location"]
            recorded_no = (await director.get(url)).text
        finally:
            await director.aclose()
    assert "EMS activated not recorded" in page_text(pages["5101"])
    assert 'data-gap="ems_activated"' in pages["5101"] and 'data-gap="ems_agency"' not in pages["5101"]
    assert "EMS activated yes" in page_text(pages["5102"]) and 'data-gap="ems_agency"' in pages["5102"]
    assert "EMS activated yes" in page_text(pages["5103"]) and 'data-gap="ems_agency"' not in pages["5103"]
    assert "EMS activated no" in page_text(recorded_no) and 'data-gap="ems_' not in recorded_no


async def test_a_refused_sign_off_keeps_the_comment_and_records_nothing(js, nats_server, tmp_path) -> None:
    from tests.e2e.test_workspace_browser import attested_documentation

    async with workspace(js, nats_server, tmp_path) as space:
        clinician = space.people["clinician"]
        story = Story(overdose=OverdoseDetails(ems_called=True))
        events = story.full_response(clinician, ack=1, en_route=2, arrive=12, done=58)
        await publish_all(js, [*events, *attested_documentation(story, "clinician-user", clinician.responder_id)])
        await space.settled(js)
        url = f"/workspace/incidents/{story.incident_id}/documentation"
        director = await signed_in(space, "dr-director", "director")
        try:
            csrf = page_csrf((await director.get(url)).text)
            before = await stream_length(js)
            long_comment = await director.post(
                f"{url}/sign-off", data={"decision": "returned", "comment": "y" * 1001, "csrf_token": csrf}
            )
            no_decision = await director.post(f"{url}/sign-off", data={"comment": "Looks fine.", "csrf_token": csrf})
            assert await stream_length(js) == before
        finally:
            await director.aclose()
    assert long_comment.status_code == 422 and "comment:" in page_text(long_comment.text)
    assert "y" * 1001 in long_comment.text
    assert no_decision.status_code == 422 and "decision:" in page_text(no_decision.text)
    assert "Looks fine." in no_decision.text and "Signed off." not in no_decision.text


async def test_metrics_days_are_whole_local_days_and_a_reversed_range_is_refused(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        # 23 Nov 02:00 MST and 23 Nov 23:30 MST (24 Nov 06:30 UTC): both on the 23rd in Denver
        early, late = Story(code="6101"), Story(code="6102", start=Story().start + timedelta(hours=21, minutes=30))
        await publish_all(js, [early.reported(), late.reported()])
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        try:
            one_day = await director.get("/workspace/metrics", params={"since": "2026-11-23", "until": "2026-11-23"})
            reversed_range = await director.get(
                "/workspace/metrics", params={"since": "2026-11-24", "until": "2026-11-23"}
            )
        finally:
            await director.aclose()
    assert one_day.status_code == 200
    assert "All incidents 2" in page_text(one_day.text.split('data-dimension="by_priority"')[1])
    assert reversed_range.status_code == 422 and "until:" in reversed_range.text
