"""The referral in a real headless Chromium (issue 17): a clinician on the incident opens Find treatment from its
timeline, reads the proposed level of care and confirms it, ticks three programs and sends; the referral's page
lists them. A program's intake desk opens its signed link, sees the needs (nothing about the person) and accepts;
the clinician records the transport and the arrival, and the page shows "admitted" with every actor in the history.
Screenshots go to /tmp/shots/."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_directory_read_model import CLINIC, RESIDENTIAL
from tests.integration.test_projections import Story, workspace
from tests.integration.test_referral_api import FAR, programs
from tests.support.stream import publish_all

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/shots")


async def test_a_clinician_refers_and_a_program_answers_by_its_link(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(exist_ok=True)
    async with workspace(js, nats_server, tmp_path) as space:
        story = Story()
        await publish_all(js, [*programs(), *story.full_response(space.people["clinician"], 1, 2, 10, 60)])
        await space.settled(js)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{space.url}/workspace/")
                await page.fill("#username", "clinician-user")
                await page.fill("#token", space.tokens["clinician"])
                await page.click("button[type=submit]")
                await page.goto(f"{space.url}/workspace/incidents/{story.incident_id}")
                await page.click("#find-treatment")
                await expect(page.locator("h1")).to_have_text("Find treatment")
                await expect(page.locator("#proposed-level")).to_have_text("OTP")
                await page.click("#choose-level button[type=submit]")
                await expect(page.locator(".flash")).to_contain_text("Level of care OTP recorded by clinician-user")
                first = page.locator("#matches tbody tr").first
                await expect(first).to_contain_text("Cheesman House")
                await expect(first).to_contain_text("km away")
                for program in (CLINIC, RESIDENTIAL, FAR):
                    await page.check(f'#matches tr[data-program="{program}"] input[type=checkbox]')
                await page.screenshot(path=str(SHOTS / "referral-matches.png"), full_page=True)
                await page.click("#send-referral button[type=submit]")
                await expect(page.locator("#referral-state")).to_have_text("sent")
                await expect(page.locator("#offers tbody tr")).to_have_count(3)
                referral = UUID(page.url.rsplit("/", 1)[1].split("?")[0])

                link, _ = space.app.state.referral_links.url(referral, RESIDENTIAL, space.clock.now())
                desk = await browser.new_page()  # the program's intake desk: no sign-in, only the link
                await desk.goto(f"{space.url}/rf/{link.rsplit('/rf/', 1)[1]}")
                await expect(desk.locator("h1")).to_contain_text("for Cheesman House")
                await expect(desk.locator("#referral-needs")).to_contain_text("ASAM OTP")
                await desk.fill("#referral-accept input[name=hours]", "6")
                await desk.click("#referral-accept button[type=submit]")
                await expect(desk.locator(".flash")).to_have_text("Thank you: saved.")
                await desk.screenshot(path=str(SHOTS / "referral-program-page.png"), full_page=True)

                await page.reload()
                await expect(page.locator("#referral-state")).to_have_text("accepted")
                await page.select_option("#transport-form select[name=mode]", "family")
                await page.click("#transport-form button[type=submit]")
                await expect(page.locator(".flash")).to_have_text("Transport recorded.")
                await page.click("#arrived-form button[type=submit]")
                await expect(page.locator("#referral-state")).to_have_text("admitted")
                history = page.locator("#referral-history")
                await expect(history).to_contain_text("program link")
                await expect(history).to_contain_text("clinician-user")
                await page.screenshot(path=str(SHOTS / "referral-page.png"), full_page=True)
            finally:
                await browser.close()
