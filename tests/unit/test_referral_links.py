"""The programs' referral links (projections/referral_links.py): 64 characters over the referral, the program and
the expiry, signed under their own purpose; a tampered, expired or other-purpose token reads as nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.contract.events import ReferralOffer
from services.projections.program_links import ProgramLinks
from services.projections.referral_links import ReferralLinks
from services.runtime.signed_links import ResponderLinks

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
KEY = b"k" * 32
BASE = "https://crisis.example.org"
LINKS = ReferralLinks(KEY, base_url=BASE + "/")


def token_of(url: str) -> str:
    return url.removeprefix(BASE + "/rf/")


def test_a_link_reads_back_as_its_referral_and_program_until_it_expires() -> None:
    referral, program = uuid4(), uuid4()

    url, expires_at = LINKS.url(referral, program, T0)
    token = token_of(url)

    assert url.startswith(BASE + "/rf/") and len(token) == 64 and "=" not in token
    assert expires_at == T0 + timedelta(days=14)
    assert LINKS.read(token, T0) == (referral, program)
    assert LINKS.read(token, expires_at - timedelta(seconds=1)) == (referral, program)
    assert LINKS.read(token, expires_at) is None
    assert LINKS.url(referral, program, T0) == (url, expires_at)  # built again by an outbox retry: the same text


def test_the_lifetime_is_the_configured_one() -> None:
    short = ReferralLinks(KEY, lifetime=timedelta(days=2), base_url=BASE)
    url, expires_at = short.url(uuid4(), uuid4(), T0)

    assert expires_at == T0 + timedelta(days=2)
    assert short.read(token_of(url), T0 + timedelta(days=2, minutes=1)) is None


def test_the_link_fits_the_contracts_referral_offer_and_names_nobody() -> None:
    referral, program = uuid4(), uuid4()
    url, _ = LINKS.url(referral, program, T0)

    assert ReferralOffer(code="4417", link=url).link == url
    assert str(referral) not in url and str(program) not in url
    with pytest.raises(ValidationError):
        ReferralOffer(code="4417", link=url + "x")


@pytest.mark.parametrize("position", [0, 20, 40, 63])
def test_a_tampered_token_reads_as_nothing(position: int) -> None:
    token = token_of(LINKS.url(uuid4(), uuid4(), T0)[0])
    swapped = "A" if token[position] != "A" else "B"
    tampered = token[:position] + swapped + token[position + 1 :]

    assert LINKS.read(tampered, T0) is None


@pytest.mark.parametrize("token", ["", "short", "!" * 64, "A" * 63, "A" * 65, "A" * 64])
def test_malformed_tokens_read_as_nothing(token: str) -> None:
    assert LINKS.read(token, T0) is None


def test_another_key_does_not_read_it() -> None:
    token = token_of(LINKS.url(uuid4(), uuid4(), T0)[0])

    assert ReferralLinks(b"o" * 32).read(token, T0) is None


def test_a_program_or_responder_token_on_the_same_key_is_no_referral_link() -> None:
    program_url, _ = ProgramLinks(KEY, base_url=BASE).url(uuid4(), T0)
    responder_url = ResponderLinks(KEY, base_url=BASE).url(uuid4(), uuid4(), T0)

    for url in (program_url, responder_url):
        token = url.rsplit("/", 1)[1]
        assert LINKS.read(token, T0) is None
        assert LINKS.read((token * 3)[:64], T0) is None


def test_the_same_body_signed_under_another_purpose_is_refused() -> None:
    referral, program = uuid4(), uuid4()
    body = referral.bytes + program.bytes + struct.pack(">I", int((T0 + timedelta(days=1)).timestamp()))
    genuine = hmac.new(KEY, b"crisis referral link v1|" + body, hashlib.sha256).digest()[:12]
    other = hmac.new(KEY, b"crisis program availability link v1|" + body, hashlib.sha256).digest()[:12]

    def token(mac: bytes) -> str:
        return base64.urlsafe_b64encode(body + mac).decode()

    assert LINKS.read(token(genuine), T0) == (referral, program)  # the purpose really is part of the signature
    assert LINKS.read(token(other), T0) is None
