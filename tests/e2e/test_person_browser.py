"""The person record in a real headless Chromium: a clinician paged for an incident opens its page, links it to a
new person, adds the person's mother as a family contact, records a 42 CFR Part 2 consent covering safety status
(shown active), sends a family message (the person desk sends it under that consent: the disclosure list shows it),
then revokes the consent (shown revoked). Screenshots of each step go to /tmp/shots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_person_pages import CONSENT, paged_incident, people_workspace
from tests.support.stream import stream_events

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/shots")


async def test_a_clinician_links_a_person_records_a_consent_sends_a_family_message_and_revokes(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(exist_ok=True)
    async with people_workspace(js, nats_server, tmp_path) as (space, real_desk):
        story = await paged_incident(js, space, "clinician")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(15_000)
                await page.goto(f"{space.url}/workspace/incidents/{story.incident_id}")
                await page.fill("#username", "clinician-user")
                await page.fill("#token", space.tokens["clinician"])
                await page.click("button[type=submit]")
                await expect(page.locator("#incident-person")).to_contain_text("none linked")
                await page.screenshot(path=SHOTS / "person-1-incident.png", full_page=True)

                await page.click("#link-person")
                await expect(page.locator("#linking-to")).to_contain_text(str(story.incident_id))
                await page.click("#register-for-incident")
                await expect(page.locator("#register-links")).to_be_visible()
                await page.fill("input[name=alias]", "Jay")
                await page.select_option("select[name=preferred_language]", "es")
                await page.click("#register-person button[type=submit]")
                await expect(page.locator("h1")).to_have_text("Jay")
                await expect(page.locator(".flash")).to_contain_text("Linked to the incident.")
                await expect(page.locator("#incidents tr[data-incident]")).to_have_count(1)

                await page.fill("#add-contact input[name=name]", "Robin Avery")
                await page.select_option("#add-contact select[name=relation]", "parent")
                await page.fill("#add-contact input[name=phone]", "+15550198877")
                await page.click("#add-contact button[type=submit]")
                await expect(page.locator("#contacts tr[data-contact]")).to_contain_text("Robin Avery")

                await page.click("#new-consent")
                await expect(page.locator("h1")).to_contain_text("Consent to disclose: Jay")
                await page.fill("input[name=patient_name]", CONSENT["patient_name"])
                await page.fill("input[name=discloser]", CONSENT["discloser"])
                await page.select_option("select[name=recipient]", label="Robin Avery (parent), family contact")
                await page.check("input[name=information][value=safety_status]")
                await page.select_option("select[name=purpose]", "family_support")
                await page.fill("input[name=expiry_event]", CONSENT["expiry_event"])
                await page.check("input[name=revocation_explained]")
                await page.fill("input[name=signed_by]", CONSENT["signed_by"])
                await page.screenshot(path=SHOTS / "person-2-consent-form.png", full_page=True)
                await page.click("#consent-form button[type=submit]")
                consent = page.locator("#consents tr[data-consent]")
                await expect(consent).to_have_attribute("data-status", "active")
                await expect(consent).to_contain_text("Robin Avery")
                await page.screenshot(path=SHOTS / "person-3-consent-active.png", full_page=True)

                await page.select_option("#family-message select[name=message]", "help_on_the_way")
                await page.click("#family-message button[type=submit]")
                await expect(page.locator(".flash")).to_contain_text("Recorded: family message asked for.")
                asked = [e.data for e in await stream_events(js) if e.type == "family.message_requested"]
                assert [(a.message.value, a.actor) for a in asked] == [("help_on_the_way", "clinician-user")]
                assert real_desk
                await page.reload()  # the person desk decides once the request is on the stream
                disclosure = page.locator("#disclosure-list tbody tr")
                await expect(disclosure).to_contain_text("sms")
                await expect(disclosure).to_contain_text("safety status")

                await page.click("#consents button:has-text('Revoke')")
                await expect(consent).to_have_attribute("data-status", "revoked")
                await page.screenshot(path=SHOTS / "person-4-revoked.png", full_page=True)

                await page.goto(f"{space.url}/workspace/incidents/{story.incident_id}")
                await expect(page.locator("#incident-person a").first).to_have_text("Jay")
                await page.screenshot(path=SHOTS / "person-5-incident-linked.png", full_page=True)
            finally:
                await browser.close()
