"""Wiring for the notifier: nothing runs at import."""

from __future__ import annotations

import asyncio
from typing import Any

from services.notifier.adapters.twilio_http import RedirectingHttpClient
from services.notifier.adapters.twilio_sms import TwilioSmsSender
from services.notifier.application import Notifier
from services.notifier.domain.notification import Notification
from services.notifier.ports import SmsSender
from services.notifier.settings import NotifierSettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.processor import LogFollower
from services.runtime.settings import store_env

APPLICATION_NAME = "notifier"
SENDER_TRACKING_NAME = "sms-sender"


def build(settings: NotifierSettings, clock: Clock | None = None) -> Notifier:
    return Notifier(store_env(settings, APPLICATION_NAME), clock=clock or SystemClock())


def build_sender(settings: NotifierSettings) -> SmsSender:
    http_client = None
    if settings.sms_provider == "sandbox":
        http_client = RedirectingHttpClient(settings.sandbox_url, timeout=10)
    return TwilioSmsSender(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        from_number=settings.twilio_from_number or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
        status_callback=settings.twilio_status_callback_url or None,
        http_client=http_client,
    )


def sms_sender_follower(notifier: Notifier, sender: SmsSender) -> LogFollower:
    """Sends every recorded notification that has no outcome yet, in the order they were recorded."""

    async def send(domain_event: Any) -> None:
        if isinstance(domain_event, Notification.Requested):
            await asyncio.to_thread(notifier.send_if_unsettled, domain_event.originator_id, sender)

    return LogFollower(notifier, SENDER_TRACKING_NAME, send)
