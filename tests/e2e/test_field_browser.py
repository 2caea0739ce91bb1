"""The field in a real headless Chromium (issue 18), with the dispatcher and the projections service on one stream:

- on a phone (390 x 844), a clinician paged for a withdrawal opens the link in the accept text, types a COWS score
  out of the scale (shown back next to the field, nothing recorded), then 14: triage re-runs and the page shows
  P2; "911 called" is pressed once; a naloxone restock is entered with its lot and expiry;
- a director's board shows the responder's ETA, then their check-in due, then CHECK-IN MISSED in red, first, with
  the banner, live without a reload.

``CRISIS_SCREENSHOT_DIR=docs/screenshots`` keeps ``responder_field.png`` and ``board_checkin_missed.png`` there.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.contract.events import (
    CheckInMissed,
    CheckInMissedData,
    CheckInStarted,
    CheckInStartedData,
    EtaGiven,
    EtaGivenData,
    new_event,
)
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_field_workspace import withdrawal_at_the_station
from tests.integration.test_responder_page import accepted
from tests.support.responder_stack import responder_stack
from tests.support.stream import stream_events

pytestmark = pytest.mark.e2e
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("CRISIS_SCREENSHOT_DIR") or tmp_path)


async def test_a_clinician_re_assesses_records_911_called_and_a_restock_on_a_phone(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        reported = withdrawal_at_the_station()
        await stack.publish(reported)
        await stack.reply("clinician", "Y 5310")
        link = await stack.link_for("clinician")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await (await browser.new_context(**PHONE)).new_page()
                page.set_default_timeout(10_000)
                await page.goto(link)
                await expect(page.locator("header .prio")).to_have_text("P3")

                await page.fill("#score-cows", "60")
                await page.click("#button-reassess-cows")
                await expect(page.locator("#error-score")).to_have_text("the COWS total is from 0 to 48; 60 is not")
                await expect(page.locator("#score-cows")).to_have_value("60")  # the form as typed
                await expect(page.locator("header .prio")).to_have_text("P3")

                stack.move_clock(minutes=15)
                await page.fill("#score-cows", "14")
                await page.click("#button-reassess-cows")
                await expect(page.locator(".flash")).to_contain_text(
                    "Recorded: re-assessment COWS 14, priority P3 -> P2 at 2026-11-23 09:15"
                )
                await expect(page.locator("header .prio")).to_have_text("P2")
                await expect(page.locator(".reassessed")).to_have_text("COWS 14: priority P3 -> P2")

                await page.click("#button-ems-called")
                await expect(page.locator(".flash")).to_contain_text("Recorded: 911 called at 2026-11-23 09:15")
                await expect(page.locator("#ems-called")).to_have_text("911: called 2026-11-23 09:15:00 UTC")
                await expect(page.locator("#button-ems-called")).to_have_count(0)

                await page.fill("#restock-count", "2")
                await page.fill("#restock-lot", "ab12")
                await page.fill("#restock-expiry", "2027-06")
                await page.click("#button-restock")
                await expect(page.locator(".flash")).to_contain_text("Recorded: restock of 2 naloxone kits")
                assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
                await page.screenshot(path=str(shots_dir(tmp_path) / "responder_field.png"), full_page=True)
            finally:
                await browser.close()
        await stack.settled()
        types = [e.type for e in await stream_events(js)]
    assert types.count("incident.reassessed") == 1 and types.count("naloxone.restock_reported") == 1
    assert types.count("field.ems_called") == 1


async def test_the_board_shows_the_eta_then_a_missed_check_in_red_and_first_without_a_reload(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        newer = withdrawal_at_the_station("5310")  # another open incident, reported later: above it on the board
        await stack.publish(newer.model_copy(update={"occurred_at": newer.occurred_at + timedelta(minutes=5)}))
        stack.move_clock(minutes=1)
        clinician = stack.people["clinician"].responder_id
        now = stack.clock.now()

        def dispatched(cls, data, after: float = 0) -> object:  # noqa: ANN001 - a contract class and its data
            at = now + timedelta(minutes=after)
            return new_event(
                cls, data, event_id=uuid4(), occurred_at=at, producer="dispatcher", incident_id=incident_id
            )

        code = {"incident_id": incident_id, "responder_id": clinician, "code": "4821"}
        await stack.publish(dispatched(EtaGiven, EtaGivenData(**code, minutes=12, eta_at=now + timedelta(minutes=12))))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                page = await (await browser.new_context(**DESKTOP)).new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{stack.url}/workspace/sign-in")
                await page.fill("#username", "dr-director")
                await page.fill("#token", stack.tokens["director"])
                await page.click("button[type=submit]")
                row = page.locator(f'tr[data-incident="{incident_id}"]')
                await expect(row.locator(".field-state")).to_have_text("ETA 02:13")  # America/Denver
                await expect(page.locator("#checkin-alert")).to_be_hidden()
                first_row = page.locator("#board-rows tr").first
                await expect(first_row).to_have_attribute("data-incident", str(newer.data.incident_id))

                arrived = now + timedelta(minutes=10)
                await stack.publish(
                    dispatched(
                        CheckInStarted,
                        CheckInStartedData(**code, channel="sms", minutes=15, due_at=arrived + timedelta(minutes=15)),
                        10,
                    )
                )
                await expect(row.locator(".field-state").last).to_have_text("check-in due 02:26")  # live
                await stack.publish(
                    dispatched(
                        CheckInMissed,
                        CheckInMissedData(
                            **code, step="reminder", due_at=arrived + timedelta(minutes=15), minutes_overdue=1
                        ),
                        26,
                    )
                )
                missed = row.locator(".field-state.missed")
                await expect(missed).to_have_text("CHECK-IN MISSED (due 02:26)")
                await expect(first_row).to_have_attribute("data-incident", str(incident_id))  # sorted like unfilled
                await expect(page.locator("#checkin-alert")).to_have_text(
                    "CHECK-IN MISSED: 1 incident where a responder has not checked in."
                )
                colour = await missed.evaluate("e => getComputedStyle(e).color")
                background = await missed.evaluate("e => getComputedStyle(e).backgroundColor")
                assert colour == "rgb(255, 255, 255)" and background != "rgba(0, 0, 0, 0)"
                await page.screenshot(path=str(shots_dir(tmp_path) / "board_checkin_missed.png"), full_page=True)
            finally:
                await browser.close()
