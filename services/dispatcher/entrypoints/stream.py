"""The dispatcher as a stream service: one durable consumer of every CRISIS event, plus the deadline ticker,
and its ops endpoints (/metrics, /livez, /readyz) on the ops port."""

from __future__ import annotations

import contextlib
import logging

from services.dispatcher.adapters.roster_seed import seed_events
from services.dispatcher.bootstrap import APPLICATION_NAME, build
from services.dispatcher.entrypoints.deadlines import DeadlineTicker
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import SystemClock
from services.runtime.observability import serving_ops
from services.runtime.processor_service import running_processor, until_signalled

log = logging.getLogger(__name__)


async def serve(settings: DispatcherSettings) -> None:
    clock = SystemClock()
    with build(settings, clock) as dispatcher:
        ticker = DeadlineTicker(dispatcher, clock)
        async with running_processor(settings, dispatcher, durable=APPLICATION_NAME, followers=[ticker]) as service:
            # the seed roster is on the stream before /readyz says ready, so a report sent once it does is after the
            # roster on the stream, and (in stream order, in every partition) paged from it
            if settings.roster_seed_file and not dispatcher.known.roster:
                events = seed_events(settings.roster_seed_file, clock.now())
                for event in events:
                    await service.publish(event)
                log.info("published the demo roster: %d roster events", len(events))
            ops = (
                serving_ops(service.probes, settings.dispatcher_ops_host, settings.dispatcher_ops_port)
                if settings.dispatcher_ops_port
                else contextlib.nullcontext()
            )
            async with ops:
                await until_signalled()
        # stopped cleanly: the roster and deadlines as folded are saved, so the next start folds only what follows
        with dispatcher.processing_lock:
            dispatcher.catch_up()
            dispatcher.known.save_snapshot()
