"""Keys pressed on our voice calls (``call.keypad_pressed``): the same commands as a text, answered the same way.

What a key means is the contract's ``KEYPAD_COMMANDS`` (the call said it; the gateway thanked for it): on a page
call 1 accepts and 2 declines the page whose code the call carried; on a check-in call 1 is OK (I am safe) and 2 is
CLEAR. Any other key, or a key from a phone not on the roster, changes nothing (the call already said "not
understood").

A page's key becomes the ``Reply`` the text would have been (``Y <code>``, ``N <code>``) and goes through the SMS
replies' own routing (``SmsReplies.route``, channel voice): accepting by key is accepting by text, with the same
checks, the same confirmation text (and its link to the incident page), the same answer to a page no longer open.
The key press stands where the text would (``received``): what it records is caused by the key press, and it has
no message SID, so ``dispatch.acknowledged``/``declined`` say channel voice. A check-in's key is OK or CLEAR from
another channel (``CheckIns.confirm``/``clear``, channel voice).

A responder may also call the organisation's number and press an incident code and a key (prompt "field", the code
being the first four keys): 1 is ``ARRIVED <code>``, 2 ``OK <code>``, 3 ``CLEAR <code>``, 4 ``DONE <code>``, from
the responder whose phone called. ARRIVED and DONE go through the replies' routing like a text (channel voice: the
check-in starts with channel voice, a code the responder is not on is answered by text as it would be); OK and
CLEAR are the check-in's, as on a check-in call.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from services.contract.events import CallKeypadPressed, keypad_command
from services.dispatcher.check_ins import CheckIns
from services.dispatcher.domain.replies import Reply
from services.dispatcher.domain.roster import ResponderRecord
from services.dispatcher.roster_cache import RosterCache
from services.dispatcher.sms_replies import SmsReplies
from services.dispatcher.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

PAGE_COMMANDS = frozenset({"accept", "decline"})
ROUTED_COMMANDS = PAGE_COMMANDS | {"arrived", "done"}  # read as the text would be (SmsReplies.route)


class VoiceKeypad:
    """Turns a key pressed on a page or check-in call, or a code and key on a call in, into the command it means."""

    def __init__(self, cache: RosterCache, replies: SmsReplies, check_ins: CheckIns | None) -> None:
        self.cache = cache
        self.replies = replies
        self.check_ins = check_ins

    def on_pressed(self, work: UnitOfWork, pressed: CallKeypadPressed, now: datetime) -> None:
        data = pressed.data
        command = keypad_command(data.prompt, data.digits)
        responder_id = self.cache.by_phone.get(data.phone)
        if command is None or responder_id is None:
            return  # a key that means nothing for the call, or a phone not on the roster: the event is the record
        record = work.record(responder_id)
        if command in ROUTED_COMMANDS:
            # the key press is read where a text would be: its id causes what is recorded, it has no message SID
            self.replies.route(work, record, Reply(command, code=data.code), pressed, now, channel="voice")
        elif self.check_ins is not None:
            self._check_in(work, record, command, data.code, pressed.id, now)

    def _check_in(
        self, work: UnitOfWork, record: ResponderRecord, command: str, code: str | None, cause: UUID, now: datetime
    ) -> None:
        """OK or CLEAR for the incident the call named (or the only one the responder is on)."""
        assert self.check_ins is not None
        by_code = {held: UUID(incident_id) for incident_id, held in record.assignments.items()}
        if code is None and len(by_code) == 1:
            code = next(iter(by_code))
        if code not in by_code:
            log.info("a check-in key for an incident the responder is no longer on changed nothing")
            return
        incident = work.incident(by_code[code])
        if command == "ok":
            self.check_ins.confirm(incident, record.responder_id, "voice", cause, now)
        else:
            self.check_ins.clear(incident, record.responder_id, "voice", cause, now)
