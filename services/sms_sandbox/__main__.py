"""Run the SMS sandbox: ``python -m services.sms_sandbox`` (or ``crisis-sms-sandbox``)."""

from __future__ import annotations

import uvicorn

from services.runtime.json_logs import configure_logging
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings


def main() -> None:
    """Serve the sandbox on CRISIS_SANDBOX_HOST:CRISIS_SANDBOX_PORT until interrupted."""
    configure_logging("sms-sandbox")
    settings = SandboxSettings()
    # No access log: sandbox URLs carry phone numbers (/inbox/{phone}/reply, ?phone=...). uvicorn logs through
    # the JSON handler configure_logging installed (its own log config would write coloured text).
    uvicorn.run(
        build_sandbox_app(settings),
        host=settings.sandbox_host,
        port=settings.sandbox_port,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
