"""Encryption at rest for the stores: AES-GCM through OpenSSL (the ``cryptography`` package), in eventsourcing's
``AESCipher`` format.

eventsourcing's ``AESCipher`` (pycryptodome) builds a new cipher object for every event it seals or opens, which
costs about 53 us here whatever the event's size. That was thought negligible (about 1% of a report's CPU), until a
profile of the dispatcher under a backlog (bench/scaleout.py) put 12% of its samples in it: rebuilding a responder's
record reads up to 49 stored events after its last snapshot, each opened. ``AeadCipher`` keeps one ``AESGCM`` per key
and takes about 1 us to seal or open the same event.

The stored bytes are the same as ``AESCipher``'s: a 12-byte random nonce, the 16-byte tag, then the ciphertext (where
``AESGCM`` returns the ciphertext followed by its tag). Either class opens what the other sealed (tested), so a store
written before this change is read as it is, and ``crisis-rotate-key`` re-encrypts with either. A damaged value or
a wrong key is a ``ValueError``, as with ``AESCipher``.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cipher import AESCipher

NONCE = 12
TAG = 16


class AeadCipher(AESCipher):
    """``AESCipher``'s key handling and format, sealed and opened by one ``AESGCM`` per key."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._aead = AESGCM(self.key)

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, None)
        return nonce + sealed[-TAG:] + sealed[:-TAG]

    def decrypt(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) < NONCE + TAG:
            raise ValueError("Damaged cipher text: shorter than a nonce and a tag")
        nonce, tag, encrypted = ciphertext[:NONCE], ciphertext[NONCE : NONCE + TAG], ciphertext[NONCE + TAG :]
        try:
            return self._aead.decrypt(nonce, encrypted + tag, None)
        except InvalidTag:
            raise ValueError("Cipher text is damaged: the tag does not match (damaged, or another key)") from None
