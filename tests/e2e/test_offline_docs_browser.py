"""Each service's interactive API docs (``/docs``) render in a real headless Chromium with no host but the service
itself reachable: Swagger UI's files are served by the service (``services/runtime/offline_docs.py``), and the page
runs under the HTML pages' Content-Security-Policy (no inline script or style).

Every request to another host is aborted and recorded; the test fails if there was one, or if the browser reported a
Content-Security-Policy violation. Skipped only when no Chromium is found and CRISIS_REQUIRE_BROWSER is unset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.projections.bootstrap import build as build_projections
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings
from tests.e2e.test_workspace_browser import chromium  # noqa: F401 - the fixture
from tests.integration.test_projections import T0, make_settings
from tests.support.asgi_server import serving

pytestmark = pytest.mark.e2e


@dataclass
class DocsPage:
    operations: list[str]
    other_hosts: list[str] = field(default_factory=list)
    refused_by_policy: list[str] = field(default_factory=list)


async def open_docs(chromium_path: str, url: str) -> DocsPage:
    """Open ``url``/docs with every other host unreachable; the operations Swagger UI lists."""
    from playwright.async_api import Request, Route, async_playwright

    page_seen = DocsPage(operations=[])

    async def only_the_service(route: Route, request: Request) -> None:
        if request.url == url or request.url.startswith(url + "/"):
            await route.continue_()
        else:
            page_seen.other_hosts.append(request.url)
            await route.abort("blockedbyclient")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path)
        try:
            page = await browser.new_page()
            page.set_default_timeout(15_000)
            page.on(
                "console",
                lambda message: (
                    page_seen.refused_by_policy.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            await page.route("**/*", only_the_service)
            await page.goto(f"{url}/docs")
            await page.locator(".opblock-summary-path").first.wait_for()
            methods = await page.locator(".opblock-summary-method").all_inner_texts()
            paths = await page.locator(".opblock-summary-path").evaluate_all("els => els.map(e => e.dataset.path)")
            page_seen.operations = [f"{m} {p}" for m, p in zip(methods, paths, strict=True)]
        finally:
            await browser.close()
    return page_seen


def assert_offline(seen: DocsPage) -> None:
    assert seen.other_hosts == []
    assert seen.refused_by_policy == []


async def test_the_gateway_docs_render_with_no_other_host(chromium: str, nats_server, tmp_path: Path) -> None:  # noqa: F811
    credentials = tmp_path / "credentials.json"
    issue_credential(credentials, "intake-line", AccessRole.INTAKE)
    settings = GatewaySettings(nats_url=nats_server.url, var_dir=tmp_path, credentials_file=credentials)
    with serving(build_gateway(settings)) as url:
        seen = await open_docs(chromium, url)
    assert {"POST /v1/incidents", "GET /v1/incidents/{incident_id}", "POST /twilio/sms"} <= set(seen.operations)
    assert_offline(seen)


async def test_the_projections_docs_render_with_no_other_host(chromium: str, nats_server, tmp_path: Path) -> None:  # noqa: F811
    settings = make_settings(nats_server.url, tmp_path / "var", "")
    settings.var_dir.mkdir(parents=True)
    issue_credential(settings.credentials_file, "dr-director", AccessRole.DIRECTOR)
    with serving(build_projections(settings, ManualClock(T0))) as url:
        seen = await open_docs(chromium, url)
    assert {"GET /v1/incidents/{incident_id}/timeline", "GET /v1/metrics"} <= set(seen.operations)
    assert_offline(seen)


async def test_the_sms_sandbox_docs_render_with_no_other_host(chromium: str, tmp_path: Path) -> None:  # noqa: F811
    with serving(build_sandbox_app(SandboxSettings(var_dir=tmp_path))) as url:
        seen = await open_docs(chromium, url)
    assert "POST /sandbox/api/inbound" in seen.operations
    assert_offline(seen)
