"""The treatment-program directory in a real headless Chromium: a coach signs in, opens Programs from the
navigation, filters by medication, and reads each program's availability in words; a report older than the
maximum age reads "unconfirmed", never open. Then the program's own signed link: its intake desk reports two beds
open and the coach's page says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.projections.bootstrap import build
from services.runtime.clock import ManualClock
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_directory_read_model import CLINIC, RESIDENTIAL, registered, reported
from tests.integration.test_projections import T0, issue_tokens, make_settings, publish_all, team
from tests.support.asgi_server import serving
from tests.support.stream import last_sequence, tracked

pytestmark = pytest.mark.e2e


async def test_a_coach_filters_the_directory_and_a_program_reports_by_its_link(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(nats_server.url, tmp_path / "var", "")
    settings.var_dir.mkdir(parents=True)
    people = team()
    tokens = issue_tokens(settings.credentials_file, people)
    now = T0 + timedelta(days=2)
    await publish_all(
        js,
        [
            *(person.registered() for person in people.values()),
            registered(CLINIC, "Bannock Clinic", T0),
            registered(RESIDENTIAL, "Cheesman House", T0, levels_of_care=["3.5"], medications=["naltrexone"]),
            reported(CLINIC, T0, 4),  # two days old: stale
            reported(RESIDENTIAL, now - timedelta(minutes=30), 0),
        ],
    )
    clock = ManualClock(now)
    app = build(settings, clock)
    with serving(app) as url:
        await tracked(app.state.read_models.store, await last_sequence(js))
        link, _ = app.state.program_links.url(RESIDENTIAL, now)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{url}/workspace/")
                await page.fill("#username", "coach-user")
                await page.fill("#token", tokens["coach"])
                await page.click("button[type=submit]")
                await page.click("header a[href='/workspace/programs']")
                await expect(page.locator("h1")).to_have_text("Treatment programs")
                clinic = page.locator(f'tr[data-program="{CLINIC}"] td.availability')
                await expect(clinic).to_contain_text("unconfirmed (as of")
                await expect(clinic).not_to_contain_text("open")
                residential = page.locator(f'tr[data-program="{RESIDENTIAL}"] td.availability')
                await expect(residential).to_contain_text("full as of")

                await page.select_option("select[name=medication]", "naltrexone")
                await page.click("#program-filters button[type=submit]")
                await expect(page.locator("#program-filter-said")).to_contain_text("medication naltrexone (1 program)")
                await expect(page.locator(f'tr[data-program="{CLINIC}"]')).to_have_count(0)

                desk = await browser.new_page()  # the program's intake desk: no sign-in, only the link
                await desk.goto(f"{url}{link}")
                await expect(desk.locator("h1")).to_have_text("Cheesman House")
                await desk.fill("input[name=beds_open]", "2")
                await desk.click("#program-report button:not([name])")
                await expect(desk.locator(".flash")).to_have_text("Thank you: saved.")
                await expect(desk.locator("#program-now")).to_contain_text("open: 2 beds")

                await page.reload()
                await expect(residential).to_contain_text("open: 2 beds as of")
            finally:
                await browser.close()
