"""The follow-up tasks and metrics pages as a clinical director reads them: each task says which incident it
follows up (by the incident's code), its own code is labelled as the task's, a completed task's note is shown on
the task and in the incident's documentation and exports, codes read as words everywhere, a refused task form
keeps what was typed, and the metrics colour overdue as bad. Over a real nats-server and a real port."""

from __future__ import annotations

import re
from datetime import timedelta

from services.runtime.stream import STREAM_NAME
from tests.integration.test_projections import Story, page_csrf, publish_all, signed_in, wait_for_stream, workspace
from tests.support.documents import page_text, pdf_text

RAW_CODE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
"""A code as the contract spells it ('contact_made', 'peer_coach'): never what a page or an export says."""
NOTE = "Kit replaced; prefers a text before visits."


async def completed_outreach(space, js) -> tuple[Story, str, str]:
    """An overdose the coach answered; the coach completes its outreach task on the tasks page with a note.
    Returns the story, the task's id and what the completion answered."""
    story = Story(code="4821")
    await publish_all(js, story.full_response(space.people["coach"], ack=1, en_route=2, arrive=12, done=40))
    await wait_for_stream(js, lambda es: any(e.type == "followup.assigned" for e in es))
    await space.settled(js)
    pat = await signed_in(space, "coach-user", "coach")
    try:
        tasks = await pat.get("/workspace/tasks")
        task_id = re.search(r'data-task="([^"]+)"', tasks.text)[1]
        done = await pat.post(
            f"/workspace/tasks/{task_id}/complete",
            data={"outcome": "contact_made", "note": NOTE, "csrf_token": page_csrf(tasks.text)},
        )
    finally:
        await pat.aclose()
    await space.settled(js)
    return story, task_id, done.headers["location"]


