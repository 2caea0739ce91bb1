"""The sending loop: takes recorded notifications from the notifier's store and hands them to the provider.

It keeps the unsettled notifications in memory, rebuilt from the store at start, and on each step asks the
pure scheduler (``domain.send_scheduler.choose_next``) what to do: send the most urgent message whose channel
has a token, bundle lower-priority pages to a flooded phone, or wait. In a service, ``run`` takes those steps
under ``services.runtime.background.run_forever``. Up to ``in_flight`` provider calls run at once
(``CRISIS_SMS_IN_FLIGHT``, default 1), so a crash duplicates at most that many messages (see ``application``):
with one, a provider that takes 200 ms per call caps the sending at 5 messages a second whatever its rate.

Progress is kept as a low-water mark in the store's tracking table: every request at or below it is
settled. A restart reads the log from the mark, so nothing unsettled is forgotten and settled work is not
re-read from the beginning. The rate buckets and flood windows live in memory: after a restart a phone's
window starts empty.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import Tracking

from services.notifier.application import Attempt, Notifier
from services.notifier.domain.send_scheduler import (
    BundleNow,
    Decision,
    FloodLimiter,
    Idle,
    QueueEntry,
    SendNow,
    TokenBucket,
    WaitUntil,
    choose_next,
)
from services.notifier.messaging_provider import PermanentSmsError, SmsSender, TransientSmsError, VoiceCaller
from services.runtime.background import run_forever
from services.runtime.clock import Clock
from services.runtime.observability import PAGE_LATENCY, PROVIDER_ERRORS, error_code_label

log = logging.getLogger(__name__)

SENDER_TRACKING_NAME = "sms-sender"
MARK_EVERY = 64
"""Log positions between two saves of the sending loop's low-water mark while messages are waiting."""

Sleep = Callable[[float], Awaitable[None]]


