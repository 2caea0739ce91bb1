"""What a provider's answer means for a message: retry it, give up on it, or tell the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.events import FAILED_DELIVERY_STATUSES  # what the status callbacks mean: the contract's

OPTED_OUT_CODE = 21610
"""Twilio's "attempt to send to unsubscribed recipient"; also what the notifier records for a STOP."""

PERMANENT_SEND_CODES = frozenset({21211, 21408, 21610, 21612, 21614})
"""Refusals at send time that will not change on retry: invalid number, no permission for the region,
opted out, unreachable by SMS, not a mobile number. (Any other 4xx answer is treated the same way.)"""

PERMANENT_DELIVERY_CODES = frozenset(range(30003, 30009))
"""Status-callback errors after which the number cannot be reached: 30003 unreachable handset, 30004
blocked, 30005 unknown or inactive number, 30006 landline or unreachable carrier, 30007 filtered by the
carrier, 30008 unknown delivery error."""


def is_failed_delivery(status: str) -> bool:
    """Whether a status callback says the message will never arrive."""
    return status in FAILED_DELIVERY_STATUSES


def is_permanent_delivery_failure(error_code: int | None) -> bool:
    """A failed delivery with one of these codes means the person cannot be reached this way."""
    return error_code in PERMANENT_DELIVERY_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in delay.

    ``max_attempts`` counts every provider call, the first one included: with 6, a message is tried at
    most six times before it is given up (sms.failed, permanent=false). Full jitter (a uniform draw between
    0 and the capped exponential delay) spreads retries out so that a provider recovering from an outage
    is not hit by every queued message at once.
    """

    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_seconds <= 0 or self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("retry policy needs max_attempts >= 1 and 0 < base delay <= max delay")

    def ceiling(self, failed_attempts: int) -> float:
        """The largest delay after ``failed_attempts`` failures (1 for the first failure)."""
        exponent = min(max(failed_attempts, 1) - 1, 62)
        return min(self.max_delay_seconds, self.base_delay_seconds * 2**exponent)

    def delay(self, failed_attempts: int, fraction: float) -> float:
        """Seconds to wait before the next attempt; ``fraction`` is a uniform draw from [0, 1)."""
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within [0, 1]")
        return fraction * self.ceiling(failed_attempts)

    def gives_up(self, failed_attempts: int) -> bool:
        """Whether ``failed_attempts`` transient failures exhaust the policy."""
        return failed_attempts >= self.max_attempts
