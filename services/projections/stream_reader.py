"""Reading the CRISIS stream whole, for a replay (``rebuild.py``): in this process, or in a child process of its own.

``read_stream`` reads with an ephemeral pull consumer without acks (reading changes nothing on the server), from
``first`` to the stream's last sequence as it was when called, in chunks.

``read_stream_in_child`` does the same in a child process (``python -m services.projections.stream_reader``) and
hands the chunks over a pipe. A replay decodes and writes in one thread and reads in another; in one process the two
take turns on the interpreter lock, so a rebuild lasted the read plus the writing (measured: 1.4 s + 2.1 s for
30,000 events). With the read in a child, the two run on two cores at once. The child imports nothing but the NATS
client (it starts in about a quarter of a second); it gets the server address in its environment, not on its command
line (the address may carry a password), and writes each chunk as a length-prefixed pickle of (sequence, stored
time, bytes) tuples, then a zero length at the end. A child that fails or stops early ends the parent's read with
``StreamReaderFailed`` and what the child printed: never a replay that looks complete and is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

FETCH_SIZE = 500  # messages one pull request asks for (several make a replay's transaction)
UNANSWERED_FETCHES = 60  # about 30 s of "JetStream unavailable" before a read gives up
URL_VARIABLE = "CRISIS_STREAM_READER_NATS_URL"
FRAME = struct.Struct("!I")


class StreamReaderFailed(RuntimeError):
    """The child reading the stream ended before the end of the stream."""


@dataclass(frozen=True)
class RawMessage:
    sequence: int
    stored_at: Any
    data: bytes


def _stream_and_subjects(stream: str | None, subjects: str | None) -> tuple[str, str]:
    if stream is None or subjects is None:
        from services.contract.envelope import SUBJECT_PREFIX  # noqa: PLC0415 - the child passes both, importing neither
        from services.runtime.stream import STREAM_NAME  # noqa: PLC0415

        return stream or STREAM_NAME, subjects or f"{SUBJECT_PREFIX}.>"
    return stream, subjects


async def read_stream(
    js: JetStreamContext,
    first: int = 1,
    batch: int = FETCH_SIZE,
    *,
    stream: str | None = None,
    subjects: str | None = None,
) -> AsyncIterator[list[RawMessage]]:
    """Every message from ``first`` to the stream's last sequence (as it was when called), in chunks of ``batch``."""
    stream, subjects = _stream_and_subjects(stream, subjects)
    last = (await js.stream_info(stream)).state.last_seq
    if last < first:
        return
    subscription = await js.pull_subscribe(
        subjects,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            max_waiting=1,
        ),
    )
    unanswered = 0
    try:
        while True:
            try:
                messages = await subscription.fetch(batch, timeout=5)
            except NatsTimeout:
                info = await js.stream_info(stream)
                if info.state.last_seq < last:  # the stream was purged under us
                    return
                continue
            except ServiceUnavailableError:
                # a cluster still moving its leaders after a node died: wait for it, a while, as services do
                unanswered += 1
                if unanswered > UNANSWERED_FETCHES:
                    raise
                await asyncio.sleep(0.5)
                continue
            unanswered = 0
            chunk = [RawMessage(m.metadata.sequence.stream, m.metadata.timestamp, m.data) for m in messages]
            chunk = [m for m in chunk if m.sequence <= last]
            if chunk:
                yield chunk
            if not chunk or chunk[-1].sequence >= last:
                return
    finally:
        await subscription.unsubscribe()


async def read_stream_in_child(
    nats_url: str, first: int = 1, batch: int = FETCH_SIZE
) -> AsyncIterator[list[RawMessage]]:
    """``read_stream``'s chunks, read by a child process (the module's note)."""
    stream, subjects = _stream_and_subjects(None, None)
    said = tempfile.TemporaryFile()  # a file, not a pipe: a child that prints much cannot block on a full pipe
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stream,
        subjects,
        str(first),
        str(batch),
        env={**os.environ, URL_VARIABLE: nats_url},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=said,
        limit=1 << 22,
    )
    assert child.stdout is not None
    try:
        while True:
            try:
                (size,) = FRAME.unpack(await child.stdout.readexactly(FRAME.size))
                if size == 0:
                    break
                chunk = pickle.loads(await child.stdout.readexactly(size))  # noqa: S301 - our own child's pipe
            except asyncio.IncompleteReadError:
                code = await child.wait()
                said.seek(0)
                printed = said.read().decode(errors="replace").strip()
                raise StreamReaderFailed(f"the stream reader stopped early (exit {code}): {printed[-2000:]}") from None
            yield [RawMessage(*fields) for fields in chunk]
        if (code := await child.wait()) != 0:
            raise StreamReaderFailed(f"the stream reader exited with {code}")
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
        said.close()


async def _serve(stream: str, subjects: str, first: int, batch: int) -> None:
    out = sys.stdout.buffer
    connection = await nats.connect([u.strip() for u in os.environ[URL_VARIABLE].split(",")])
    try:
        async for chunk in read_stream(connection.jetstream(), first, batch, stream=stream, subjects=subjects):
            payload = pickle.dumps([(m.sequence, m.stored_at, m.data) for m in chunk], pickle.HIGHEST_PROTOCOL)
            out.write(FRAME.pack(len(payload)))
            out.write(payload)
            out.flush()
        out.write(FRAME.pack(0))
        out.flush()
    finally:
        await connection.close()


if __name__ == "__main__":
    _stream, _subjects, _first, _batch = sys.argv[1:5]
    asyncio.run(_serve(_stream, _subjects, int(_first), int(_batch)))