class SendQueue:
    """Sends what the notifier recorded, in priority order, within rate and flood limits, with retries.

    ``sleep`` is how ``drain`` lets time pass (tests pass one that moves a ManualClock); ``rng`` draws the
    retry jitter. ``run`` is the production loop; ``drain`` sends until nothing is left, for tests and tools.
    """

    name = SENDER_TRACKING_NAME

    def __init__(
        self,
        notifier: Notifier,
        sms: SmsSender,
        voice: VoiceCaller,
        *,
        clock: Clock,
        sms_rate_per_second: float = 1.0,
        sms_burst: int = 1,
        voice_rate_per_second: float = 1.0,
        flood_max_messages: int = 3,
        flood_window: timedelta = timedelta(seconds=60),
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        batch_size: int = 100,
        idle_poll_seconds: float = 0.5,
        in_flight: int = 1,
    ) -> None:
        self.notifier = notifier
        self.in_flight = max(1, in_flight)
        self.sending: dict[UUID, tuple[QueueEntry, asyncio.Task[None]]] = {}
        """Messages whose provider call is under way (only with ``in_flight`` above 1): out of ``entries``."""
        self.sms = sms
        self.voice = voice
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        now = clock.now()
        self.buckets = {
            "sms": TokenBucket(sms_rate_per_second, sms_burst, now),
            "voice": TokenBucket(voice_rate_per_second, 1, now),
        }
        self.flood = FloodLimiter(flood_max_messages, flood_window)
        self.entries: dict[UUID, QueueEntry] = {}
        self._scanned: int | None = None
        self._mark = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something new may be in the store: look before the current wait ends."""
        self._wake.set()

    # --- one step ------------------------------------------------------------------------------------------

    async def step(self) -> Decision:
        """Read new requests, then do the one thing the scheduler chooses; returns that decision.

        With ``in_flight`` above 1 a send is started and the step returns without waiting for it, unless as many are
        under way already (then it waits for one first); with nothing else to do while sends are under way it waits
        for one of them and answers ``WaitUntil(now)``: look again."""
        await self._settle_sends(wait=len(self.sending) >= self.in_flight)
        await self._scan()
        await self._forget_dropped()
        decision = choose_next(self.entries.values(), self.clock.now(), self.buckets, self.flood)
        if isinstance(decision, SendNow):
            if self.in_flight == 1:
                await self._send(decision.entry)
            else:
                self._start_send(decision.entry)
        elif self.sending and not isinstance(decision, BundleNow):
            await self._settle_sends(wait=True)
            decision = WaitUntil(self.clock.now())
        elif isinstance(decision, BundleNow):
            members = [e.notification_id for e in decision.entries]
            bundle = await asyncio.to_thread(self.notifier.bundle, members)
            for member in members:
                self.entries.pop(member, None)
            log.info("bundled %s pages into %s", len(members), bundle)
        await self._advance_mark()
        return decision

    def _start_send(self, entry: QueueEntry) -> None:
        """Take the message out of the queue and send it in a task of its own (its rate token and flood window are
        counted now, so the next step's choice already sees them)."""
        self.entries.pop(entry.notification_id, None)
        self._count(entry)
        task = asyncio.create_task(self._send(entry, counted=True), name=f"send-{entry.notification_id}")
        self.sending[entry.notification_id] = (entry, task)

    async def _settle_sends(self, *, wait: bool) -> None:
        """Forget the sends that ended (waiting for one to end first if ``wait``); a send that failed in a way the
        sending does not handle itself (the store down) puts its message back in the queue and raises, so the loop
        backs off and tries again, as it does without concurrency."""
        if not self.sending:
            return
        if wait:
            await asyncio.wait([task for _, task in self.sending.values()], return_when=asyncio.FIRST_COMPLETED)
        failure: BaseException | None = None
        for notification_id, (entry, task) in list(self.sending.items()):
            if not task.done():
                continue
            del self.sending[notification_id]
            if task.cancelled() or task.exception() is not None:
                self.entries.setdefault(notification_id, entry)
                failure = failure or task.exception() or RuntimeError("a send was cancelled")
        if failure is not None:
            raise failure

    def _count(self, entry: QueueEntry) -> None:
        now = self.clock.now()
        self.buckets[entry.channel].take(now)
        if entry.channel == "sms":
            self.flood.record(entry.to, now)

    async def _scan(self) -> None:
        recorder = self.notifier.recorder
        if self._scanned is None:
            self._mark = await asyncio.to_thread(recorder.max_tracking_id, self.name) or 0
            self._scanned = self._mark
        while True:
            found, last = await asyncio.to_thread(self.notifier.pending_since, self._scanned, self.batch_size)
            for entry in found:
                if entry.notification_id not in self.sending:
                    self.entries.setdefault(entry.notification_id, entry)
            if last == self._scanned:
                return
            self._scanned = last

    async def _forget_dropped(self) -> None:
        """Leave out what the notifier dropped meanwhile (a page answered or withdrawn while its messages waited),
        so that it is neither waited for nor bundled. Each is checked in the store first: only a drop that was saved
        takes a message out of the queue."""
        dropped = self.notifier.take_dropped() & self.entries.keys()
        if dropped:
            for notification_id in await asyncio.to_thread(self.notifier.settled_among, dropped):
                self.entries.pop(notification_id, None)

    async def _advance_mark(self) -> None:
        """Save the low-water mark when the queue is empty, else every ``MARK_EVERY`` positions: under a backlog not a
        store commit per message sent. A restart reads from the saved mark; what it re-reads that was settled is left
        out (``pending_since``), so a mark saved late costs a longer read, never a message."""
        assert self._scanned is not None
        waiting = [e.position for e in self.entries.values()] + [e.position for e, _ in self.sending.values()]
        mark = min(waiting, default=self._scanned + 1) - 1
        if mark > self._mark and (not waiting or mark - self._mark >= MARK_EVERY):
            await asyncio.to_thread(self.notifier.recorder.insert_tracking, Tracking(self.name, mark))
            self._mark = mark

    async def _send(self, entry: QueueEntry, *, counted: bool = False) -> None:
        attempt = await asyncio.to_thread(self.notifier.begin_attempt, entry.notification_id)
        if attempt is None:  # settled meanwhile, opted out, or not renderable: recorded, nothing to send
            self.entries.pop(entry.notification_id, None)
            return
        if not counted:
            self._count(entry)
        try:
            await self._call_provider(attempt)
            self._observe_latency(entry)
        except PermanentSmsError as exc:
            PROVIDER_ERRORS.labels(entry.channel, error_code_label(exc.code), "false").inc()
            log.warning("notification %s refused by the provider (code %s)", entry.notification_id, exc.code)
            await asyncio.to_thread(self.notifier.record_refused, entry.notification_id, exc.code, exc.message)
            self.entries.pop(entry.notification_id, None)
        except TransientSmsError as exc:
            retry_at = await asyncio.to_thread(
                self.notifier.record_transient_failure,
                entry.notification_id,
                exc.code,
                exc.message,
                self.rng.random(),
            )
            PROVIDER_ERRORS.labels(
                entry.channel, error_code_label(exc.code), "false" if retry_at is None else "true"
            ).inc()
            if retry_at is None:
                log.warning("notification %s: gave up after attempt %s", entry.notification_id, attempt.attempt)
                self.entries.pop(entry.notification_id, None)
            else:
                log.info("notification %s: attempt %s failed (%s)", entry.notification_id, attempt.attempt, exc)
                self.entries[entry.notification_id] = replace(entry, due_at=retry_at)

    async def _call_provider(self, attempt: Attempt) -> None:
        if attempt.channel == "voice":
            call = await asyncio.to_thread(
                self.voice.call,
                attempt.to,
                attempt.text,
                attempt.language,
                attempt=attempt.attempt,
                keypad=attempt.keypad,
            )
            await asyncio.to_thread(self.notifier.record_call_placed, attempt.notification_id, call)
        else:
            sent = await asyncio.to_thread(self.sms.send, attempt.to, attempt.text, attempt=attempt.attempt)
            await asyncio.to_thread(self.notifier.record_sent, attempt.notification_id, sent, attempt.text)
        self.entries.pop(attempt.notification_id, None)

    def _observe_latency(self, entry: QueueEntry) -> None:
        """crisis_page_latency_seconds: from the request's record to the provider taking the message (the time the
        queue entry carries, read with the request: no store read per message)."""
        if entry.requested_at is None:
            return
        seconds = (self.clock.now() - entry.requested_at).total_seconds()
        PAGE_LATENCY.labels(entry.channel, entry.priority).observe(max(0.0, seconds))

    # --- driving it ------------------------------------------------------------------------------------------

    async def drain(self, max_steps: int = 10_000) -> None:
        """Send until nothing is queued, letting time pass with ``sleep`` whenever the scheduler waits."""
        for _ in range(max_steps):
            decision = await self.step()
            if isinstance(decision, Idle):
                return
            if isinstance(decision, WaitUntil):
                await self.sleep(self._seconds_until(decision.at))
        raise RuntimeError(f"the send queue did not drain in {max_steps} steps")

    async def follow_once(self) -> int:
        """Do everything that can be done now without waiting; returns how many steps acted."""
        acted = 0
        while isinstance(await self.step(), SendNow | BundleNow):
            acted += 1
        return acted

    async def run(self) -> None:
        """Send for as long as the service runs; a failing step (store or bug) is retried with backoff. On the way out
        the sends under way end and are recorded first (each is bounded by the provider client's timeout), so the
        store is not closed under them; a send cut off by a crash is sent again after the restart: the duplicates
        ``in_flight`` bounds."""
        try:
            await run_forever(self._run_turn, self._wake, name=self.name)
        finally:
            if self.sending:
                await asyncio.wait([task for _, task in self.sending.values()])

    async def _run_turn(self) -> float:
        """One step, then how long ``run`` may wait before the next (``wake`` ends the wait early)."""
        decision = await self.step()
        if isinstance(decision, SendNow | BundleNow):
            return 0.0
        if isinstance(decision, WaitUntil):
            return min(self.idle_poll_seconds, self._seconds_until(decision.at))
        return self.idle_poll_seconds

    def _seconds_until(self, at: datetime) -> float:
        return max(0.0, (at - self.clock.now()).total_seconds())
