"""The notifier as a stream service: records requests, opt-outs and delivery failures; sends; publishes outcomes."""

from __future__ import annotations

from services.notifier.bootstrap import APPLICATION_NAME, build, build_send_queue
from services.notifier.settings import NotifierSettings
from services.runtime.service import running_processor, until_signalled


async def serve(settings: NotifierSettings) -> None:
    with build(settings) as notifier:
        queue = build_send_queue(notifier, settings)
        async with running_processor(settings, notifier, durable=APPLICATION_NAME, followers=[queue]):  # type: ignore[list-item]
            await until_signalled()
