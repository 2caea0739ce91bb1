"""NOBODY ACCEPTED on the director's board, and an incident's timeline, in a real headless Chromium at a phone's size
(390 x 844) and a desktop's (1280 x 800).

An overdose climbs the ladder while the board is open: it shows "paging, step 3" among the others; when the
ladder runs out and the alarm is raised (events driven onto the stream), the live board, without a reload, turns
it red, puts it first and says NOBODY ACCEPTED; when someone accepts, it flips back. The timeline of such an
incident reads in the organisation's time zone, one row per text or call, and fits a phone's width.

``CRISIS_SCREENSHOT_DIR=docs/screenshots`` keeps the desktop screenshots as ``board.png`` and ``timeline.png``
there (the README shows them); otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.contract.events import CrisisKind, Priority
from services.projections.bootstrap import build
from services.runtime.clock import ManualClock
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_projections import T0, Person, issue_tokens, make_settings, team
from tests.support.asgi_server import serving
from tests.support.incident_story import LadderStory, director, nobody_accepted
from tests.support.stream import publish_all

pytestmark = pytest.mark.e2e
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
DEVICES = {"phone": PHONE, "desktop": DESKTOP}
RED = "rgb(176, 58, 72)"  # --bad in app.css


def crew() -> dict[str, Person]:
    return team() | {"director": director()}


@contextlib.asynccontextmanager
async def signed_in_browser(
    chromium: str,  # noqa: F811
    js: Any,
    nats_server: Any,
    tmp_path: Path,
    people: dict[str, Person],
    device: str,
    minutes_after: float,
) -> AsyncIterator[Any]:
    """The projections service over the stream, and a director signed in on ``device``: yields the page."""
    from playwright.async_api import async_playwright, expect

    settings = make_settings(nats_server.url, tmp_path / "var", "")
    settings.var_dir.mkdir(parents=True)
    # the workspace's director signs in as dr-director; the roster's director needs no credential of their own
    tokens = issue_tokens(settings.credentials_file, {k: v for k, v in people.items() if k != "director"})
    app = build(settings, ManualClock(T0 + timedelta(minutes=minutes_after)))
    with serving(app) as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await (await browser.new_context(**DEVICES[device])).new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{url}/workspace/sign-in")
                await page.fill("#username", "dr-director")
                await page.fill("#token", tokens["director"])
                await page.click("button[type=submit]")
                await expect(page.locator("h1")).to_have_text("Open incidents")
                yield page
            finally:
                await browser.close()


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("CRISIS_SCREENSHOT_DIR") or tmp_path)


async def fits_the_phone(page: Any, device: str, shot: Path) -> None:
    """On a phone: nothing wider than the screen (no sideways scrolling); its screenshot kept at ``shot``."""
    if device == "phone":
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=str(shot), full_page=True)


@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_an_exhausted_ladder_turns_red_and_first_on_the_live_board_without_a_reload(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
    device: str,
) -> None:
    from playwright.async_api import expect

    people = crew()
    clinician, coach, nurse = people["clinician"], people["coach"], people["nurse"]
    climbing = LadderStory(code="5050", address="1701 Wynkoop St")
    accepted = LadderStory(code="6060", start=T0 + timedelta(minutes=2), address="Civic Center Park")
    en_route = LadderStory(code="7070", start=T0 + timedelta(minutes=3), address="1550 Blake St")
    on_scene = LadderStory(code="8080", start=T0 + timedelta(minutes=4), address="2100 Larimer St")
    crisis = LadderStory(
        code="9090",
        kind=CrisisKind.SELF_HARM_RISK,
        priority=Priority.P2,
        overdose=None,
        start=T0 + timedelta(minutes=9),
        address="Confluence Park",
    )
    ladder = nobody_accepted(climbing, people)
    ran_out = next(i for i, e in enumerate(ladder) if e.type == "dispatch.timed_out" and e.occurred_at > climbing.at(4))
    await publish_all(
        js,
        [
            *(person.registered() for person in people.values()),
            *ladder[:ran_out],  # paged up to the director, who has not answered yet
            accepted.reported(),
            *accepted.page(nurse, 0.1),
            accepted.acknowledged(nurse, 1),
            en_route.reported(),
            *en_route.page(coach, 0.1),
            en_route.acknowledged(coach, 0.5),
            en_route.en_route(coach, 1),
            on_scene.reported(),
            *on_scene.page(clinician, 0.1),
            on_scene.acknowledged(clinician, 0.4),
            on_scene.arrived(clinician, 5),
            crisis.reported(),
            *crisis.page(people["nurse"], 0.1),
        ],
    )
    async with signed_in_browser(chromium, js, nats_server, tmp_path, people, device, 12) as page:
        rows = page.locator("#board-rows tr")
        climbing_row = page.locator(f'tr[data-incident="{climbing.incident_id}"]')
        await expect(climbing_row).to_have_attribute("data-stage", "paging")
        await expect(climbing_row.locator(".dispatch")).to_have_text("paging, step 3")
        await expect(rows.last).to_have_attribute("data-incident", str(climbing.incident_id))  # oldest: last
        await expect(page.locator("#unfilled-alert")).to_be_hidden()
        await expect(page.locator("body")).to_have_attribute("data-live", "connected")
        await page.evaluate("window.stillTheSamePage = true")

        await publish_all(js, ladder[ran_out:])  # the director's page times out: the ladder ran out, the alarm
        await expect(rows.first).to_have_attribute("data-incident", str(climbing.incident_id))
        await expect(rows.first).to_have_attribute("data-stage", "unfilled")
        dispatch = rows.first.locator(".dispatch")
        await expect(dispatch).to_have_text("UNFILLED: nobody accepted; alarm sounded once")
        await expect(dispatch).to_have_css("background-color", RED)
        await expect(rows.first.locator("td").first).to_have_css("background-color", "rgb(251, 233, 235)")
        await expect(page.locator("#unfilled-alert")).to_have_text("NOBODY ACCEPTED: 1 incident with nobody going.")
        await expect(page.locator("#unfilled-alert")).to_have_css("background-color", RED)
        assert re.match(r"\(1 unfilled\) Open incidents", await page.title())
        await expect(rows.first).to_contain_text("1701 Wynkoop St")
        await expect(rows).to_have_count(5)
        assert await page.evaluate("window.stillTheSamePage") is True  # no reload happened
        await fits_the_phone(page, device, tmp_path / "board-phone.png")
        if device == "desktop":
            await page.screenshot(path=str(shots_dir(tmp_path) / "board.png"), full_page=True)

        await publish_all(js, [climbing.acknowledged(clinician, 6), *climbing.alarm_stopped(6, [people["supervisor"]])])
        await expect(climbing_row).to_have_attribute("data-stage", "accepted")
        await expect(climbing_row.locator(".dispatch")).to_have_text("accepted by Cleo Clinician")
        await expect(rows.last).to_have_attribute("data-incident", str(climbing.incident_id))
        await expect(page.locator("#unfilled-alert")).to_be_hidden()
        assert (
            await page.title() == "Open incidents · Crisis workspace"
            and await page.evaluate("window.stillTheSamePage") is True
        )


@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_a_timeline_reads_in_local_time_with_one_row_per_message(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
    device: str,
) -> None:
    from playwright.async_api import expect

    people = crew()
    clinician, coach = people["clinician"], people["coach"]
    story = LadderStory(code="4821", relation=None, delivery_minutes=0.08)
    await publish_all(
        js,
        [
            *(person.registered() for person in people.values()),
            *nobody_accepted(story, people),
            story.acknowledged(clinician, 6),
            story.withdrawn(coach, 6),
            *story.message(coach, "page_covered", 6, {"code": story.code}),
            *story.alarm_stopped(6, [people["supervisor"], people["director"]]),
            *story.message(clinician, "ack_confirmed", 6, {"code": story.code}),
            story.en_route(clinician, 8),
            story.arrived(clinician, 19),
            story.naloxone(20),
            story.ems_arrived(24),
            story.completed(clinician, 50),
        ],
    )
    async with signed_in_browser(chromium, js, nats_server, tmp_path, people, device, 90) as page:
        await page.goto(page.url.rstrip("/") + f"/incidents/{story.incident_id}")
        timeline = page.locator("#timeline")
        await expect(timeline).to_contain_text("Monday 23 November 2026")
        await expect(timeline).to_contain_text("Overdose reported, P1")
        await expect(timeline).to_contain_text(
            "Page text to Cleo Clinician (clinician): sent 02:00:12, delivered 02:00:16"
        )
        await expect(timeline).to_contain_text("NOBODY ACCEPTED alarm call to Dana Director (director): call placed")
        await expect(page.locator("#dispatch-state")).to_have_text("done")
        text = await page.locator("main").inner_text()
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d", text) and "MST" in text
        assert "dispatch.offered" not in text and "unknown relation" not in text
        await fits_the_phone(page, device, tmp_path / "timeline-phone.png")
        if device == "desktop":
            await page.screenshot(path=str(shots_dir(tmp_path) / "timeline.png"), full_page=True)
