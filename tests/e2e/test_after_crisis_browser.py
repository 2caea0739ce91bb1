"""After the crisis in a real headless Chromium (issue 19): a clinician starts a person's caring texts from the
person's page (refused with the reason until the profile has a phone and allows contact) and ends them; a director
records an outreach attempt on the tasks page and sees it listed with the next one due. Screenshots in /tmp/shots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_person_pages import paged_incident, people_workspace

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/shots")


async def test_caring_texts_and_an_outreach_attempt_in_the_workspace(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(exist_ok=True)
    async with people_workspace(js, nats_server, tmp_path) as (space, _):
        story = await paged_incident(js, space, "clinician")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(15_000)
                await page.goto(f"{space.url}/workspace/people/new?incident={story.incident_id}")
                await page.fill("#username", "clinician-user")
                await page.fill("#token", space.tokens["clinician"])
                await page.click("button[type=submit]")
                await page.goto(f"{space.url}/workspace/people/new?incident={story.incident_id}")
                await page.fill("input[name=alias]", "Jay")
                await page.click("#register-person button[type=submit]")
                await expect(page.locator("h1")).to_have_text("Jay")
                await page.click("#caring-enrol button[type=submit]")
                await expect(page.locator("#caring")).to_contain_text("asked not to be contacted")  # refused, and why
                await page.goto(page.url.split("/caring")[0])
                await page.click("#profile summary")
                await page.fill("#update-person input[name=phone]", "+15550107021")
                await page.select_option("#update-person select[name=contact_preference]", "sms")
                await page.click("#update-person button[type=submit]")
                await expect(page.locator(".flash")).to_contain_text("profile updated")
                await page.select_option("#caring-enrol select[name=consent_how]", "written")
                await page.click("#caring-enrol button[type=submit]")
                await expect(page.locator(".flash")).to_contain_text("caring texts started")
                row = page.locator('#caring-list tr[data-status="active"]')
                await expect(row).to_contain_text("0 of 11")
                await page.screenshot(path=str(SHOTS / "caring-started.png"), full_page=True)
                await row.locator("button").click()
                await expect(page.locator('#caring-list tr[data-status="withdrawn"]')).to_contain_text("ended by staff")

                director = await browser.new_page()
                await director.goto(f"{space.url}/workspace/tasks?show=all")
                await director.fill("#username", "dr-director")
                await director.fill("#token", space.tokens["director"])
                await director.click("button[type=submit]")
                await director.goto(f"{space.url}/workspace/tasks?show=all")
                task = director.locator("tr", has_text="Post-overdose outreach").first
                await task.locator("details.attempt summary").click()
                await task.locator("select[name=channel]").select_option("call")
                await task.locator("form[action$='/attempt'] button[type=submit]").click()
                await expect(director.locator(".flash")).to_contain_text("Attempt recorded.")
                task = director.locator("tr", has_text="Post-overdose outreach").first
                await expect(task).to_contain_text("attempt 1: call, not reached")
                await expect(task.locator("details.attempt summary")).to_have_text("Record attempt 2")
                await director.screenshot(path=str(SHOTS / "outreach-attempt.png"), full_page=True)
            finally:
                await browser.close()
