"""The responder's incident page in a real headless Chromium at a phone's size (390 x 844), opened from the link in
the accept confirmation the dispatcher asked to send: the address and the caller's guidance are there, en route
and on scene are pressed and shown as recorded; the same link opened by someone else, or after it expired (a moved
clock, no waiting), asks for sign-in.

``CRISIS_SCREENSHOT_DIR=docs/screenshots`` keeps the page's screenshot as ``responder.png`` there (the README shows
it); otherwise it goes to the test's temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_responder_page import accepted
from tests.support.responder_stack import GUIDANCE, responder_stack

pytestmark = pytest.mark.e2e
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


async def test_a_responder_opens_the_link_on_a_phone_and_records_en_route_and_on_scene(
    chromium: str,  # noqa: F811
    js,
    nats_server,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    shots = Path(os.environ.get("CRISIS_SCREENSHOT_DIR") or tmp_path)
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        incident_id = await accepted(stack)
        link = await stack.link_for("clinician")  # as the dispatcher asked the notifier to text it
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            try:
                phone = await browser.new_context(**PHONE)
                page = await phone.new_page()
                page.set_default_timeout(10_000)
                await page.goto(link)
                assert page.url == f"{stack.url}/workspace/respond/{incident_id}"
                await expect(page.locator("#address")).to_have_text("1701 Wynkoop St, Denver, CO 80202")
                await expect(page.locator("#access-notes")).to_contain_text("Bench by track 3")
                await expect(page.locator("#guidance li").first).to_have_text(GUIDANCE[0])
                await expect(page.locator("#call-supervisor")).to_have_attribute("href", "tel:+15550142004")
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390  # nothing wider than the phone: no sideways scrolling

                stack.move_clock(minutes=2)  # out of the door two minutes after accepting
                await page.click("#button-en_route")
                await expect(page.locator(".flash")).to_contain_text("Recorded: en route at")
                await expect(page.locator("#step-en_route")).to_have_class("done")
                await page.screenshot(path=str(shots / "responder.png"), full_page=True)
                stack.move_clock(minutes=9)
                await page.click("#button-arrived")
                await expect(page.locator(".flash")).to_contain_text("Recorded: on scene at 2026-11-23 09:11")
                await expect(page.locator("#step-arrived")).to_contain_text("recorded")
                await expect(page.locator("#button-arrived")).to_have_count(0)

                # forwarded: the nurse, signed in on her own phone, opens the clinician's link
                other = await browser.new_context(**PHONE)
                nurse = await other.new_page()
                await nurse.goto(f"{stack.url}/workspace/sign-in")
                await nurse.fill("#username", "nurse-user")
                await nurse.fill("#token", stack.tokens["nurse"])
                await nurse.click("button[type=submit]")
                await nurse.goto(link)
                assert "/workspace/sign-in" in nurse.url
                await expect(nurse.locator(".error")).to_contain_text("sent to someone else")

                # expired: the same link twelve hours after it was signed, on a phone that never opened it
                stack.move_clock(hours=12)
                later = await (await browser.new_context(**PHONE)).new_page()
                await later.goto(link)
                assert "/workspace/sign-in" in later.url
                await expect(later.locator(".error")).to_contain_text("expired")
                await expect(later.locator("#token")).to_be_visible()
            finally:
                await browser.close()
    assert (shots / "responder.png").stat().st_size > 10_000
