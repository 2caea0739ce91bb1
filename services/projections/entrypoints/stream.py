"""The read models' stream consumer: the runtime's durable consumer, plus the time the stream stored each
message, so the read models can answer "as known at time T" by the stream's own clock."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage

from services.contract.events import SUBJECT_PREFIX
from services.projections.application import ReadModels
from services.runtime.consumer import ACK_WAIT_SECONDS, ProcessorConsumer
from services.runtime.stream import STREAM_NAME


class StreamTimedConsumer(ProcessorConsumer):
    processor: ReadModels

    def subscribe(self, broker: NatsBroker) -> None:
        """Declare the durable pull consumer; one message in flight keeps stream order (as the runtime's)."""

        @broker.subscriber(
            f"{SUBJECT_PREFIX}.>",
            stream=JStream(STREAM_NAME, declare=False),
            durable=self.durable,
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            config=ConsumerConfig(max_ack_pending=1, ack_wait=ACK_WAIT_SECONDS, max_deliver=-1),
            ack_policy=AckPolicy.MANUAL,
        )
        async def on_crisis_event(msg: NatsMessage) -> None:
            raw = msg.raw_message
            sequence = raw.metadata.sequence.stream
            self.processor.stream_times[sequence] = raw.metadata.timestamp
            try:
                delay = await self.deliver(raw.data, raw.subject, sequence, raw.metadata.num_delivered)
            finally:
                self.processor.stream_times.pop(sequence, None)
            if delay is None:
                await msg.ack()
            else:
                await msg.nack(delay=delay)