async def test_the_tasks_page_names_the_incident_labels_the_task_code_and_shows_the_note(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story, task_id, answered = await completed_outreach(space, js)
        director = await signed_in(space, "dr-director", "director")
        try:
            tasks = (await director.get("/workspace/tasks")).text
        finally:
            await director.aclose()
        async with space.client("director") as api:
            task = (await api.get(f"/v1/followups/{task_id}")).json()
    assert "Task+completed." in answered
    headings = re.findall(r"<th[^>]*>([^<]+)</th>", tasks.split("</thead>")[0])
    assert headings == ["Incident", "Task", "Task code", "Owner", "Due", "Status", "Actions"]
    row = tasks.split(f'data-task="{task_id}"')[1].split("</tr>")[0]
    link = re.search(r'<a class="incident" href="([^"]+)">([^<]+)</a>', row)
    assert link[1] == f"/workspace/incidents/{story.incident_id}" and link[2] == "Incident 4821"
    assert f">{task['task_code']}<" in row and task["incident"] == "incident 4821"
    visible = page_text(row)
    assert "done contact made" in visible and f"Note: {NOTE}" in visible and "by coach-user" in visible
    assert "peer coach" in visible and "Pat Peer" in visible
    assert not RAW_CODE.findall(page_text(tasks)), RAW_CODE.findall(page_text(tasks))


async def test_a_completed_tasks_note_is_in_the_documentation_page_and_both_exports_in_plain_words(
    js, nats_server, tmp_path
) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story, task_id, _ = await completed_outreach(space, js)
        director = await signed_in(space, "dr-director", "director")
        try:
            shown = (await director.get(f"/workspace/incidents/{story.incident_id}/documentation")).text
        finally:
            await director.aclose()
        async with space.client("director") as api:
            code = (await api.get(f"/v1/followups/{task_id}")).json()["task_code"]
            printed = (await api.get(f"/v1/incidents/{story.incident_id}/documentation.html")).text
            pdf = (await api.get(f"/v1/incidents/{story.incident_id}/documentation.pdf")).content
    sections = shown.split('id="fields-form"')[0]  # the form's option values are codes by design
    for where, text in {"page": page_text(sections), "print": page_text(printed), "pdf": pdf_text(pdf)}.items():
        assert f"Follow-up {code}: Post-overdose outreach visit" in text, where
        assert "done: contact made" in text and "by coach-user" in text, where
        assert f"Follow-up {code}, note {NOTE}" in text, where
        assert not RAW_CODE.findall(text), (where, RAW_CODE.findall(text))


async def test_a_refused_task_form_keeps_what_was_typed_and_records_nothing(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        _, task_id, _ = await completed_outreach(space, js)
        director = await signed_in(space, "dr-director", "director")
        try:
            csrf = page_csrf((await director.get("/workspace/tasks")).text)
            before = (await js.stream_info(STREAM_NAME)).state.last_seq
            again = await director.post(
                f"/workspace/tasks/{task_id}/complete",
                data={"outcome": "no_contact", "note": "A second note typed in vain", "csrf_token": csrf},
            )
            no_due = await director.post(
                f"/workspace/tasks/{task_id}/reschedule", data={"reason": "client away", "csrf_token": csrf}
            )
            no_one = await director.post(f"/workspace/tasks/{task_id}/assign", data={"csrf_token": csrf})
            assert (await js.stream_info(STREAM_NAME)).state.last_seq == before
        finally:
            await director.aclose()
    assert again.status_code == 409 and "Not completed; nothing was recorded" in page_text(again.text)
    # the task is done, so its forms are gone: the refusal says why, and shows the note typed in vain
    row = page_text(again.text.split(f'data-task="{task_id}"')[1].split("</tr>")[0])
    assert "Not recorded: the task is done. Your note: A second note typed in vain" in row
    assert "already done" in page_text(again.text)
    assert no_due.status_code in (409, 422) and "Not rescheduled" in page_text(no_due.text)
    assert no_one.status_code in (409, 422) and "Not assigned" in page_text(no_one.text)


async def test_a_refused_completion_of_an_open_task_puts_the_note_back_in_its_form(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story(code="4822")
        await publish_all(js, story.full_response(space.people["coach"], ack=1, en_route=2, arrive=12, done=40))
        await wait_for_stream(js, lambda es: any(e.type == "followup.assigned" for e in es))
        await space.settled(js)
        pat = await signed_in(space, "coach-user", "coach")
        try:
            tasks = await pat.get("/workspace/tasks")
            task_id = re.search(r'data-task="([^"]+)"', tasks.text)[1]
            csrf = page_csrf(tasks.text)
            long_note = "n" * 2001
            refused = await pat.post(
                f"/workspace/tasks/{task_id}/complete",
                data={"outcome": "declined", "note": long_note, "csrf_token": csrf},
            )
            moved = await pat.post(
                f"/workspace/tasks/{task_id}/reschedule",
                data={"due_at": "not a time", "reason": "client in hospital", "csrf_token": csrf},
            )
        finally:
            await pat.aclose()
    assert refused.status_code == 422 and "Not completed; nothing was recorded: note:" in page_text(refused.text)
    row = refused.text.split(f'data-task="{task_id}"')[1].split("</tr>")[0]
    assert f'value="{long_note}"' in row and '<option value="declined" selected>' in row
    assert moved.status_code == 422 and "due_at:" in page_text(moved.text)
    assert 'value="client in hospital"' in moved.text.split(f'data-task="{task_id}"')[1].split("</tr>")[0]


async def test_metrics_colour_overdue_follow_ups_as_bad_and_not_yet_due_as_neutral(js, nats_server, tmp_path) -> None:
    async with workspace(js, nats_server, tmp_path) as space:
        due_later, overdue = Story(code="7001"), Story(code="7002", start=Story().start - timedelta(days=5))
        await publish_all(js, [due_later.reported(), overdue.reported()])
        await space.settled(js)
        director = await signed_in(space, "dr-director", "director")
        try:
            metrics = (await director.get("/workspace/metrics")).text
        finally:
            await director.aclose()
    table = metrics.split('id="follow-up-figures"')[1].split("</table>")[0]
    rows = dict(re.findall(r'<tr data-figure="([a-z_]+)"><td><span class="badge ([a-z_ ]+)">', table))
    assert rows == {
        "done_on_time": "met",
        "done_late": "pending",
        "open_overdue": "overdue",
        "open_not_due": "waiting",
        "cancelled": "cancelled",
    }
    counts = dict(re.findall(r'<tr data-figure="([a-z_]+)">.*?</td><td>(\d+)</td>', table))
    assert counts["open_overdue"] == "1" and counts["open_not_due"] == "1"
    assert "Week of" in page_text(metrics) or "week of" in page_text(metrics)
    assert "All incidents" in page_text(metrics) and not RAW_CODE.findall(page_text(metrics.split("<svg")[0]))
