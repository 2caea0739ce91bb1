"""The director workspace in a real headless Chromium (Debian's package, driven by Playwright).

A director signs in; a report published to the stream appears on the open-incidents board without a reload;
the director opens an incident's timeline, then its documentation, and signs it off (an event on the stream).
Skipped only when no Chromium is found and CRISIS_REQUIRE_BROWSER is unset.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.contract.events import (
    DocumentationAttested,
    DocumentationAttestedData,
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    new_event,
)
from services.projections.bootstrap import build
from services.runtime.clock import ManualClock
from services.runtime.stream import publish_event
from tests.integration.test_projections import T0, Story, issue_tokens, make_settings, publish_all, stream_events, team
from tests.support.asgi_server import serving

pytestmark = pytest.mark.e2e


def chromium_path() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CRISIS_REQUIRE_BROWSER"):
            pytest.fail("CRISIS_REQUIRE_BROWSER is set but no Chromium (or Playwright) was found")
        pytest.skip("no Chromium found; install Debian's chromium package to run the browser tests")
    return path


def attested_documentation(story: Story, subject: str, responder_id) -> list:
    fields = DocumentationFields(
        disposition="stabilised_on_scene",
        ems_agency="Denver Fire",
        follow_up_plan="Outreach within 72 h",
        documentation_minutes=12,
        language="en",
    )
    completed = DocumentationFieldsCompletedData(
        incident_id=story.incident_id, fields=fields, completed_by=subject, responder_id=responder_id
    )
    attested = DocumentationAttestedData(
        incident_id=story.incident_id,
        attested_by=subject,
        attester_role="clinician",
        responder_id=responder_id,
        statement="complete and accurate",
    )
    return [
        new_event(
            cls, data, event_id=uuid4(), occurred_at=story.at(70), producer="tests", incident_id=story.incident_id
        )
        for cls, data in ((DocumentationFieldsCompleted, completed), (DocumentationAttested, attested))
    ]


async def test_director_sees_a_new_report_live_opens_its_timeline_and_signs_off(
    chromium: str, js, nats_server, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(nats_server.url, tmp_path / "var", "")
    settings.var_dir.mkdir(parents=True)
    people = team()
    tokens = issue_tokens(settings.credentials_file, people)
    clinician = people["clinician"]
    handled = Story(code="1111")
    await publish_all(
        js,
        [
            *(person.registered() for person in people.values()),
            *handled.full_response(clinician, ack=1, en_route=2, arrive=15, done=60),
            *attested_documentation(handled, "clinician-user", clinician.responder_id),
        ],
    )
    app = build(settings, ManualClock(T0 + timedelta(hours=3)))
    with serving(app) as url:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{url}/workspace/")
                assert "/workspace/sign-in" in page.url
                await page.fill("#username", "dr-director")
                await page.fill("#token", tokens["director"])
                await page.click("button[type=submit]")
                await expect(page.locator("h1")).to_have_text("Open incidents")
                await expect(page.locator("body")).to_have_attribute("data-live", "connected")
                await page.evaluate("window.stillTheSamePage = true")

                reported = Story(code="2222")
                await publish_event(js, reported.reported())
                row = page.locator(f'tr[data-incident="{reported.incident_id}"]')
                await expect(row).to_be_visible()
                assert await page.evaluate("window.stillTheSamePage") is True  # no reload happened
                await expect(row).to_contain_text("2222")

                await page.goto(f"{url}/workspace/?status=all")
                await page.click(f'tr[data-incident="{handled.incident_id}"] a')
                await expect(page.locator("#timeline")).to_contain_text("Overdose reported, P1")
                await expect(page.locator("#timeline")).to_contain_text("Cleo Clinician (clinician)")
                await page.click("#documentation-link")
                await expect(page.locator("#doc-status")).to_contain_text("attested")
                await page.click("#sign-off")
                await expect(page.locator("#doc-status")).to_contain_text("signed off")
            finally:
                await browser.close()
    signed = [e for e in await stream_events(js) if e.type == "documentation.signed_off"]
    assert [(e.incident_id, e.data.signed_off_by, e.data.decision) for e in signed] == [
        (handled.incident_id, "dr-director", "approved")
    ]
