"""The MOUD bridge on the incident page (issue 19 section 3), in Chromium: a clinician on the incident records a
buprenorphine bridge in the form, sees it back on the page and its timeline, and records the appointment kept; a
dose without its time is refused with a clear message and records nothing."""

from __future__ import annotations

from pathlib import Path

from services.runtime.clock import ManualClock
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_followup_commands import paged
from tests.integration.test_projections import T0, Story, workspace
from tests.support.stream import last_sequence, publish_all, stream_events

SHOTS = Path("/tmp/shots")


async def test_a_clinician_records_a_bridge(chromium: str, js, nats_server, tmp_path) -> None:  # noqa: F811
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(exist_ok=True)
    clock = ManualClock(T0.replace(hour=17))
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        clinician = space.people["clinician"]
        story = Story()
        await publish_all(js, [story.reported(), paged(story, clinician), story.acknowledged(clinician, 1)])
        await space.settled(js)
        first = await last_sequence(js) + 1
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
                await page.click("#moud-bridge summary")
                form = page.locator("#moud-bridge-form")
                await form.locator("input[name=dose_mg]").fill("8")
                await form.locator("input[name=appointment_at]").fill("2026-11-25T10:00")
                await form.locator("button[type=submit]").click()
                await expect(page.locator("body")).to_contain_text("a dose needs both")  # no time: nothing recorded
                await page.goto(f"{space.url}/workspace/incidents/{story.incident_id}")
                await page.click("#moud-bridge summary")
                form = page.locator("#moud-bridge-form")
                await form.locator("input[name=dose_mg]").fill("8")
                await form.locator("input[name=dose_given_at]").fill("2026-11-23T09:50")
                await form.locator("input[name=prescription_days]").fill("3")
                await form.locator("input[name=appointment_at]").fill("2026-11-25T10:00")
                await form.locator("button[type=submit]").click()
                bridge = page.locator("#moud-bridge [data-bridge]")
                await expect(bridge).to_contain_text("8 mg given at")
                await expect(page.locator("#timeline")).to_contain_text("MOUD bridge (buprenorphine)")
                await page.screenshot(path=str(SHOTS / "moud-bridge.png"), full_page=True)
                await bridge.locator("button").click()
                await expect(page.locator("#moud-bridge [data-bridge]")).to_contain_text("appointment kept")
            finally:
                await browser.close()
        recorded = [e for e in await stream_events(js, first) if e.type.startswith("moud.")]
        assert [e.type for e in recorded] == ["moud.bridge_recorded", "moud.appointment_kept"]
        data = recorded[0].data
        assert (data.dose_mg, data.prescription_days, data.recorded_by) == (8, 3, "clinician-user")
        assert data.appointment_at.isoformat() == "2026-11-25T17:00:00+00:00"  # 10:00 in Denver
