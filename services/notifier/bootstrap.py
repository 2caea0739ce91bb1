"""Wiring for the notifier: nothing runs at import."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.notifier.adapters.gazetteer_places import gazetteer_place_book
from services.notifier.adapters.twilio_client import http_client, twilio_client
from services.notifier.adapters.twilio_sandbox_transport import RedirectingHttpClient
from services.notifier.adapters.twilio_sms import TwilioSmsSender
from services.notifier.adapters.twilio_voice import TwilioVoiceCaller
from services.notifier.application import Notifier
from services.notifier.domain.delivery import RetryPolicy
from services.notifier.domain.place_names import NO_PLACES
from services.notifier.send_queue import SENDER_TRACKING_NAME, SendQueue, Sleep
from services.notifier.settings import NotifierSettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.settings import store_env

APPLICATION_NAME = "notifier"
__all__ = ["APPLICATION_NAME", "SENDER_TRACKING_NAME", "build", "build_providers", "build_send_queue"]


def build(settings: NotifierSettings, clock: Clock | None = None) -> Notifier:
    retry = RetryPolicy(
        max_attempts=settings.sms_retry_max_attempts,
        base_delay_seconds=settings.sms_retry_base_delay_seconds,
        max_delay_seconds=settings.sms_retry_max_delay_seconds,
    )
    places = gazetteer_place_book(settings.gazetteer_file) if settings.gazetteer_file else NO_PLACES
    return Notifier(store_env(settings, APPLICATION_NAME), clock=clock or SystemClock(), retry=retry, places=places)


def build_providers(settings: NotifierSettings) -> tuple[TwilioSmsSender, TwilioVoiceCaller]:
    """The SMS sender and voice caller: the official SDK, pointed at Twilio or at the sandbox."""
    if settings.provider == "sandbox":
        transport = RedirectingHttpClient(settings.sandbox_url, timeout=settings.twilio_timeout_seconds)
    else:
        transport = http_client(settings.twilio_timeout_seconds)
    client = twilio_client(
        settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_key_sid=settings.twilio_api_key_sid,
        api_key_secret=settings.twilio_api_key_secret,
        http_client=transport,
    )
    sms = TwilioSmsSender(
        client,
        from_number=settings.twilio_from_number or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
        status_callback=settings.twilio_status_callback_url or None,
    )
    voice = TwilioVoiceCaller(
        client, from_number=settings.voice_from_number or None, keypad_url=settings.twilio_voice_keypad_url or None
    )
    return sms, voice


def build_send_queue(
    notifier: Notifier,
    settings: NotifierSettings,
    providers: tuple[TwilioSmsSender, TwilioVoiceCaller] | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
) -> SendQueue:
    sms, voice = providers or build_providers(settings)
    return SendQueue(
        notifier,
        sms,
        voice,
        clock=notifier.clock,
        sms_rate_per_second=settings.sms_rate_per_second,
        sms_burst=settings.sms_rate_burst,
        voice_rate_per_second=settings.voice_rate_per_second,
        flood_max_messages=settings.sms_flood_max_messages,
        flood_window=timedelta(seconds=settings.sms_flood_window_seconds),
        sleep=sleep,
        in_flight=settings.sms_in_flight,
    )
