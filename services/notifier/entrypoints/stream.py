"""The notifier as a stream service: records notification.requested, sends, publishes sms.sent / sms.failed."""

from __future__ import annotations

from services.notifier.bootstrap import APPLICATION_NAME, build, build_sender, sms_sender_follower
from services.notifier.settings import NotifierSettings
from services.runtime.service import running_processor, until_signalled


async def serve(settings: NotifierSettings) -> None:
    with build(settings) as notifier:
        sender = sms_sender_follower(notifier, build_sender(settings))
        async with running_processor(settings, notifier, durable=APPLICATION_NAME, followers=[sender]):
            await until_signalled()
