"""The board, the timeline and the audit log as a clinical director reads them (issue 14), over a real nats-server
and the projections service on a real port.

- The board says each incident's dispatch state at a glance (not paged yet, paging at step n, accepted by whom,
  en route, on scene, unfilled), puts unfilled first, has a location column and says what its filter shows.
- The timeline gives times in the organisation's zone (America/Denver by default) with the zone's abbreviation,
  never a raw ISO timestamp; each text and call is one row saying to whom and what it was, with what became of it
  (sent, call placed, delivered, not sent) folded in; plain words, not event type names.
- The audit log is filtered by person and by incident short code (every incident that had the code, and their
  follow-up tasks).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

from services.contract.events import EVENT_TYPES
from tests.integration.test_projections import T0, signed_in, workspace
from tests.support.incident_story import LadderStory, director, nobody_accepted
from tests.support.stream import publish_all

ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def visible_text(page: str) -> str:
    """What a reader sees of a page: its text without tags (attributes such as data-type are not read)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def board_order(page: str) -> list[str]:
    return re.findall(r'<tr class="stage-[a-z_ ]+[^"]*" data-incident="([^"]+)"', page)


def table(page: str, table_id: str) -> str:
    return page[page.index(f'id="{table_id}"') : page.index("</table>", page.index(f'id="{table_id}"'))]


