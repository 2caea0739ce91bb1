"""A clinician documents an overdose in a real headless Chromium, at a phone's size (390 x 844) and a desktop's
(1280 x 800): a naloxone dose typed without "Given at" is refused with the field named and the form comes back as
typed (the note too); once the time is given, the dose and the note are on the documentation page and in the PDF
export (its text read back with pypdf), and the page fits the phone's width.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.contract.events import OverdoseDetails
from services.projections.bootstrap import build
from services.runtime.clock import ManualClock
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_projections import T0, Story, issue_tokens, make_settings, publish_all, team
from tests.support.asgi_server import serving
from tests.support.documents import pdf_text

pytestmark = pytest.mark.e2e
DEVICES = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
NOTE = ["Found on the bench by track 3, breathing slowly.", "Woke after the second dose; sister took him home."]
DOSE = (
    "2026-11-23 02:05:00 MST, Narcan nasal spray 4 mg, intranasal, given by bystander, response improved "
    "(entered on the documentation)"
)


@pytest.mark.parametrize("device", sorted(DEVICES))
async def test_a_note_and_a_naloxone_dose_typed_in_the_form_reach_the_page_and_the_pdf(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
    device: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(nats_server.url, tmp_path / "var", "")
    settings.var_dir.mkdir(parents=True)
    people = team()
    tokens = issue_tokens(settings.credentials_file, people)
    clinician = people["clinician"]
    story = Story(code="3131", overdose=OverdoseDetails(ems_called=True, naloxone_doses_given=1))
    await publish_all(
        js,
        [
            *(person.registered() for person in people.values()),
            *story.full_response(clinician, ack=1, en_route=2, arrive=12, done=50),
        ],
    )
    app = build(settings, ManualClock(T0 + timedelta(hours=2)))
    with serving(app) as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                context = await browser.new_context(**DEVICES[device])
                page = await context.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{url}/workspace/incidents/{story.incident_id}/documentation")
                await page.fill("#username", "clinician-user")
                await page.fill("#token", tokens["clinician"])
                await page.click("button[type=submit]")
                await expect(page.locator("h1")).to_contain_text("Documentation · incident 3131")
                await expect(page.locator("#gaps")).to_contain_text("details of 1 naloxone dose(s)")

                # the dose without "Given at": refused, named, and the form comes back as it was typed
                await page.fill("#notes", "\n".join(NOTE))
                await page.fill("#dose_product", "Narcan nasal spray")
                await page.fill("#dose_dose_mg", "4")
                await page.fill("#dose_given_by_role", "bystander")
                await page.select_option("#dose_response", "improved")
                await page.click("#save-fields")
                await expect(page.locator("p.error").first).to_contain_text("Not saved; nothing was recorded")
                await expect(page.locator("p.error").first).to_contain_text("dose.given_at")
                await expect(page.locator("#dose_given_at")).to_have_attribute("aria-invalid", "true")
                await expect(page.locator("#dose_product")).to_have_value("Narcan nasal spray")
                await expect(page.locator("#notes")).to_have_value("\n".join(NOTE))
                assert await page.locator("p.flash", has_text="Saved").count() == 0

                await page.fill("#dose_given_at", "2026-11-23T02:05:00")
                await page.click("#save-fields")
                await expect(page.locator("p.flash").first).to_contain_text("Saved: a naloxone dose and a note.")
                what = page.locator("#section-what")
                await expect(what).to_contain_text("Naloxone dose 1")
                await expect(what).to_contain_text(DOSE)
                notes = page.locator("#section-notes")
                for line in NOTE:
                    await expect(notes).to_contain_text(line)
                await expect(notes).to_contain_text("clinician-user")
                await expect(page.locator("#gaps")).not_to_contain_text("naloxone dose(s)")
                width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                assert width[0] <= width[1], f"the page is wider than the {device}'s screen: {width}"
                await page.screenshot(path=str(tmp_path / f"documentation-{device}.png"), full_page=True)

                pdf_link = page.locator('a[href$="documentation.pdf"]')
                answer = await page.request.get(f"{url}{await pdf_link.get_attribute('href')}")
                assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
                pdf = pdf_text(await answer.body())
            finally:
                await browser.close()
    assert f"Naloxone dose 1 {DOSE}" in pdf
    assert all(line in pdf for line in NOTE) and "clinician-user" in pdf
