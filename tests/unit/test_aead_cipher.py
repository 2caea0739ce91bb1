"""The stores' cipher (services/runtime/aead_cipher.py) is eventsourcing's AESCipher format: each opens what the
other sealed, so stores written before it are read as they are; damage and a wrong key are ValueErrors, as before."""

from __future__ import annotations

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.utils import Environment
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.aead_cipher import AeadCipher

KEY = AESCipher.create_key(32)


def both(key: str = KEY) -> tuple[AESCipher, AeadCipher]:
    env = Environment(env={"CIPHER_KEY": key})
    return AESCipher(env), AeadCipher(env)


@given(st.binary(max_size=4096))
def test_each_opens_what_the_other_sealed(plaintext: bytes) -> None:
    old, new = both()
    assert new.decrypt(old.encrypt(plaintext)) == plaintext
    assert old.decrypt(new.encrypt(plaintext)) == plaintext
    assert new.decrypt(new.encrypt(plaintext)) == plaintext


@pytest.mark.parametrize("size", [16, 24, 32])
def test_every_key_size_aes_allows(size: int) -> None:
    old, new = both(AESCipher.create_key(size))
    assert old.decrypt(new.encrypt(b"a stored event")) == b"a stored event"


def test_a_nonce_is_never_reused() -> None:
    _, new = both()
    sealed = {new.encrypt(b"same")[:12] for _ in range(1000)}
    assert len(sealed) == 1000


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[:20],  # shorter than a nonce and a tag
        lambda s: s[:12] + bytes([s[12] ^ 1]) + s[13:],  # the tag
        lambda s: s[:-1] + bytes([s[-1] ^ 1]),  # the ciphertext
        lambda s: bytes([s[0] ^ 1]) + s[1:],  # the nonce
    ],
)
def test_damage_is_a_value_error_as_before(damage) -> None:
    old, new = both()
    sealed = new.encrypt(b"a stored event with a phone number")
    for cipher in (old, new):
        with pytest.raises(ValueError, match="amaged"):
            cipher.decrypt(damage(sealed))


def test_another_key_opens_nothing() -> None:
    _, new = both()
    _, other = both(AESCipher.create_key(32))
    with pytest.raises(ValueError, match="damaged"):
        other.decrypt(new.encrypt(b"a stored event"))


def test_a_bad_key_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="Invalid key size"):
        AeadCipher(Environment(env={"CIPHER_KEY": "c2hvcnQ="}))
