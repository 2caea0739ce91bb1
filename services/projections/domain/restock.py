"""A naloxone restock as typed on the incident page: kits, lot and expiry, checked field by field. Pure.

The count is 1-500 kits; the lot letters, digits and dashes (as printed on the box); the expiry a date
(``2027-06-30``) or a month (``2027-06``: the month's last day, as boxes print it), not already past. A field that
is not right raises ``RestockRefused`` naming it, and nothing is recorded.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from services.contract.events import NaloxoneKits

LOT = re.compile(r"^[A-Za-z0-9-]{1,40}$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class RestockRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def restock_kits(count: str, lot: str, expiry: str, today: date) -> NaloxoneKits:
    """The kits a restock form says were added; RestockRefused when a field is not right."""
    text = count.strip()
    if not text.isdigit() or not 1 <= int(text) <= 500:
        raise RestockRefused("count", "the number of kits is a whole number from 1 to 500")
    lot = lot.strip().upper()
    if lot and not LOT.match(lot):
        raise RestockRefused("lot", "the lot is letters, digits and dashes, as printed on the box")
    expires_on = expiry_date(expiry.strip()) if expiry.strip() else None
    if expires_on is not None and expires_on < today:
        raise RestockRefused("expires_on", f"those kits expired on {expires_on.isoformat()}: do not restock them")
    return NaloxoneKits(count=int(text), lot=lot or None, expires_on=expires_on)


def expiry_date(typed: str) -> date:
    """'2027-06-30' as it is; '2027-06' as the month's last day."""
    month = MONTH.match(typed)
    try:
        if month:
            year, number = int(month.group(1)), int(month.group(2))
            return date(year, number, calendar.monthrange(year, number)[1])
        return date.fromisoformat(typed)
    except ValueError:
        raise RestockRefused("expires_on", "the expiry is a date like 2027-06-30, or a month like 2027-06") from None
