"""The read models' stream consumer: the runtime's durable consumer (confirmed acks, dead letters), plus the
time the stream stored each message, so the read models can answer "as known at time T" by the stream's clock."""

from __future__ import annotations

from nats.aio.msg import Msg

from services.projections.application import ReadModels
from services.runtime.consumer import ProcessorConsumer


class StreamTimedConsumer(ProcessorConsumer):
    processor: ReadModels

    async def deliver_message(self, raw: Msg) -> float | None:
        sequence = raw.metadata.sequence.stream
        self.processor.stream_times[sequence] = raw.metadata.timestamp
        try:
            return await self.deliver(raw.data, raw.subject, sequence, raw.metadata.num_delivered)
        finally:
            self.processor.stream_times.pop(sequence, None)
