"""The notifier's own copy of the gazetteer: the only place and zone names a text may print.

The same file the gateway geocodes with and the dispatcher names a scene from (``CRISIS_GAZETTEER_FILE``).
A page refers to a place by reference; a reference this copy does not know prints nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.notifier.domain.place_names import PlaceBook
from services.runtime.gazetteer import load_gazetteer

log = logging.getLogger(__name__)


def gazetteer_place_book(path: Path) -> PlaceBook:
    """The ``PlaceBook`` of the gazetteer at ``path``. Raises ValueError for a bad file (the notifier stops)."""
    gazetteer = load_gazetteer(path)
    book = PlaceBook.of((entry.label for entry in gazetteer.entries), (zone.name for zone in gazetteer.zones))
    if book.left_out:
        # the names are the organisation's configuration, but a count is all an operator needs here
        log.warning("%d gazetteer names will never be printed in a text (clinical words or too long)", book.left_out)
    return book
