"""The notifier as a stream service: records requests, opt-outs and delivery failures; sends; publishes outcomes;
serves its ops endpoints (/metrics, /livez, /readyz) on the ops port."""

from __future__ import annotations

import contextlib

from services.notifier.bootstrap import APPLICATION_NAME, build, build_send_queue
from services.notifier.settings import NotifierSettings
from services.runtime.observability import serving_ops
from services.runtime.processor_service import running_processor, until_signalled


async def serve(settings: NotifierSettings) -> None:
    with build(settings) as notifier:
        queue = build_send_queue(notifier, settings)
        async with running_processor(settings, notifier, durable=APPLICATION_NAME, followers=[queue]) as service:
            ops = (
                serving_ops(service.probes, settings.notifier_ops_host, settings.notifier_ops_port)
                if settings.notifier_ops_port
                else contextlib.nullcontext()
            )
            async with ops:
                await until_signalled()
