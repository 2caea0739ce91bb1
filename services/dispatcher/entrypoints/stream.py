"""The dispatcher as a stream service: one durable consumer of every CRISIS event."""

from __future__ import annotations

from services.dispatcher.bootstrap import APPLICATION_NAME, build
from services.dispatcher.settings import DispatcherSettings
from services.runtime.service import running_processor, until_signalled


async def serve(settings: DispatcherSettings) -> None:
    with build(settings) as dispatcher:
        async with running_processor(settings, dispatcher, durable=APPLICATION_NAME):
            await until_signalled()
