"""The outcome figures in the workspace (issue 19), in Chromium: a director opens Outcomes from the menu and sees
each figure with its numerator and denominator, the charts and the incidents behind a figure; a clinician has no
such menu entry and is refused the page."""

from __future__ import annotations

from pathlib import Path

from services.runtime.clock import ManualClock
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_outcome_figures import NOW, seeded
from tests.integration.test_projections import workspace
from tests.support.stream import publish_all

SHOTS = Path("/tmp/shots")


async def test_a_director_reads_the_outcome_figures(chromium: str, js, nats_server, tmp_path) -> None:  # noqa: F811
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(exist_ok=True)
    async with workspace(js, nats_server, tmp_path, clock=ManualClock(NOW)) as space:
        history, stories = seeded(space)
        await publish_all(js, history)
        await space.settled(js)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{space.url}/workspace/")
                await page.fill("#username", "dr-director")
                await page.fill("#token", space.tokens["director"])
                await page.click("button[type=submit]")
                await page.click("header a:has-text('Outcomes')")
                await expect(page.locator("h1")).to_have_text("Outcomes")
                reached = page.locator('#outcome-ratios tr[data-figure="contacted_72h"]')
                await expect(reached.locator(".numerator")).to_have_text("2")
                await expect(reached.locator(".denominator")).to_have_text("4")
                await expect(page.locator("figure.chart svg")).to_have_count(2)
                await reached.locator("summary").click()
                await expect(reached.locator("a", has_text=stories["A"].code)).to_be_visible()
                repeat = page.locator('#outcome-repeats tr[data-figure="any_365d"]')
                await expect(repeat.locator(".numerator")).to_have_text("2")
                await page.screenshot(path=str(SHOTS / "outcomes.png"), full_page=True)

                clinician = await browser.new_page()
                await clinician.goto(f"{space.url}/workspace/")
                await clinician.fill("#username", "clinician-user")
                await clinician.fill("#token", space.tokens["clinician"])
                await clinician.click("button[type=submit]")
                await expect(clinician.locator("header a:has-text('Outcomes')")).to_have_count(0)
                refused = await clinician.goto(f"{space.url}/workspace/outcomes")
                assert refused is not None and refused.status == 403
            finally:
                await browser.close()