async def test_the_board_says_each_dispatch_state_and_puts_unfilled_first(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        people = space.people | {"director": director()}
        clinician, coach, nurse = people["clinician"], people["coach"], people["nurse"]
        minutes = iter(range(0, 200, 10))

        def story(code: str) -> LadderStory:
            return LadderStory(code=code, start=T0 + timedelta(minutes=next(minutes)))

        unfilled, waiting, paging, not_yet_unfilled = story("1006"), story("1001"), story("1002"), story("1007")
        accepted, en_route, on_scene = story("1003"), story("1004"), story("1005")
        await publish_all(
            js,
            [
                people["director"].registered(),
                *nobody_accepted(unfilled, people),
                waiting.reported(),
                paging.reported(),
                *paging.page(clinician, 0.1),
                paging.timed_out(clinician, 1.5),
                paging.climbed(1, 2, "supervisor", 1.5),
                *paging.page(people["supervisor"], 1.5, step=2),
                # one empty step is not an unfilled incident: the ladder goes on
                not_yet_unfilled.reported(),
                not_yet_unfilled.unfilled(0.1, 1, ["nobody_on_call"], rung="candidates"),
                not_yet_unfilled.climbed(1, 2, "supervisor", 0.1),
                *not_yet_unfilled.page(people["supervisor"], 0.2, step=2),
                accepted.reported(),
                *accepted.page(clinician, 0.1),
                accepted.acknowledged(clinician, 1),
                en_route.reported(),
                *en_route.page(coach, 0.1),
                en_route.acknowledged(coach, 1),
                en_route.en_route(coach, 2),
                on_scene.reported(),
                *on_scene.page(nurse, 0.1),
                on_scene.acknowledged(nurse, 1),
                on_scene.arrived(nurse, 9),
            ],
        )
        await space.settled(js)
        director_page = await signed_in(space, "dr-director", "director")
        try:
            board = (await director_page.get("/workspace/")).text
            every = (await director_page.get("/workspace/?status=all")).text
        finally:
            await director_page.aclose()
        async with space.client("director") as api:
            listed = (await api.get("/v1/incidents")).json()

    order = board_order(board)
    assert order[0] == str(unfilled.incident_id)  # reported first of all, shown first of all
    assert order[1:] == [str(s.incident_id) for s in (on_scene, en_route, accepted, not_yet_unfilled, paging, waiting)]
    text = visible_text(board)
    for said in (
        "UNFILLED: nobody accepted; alarm sounded once",
        "paging, step 2",
        "accepted by Cleo Clinician",
        "en route: Pat Peer",
        "on scene: Nia Nurse",
        "not paged yet",
        "NOBODY ACCEPTED: 1 incident with nobody going.",
    ):
        assert said in text, said
    assert text.count("UNFILLED") == 1  # the single empty step of 1007 is not unfilled
    assert "<th>Location</th>" in board and "1701 Wynkoop St" in text and "zone central" in text
    assert (
        "Showing open incidents: unfilled ones (nobody accepted) first" in text and "Showing all incidents" not in text
    )
    assert "Showing every incident, open or not:" in visible_text(every)
    assert "02:00 MST" in text and "02:50 MST" in text and "09:00" not in text  # America/Denver; T0 is 09:00 UTC
    by_code = {row["short_code"]: row for row in listed}
    assert by_code["1006"]["dispatch"]["stage"] == "unfilled" and by_code["1006"]["unfilled"] is True
    assert by_code["1007"]["dispatch"] == {"stage": "paging", "words": "paging, step 2"}
    assert by_code["1006"]["location"] == "1701 Wynkoop St"


async def test_the_timeline_reads_in_the_organisations_zone_with_messages_folded_into_one_row_each(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        people = space.people | {"director": director()}
        clinician, coach = people["clinician"], people["coach"]
        told = [people["supervisor"], people["director"]]
        story = LadderStory(code="4821", relation=None)
        events = [
            people["director"].registered(),
            *nobody_accepted(story, people),
            *story.delivered(4.7),
            *story.message(coach, "page_reminder", 5.0, outcome="dropped"),
            story.acknowledged(clinician, 6),
            story.withdrawn(coach, 6),
            *story.message(coach, "page_covered", 6, {"code": story.code}),
            *story.alarm_stopped(6, told),
            story.en_route(clinician, 8),
            story.arrived(clinician, 19),
        ]
        await publish_all(js, events)
        await space.settled(js)
        director_page = await signed_in(space, "dr-director", "director")
        try:
            page = (await director_page.get(f"/workspace/incidents/{story.incident_id}")).text
            board = (await director_page.get("/workspace/")).text
        finally:
            await director_page.aclose()
        async with space.client("director") as api:
            timeline = (await api.get(f"/v1/incidents/{story.incident_id}/timeline")).json()

    rows = visible_text(table(page, "timeline"))
    assert not ISO_TIME.search(visible_text(page))  # no raw timestamps, in sentences or elsewhere
    assert "Times are MST." in visible_text(page) and "Monday 23 November 2026" in rows
    assert not [t for t in EVENT_TYPES if t in rows]  # plain words, not event type names
    for said in (
        "Overdose reported, P1; needs naloxone carrier, EMS now",
        "Paged Cleo Clinician (clinician) as primary at step 1 (front line, P1: best 2 on call): 0.8 km away",
        "Paged Sam Supervisor (supervisor) at step 2 (on-call supervisor): 0.8 km away",
        "answer by 02:01:36 MST",
        "Page text to Cleo Clinician (clinician): sent 02:00:12, delivered 02:04:42",
        "Reminder text to Cleo Clinician (clinician): sent 02:00:39, delivered 02:04:42",
        "Page call to Cleo Clinician (clinician): call placed 02:01:03",
        "Reminder text to Pat Peer (peer coach): not sent 02:05:03 (the page was accepted)",
        "NOBODY ACCEPTED: every step of the ladder, up to the clinical director, was tried",
        "NOBODY ACCEPTED alarm, 1st time, 4 min after the report: texted and called Sam Supervisor (supervisor), "
        "Dana Director (director); sounds again at 02:09:30 MST unless someone accepts",
        "NOBODY ACCEPTED alarm text to Dana Director (director): sent 02:04:33",
        "NOBODY ACCEPTED alarm call to Sam Supervisor (supervisor): call placed 02:04:33",
        "Covered notice (someone else accepted) text to Pat Peer (peer coach)",
        "Alarm ended notice text to Sam Supervisor (supervisor)",
        "NOBODY ACCEPTED alarm stopped (someone accepted); it sounded once",
        "Escalated from step 2 to step 3 (clinical director): nobody answered in time",
        "Accepted page 4821",
    ):
        assert said in rows, said
    assert '<td data-label="Who">reporter</td>' in page  # no relation given: never "(unknown relation)"
    assert "unknown relation" not in page and "+1555" not in page
    assert page.count(">Status<") == 1  # one Status heading (the panel's), its first line is the incident's
    assert 'data-type="sms.sent"' not in page and 'data-type="call.placed"' not in page  # folded into their rows
    assert 'id="dispatch-state">on scene: Cleo Clinician<' in page
    assert "unfilled" not in re.findall(r'data-stage="([a-z_]+)"', board)  # accepted: no longer unfilled

    entries = timeline["entries"]
    assert len(entries) == len({e["event_id"] for e in entries})  # the API keeps one entry per event
    requests = {e["event_id"]: e for e in entries if e["type"] == "notification.requested"}
    reports = [e for e in entries if e["type"] in ("sms.sent", "call.placed", "notification.dropped")]
    assert reports and all(e["folded_into"] in requests for e in reports)
    page_text = next(e for e in requests.values() if e["summary"].startswith("page text to Cleo"))
    assert [o["status"] for o in page_text["outcomes"]] == ["sent", "delivered"]
    assert page_text["outcomes"][1]["time_local"] == "02:04:42 MST" and page_text["how"] == "text"
    assert timeline["time_zone"] == "MST" and timeline["location"] == "1701 Wynkoop St"
    assert timeline["dispatch"]["stage"] == "on_scene"
    assert all(e["time_local"].endswith(" MST") for e in entries)


async def test_the_audit_log_is_filtered_by_person_and_by_incident_code(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        coach = space.people["coach"]
        first, again, other = LadderStory(code="2001"), LadderStory(code="2001"), LadderStory(code="3003")
        again.start = T0 + timedelta(days=2)  # short codes are reused: both incidents had 2001
        await publish_all(
            js,
            [
                *first.full_response(coach, 1, 2, 9, 30),
                *again.full_response(coach, 1, 2, 9, 30),
                *other.full_response(space.people["clinician"], 1, 2, 9, 30),
            ],
        )
        await space.settled(js)
        async with space.client("coach") as pat:
            assert (await pat.get(f"/v1/incidents/{first.incident_id}/timeline")).status_code == 200
            assert (await pat.get(f"/v1/incidents/{other.incident_id}/timeline")).status_code == 403
        async with space.client("director") as api:
            for story in (first, again, other):
                assert (await api.get(f"/v1/incidents/{story.incident_id}/documentation")).status_code == 200
            task = next(
                t for t in (await api.get("/v1/followups")).json() if t["incident_id"] == str(first.incident_id)
            )
            assert (await api.get(f"/v1/followups/{task['task_id']}")).status_code == 200
        reader = await signed_in(space, "dr-director", "director")
        try:
            by_person = (await reader.get("/workspace/audit", params={"subject": "coach-user"})).text
            by_code = (await reader.get("/workspace/audit", params={"incident": "2001"})).text
            both = (await reader.get("/workspace/audit", params={"incident": "2001", "subject": "dr-director"})).text
            wrong = await reader.get("/workspace/audit", params={"incident": "20x1"})
        finally:
            await reader.aclose()

    def entries(page: str) -> list[list[str]]:
        body = table(page, "audit").split("<tbody>")[1]
        return [
            [visible_text(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        ]

    person_rows = entries(by_person)
    assert person_rows and {row[1] for row in person_rows} == {"coach-user"}
    assert {row[5] for row in person_rows} == {"read", "denied"}
    assert ["read the timeline", "incident 3003"] in [[row[3], row[4]] for row in person_rows]
    assert '<option value="coach-user" selected>Pat Peer (coach-user)</option>' in by_person
    code_rows = entries(by_code)
    records = {row[4] for row in code_rows}
    assert records == {"incident 2001", f"follow-up {task['task_code']} (incident 2001)"}
    assert f'href="/workspace/incidents/{first.incident_id}"' in by_code
    assert f'href="/workspace/incidents/{again.incident_id}"' in by_code  # both incidents that had the code
    assert "about incident 2001 and its follow-up tasks" in visible_text(by_code)
    assert {row[1] for row in entries(both)} == {"dr-director"} and len(entries(both)) < len(code_rows)
    assert wrong.status_code == 422 and "4 digits" in wrong.text
