"""IETF Token Status List: the draft's own examples, allocation, final revocation, and
the checks a verifier makes on a status list token."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from joserfc.jwk import ECKey

from did.token_status import (
    MINIMUM_ENTRIES,
    StatusLookup,
    TokenStatus,
    TokenStatusError,
    TokenStatusList,
    check_token_status,
    decode_lst,
    status_at,
    status_list_token,
    status_reference,
)

NOW = datetime(2026, 12, 5, tzinfo=UTC)
URI = "https://commonid.example/v1/token-status-lists/tsl-1"


def test_the_drafts_examples_decode_least_significant_bits_first() -> None:
    one_bit = decode_lst("eNrbuRgAAhcBXQ")
    assert [status_at(one_bit, i, 1) for i in range(16)] == [
        1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1,
    ]  # fmt: skip
    two_bits = decode_lst("eNo76fITAAPfAgc")
    assert [status_at(two_bits, i, 2) for i in range(12)] == [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]


def test_statuses_round_trip_and_revocation_is_final() -> None:
    status_list = TokenStatusList.new(URI)
    assert status_list.size == MINIMUM_ENTRIES
    indices = {status_list.allocate() for _ in range(50)}
    assert len(indices) == 50
    first, second, *_ = sorted(indices)
    assert status_list.set_status(first, TokenStatus.SUSPENDED)
    assert status_list.set_status(first, TokenStatus.VALID)  # reinstated
    assert status_list.set_status(second, TokenStatus.INVALID)
    assert not status_list.set_status(second, TokenStatus.VALID)  # stays revoked
    again = TokenStatusList.from_bytes(status_list.to_bytes())
    assert again.status(second) is TokenStatus.INVALID and again.status(first) is TokenStatus.VALID
    with pytest.raises(TokenStatusError):
        again.set_status(next(i for i in range(MINIMUM_ENTRIES) if i not in indices), 1)


def test_a_verifier_checks_the_tokens_signature_subject_and_age() -> None:
    key = ECKey.generate_key("P-256", private=True)
    status_list = TokenStatusList.new(URI)
    index = status_list.allocate()
    status_list.set_status(index, TokenStatus.SUSPENDED)
    token = status_list_token(status_list, key, kid="k1", issued_at=NOW)
    reference = status_reference(URI, index)

    def check(token_text: str, at: datetime = NOW, lookup=lambda header: key) -> StatusLookup:  # type: ignore[no-untyped-def]
        return check_token_status(reference, fetch=lambda uri: token_text, issuer_key=lookup, at=at)

    assert check(token) is StatusLookup.SUSPENDED
    assert check(token, NOW + timedelta(hours=2)) is StatusLookup.STALE
    assert check(token, lookup=lambda header: None) is StatusLookup.MALFORMED
    other = ECKey.generate_key("P-256", private=True)
    assert check(token, lookup=lambda header: other) is StatusLookup.MALFORMED
    # A list token served for another URI cannot stand in for this one.
    elsewhere = TokenStatusList(URI + "x", status_list.statuses, status_list.allocated)
    assert check(status_list_token(elsewhere, key, kid="k1", issued_at=NOW)) is (
        StatusLookup.MALFORMED
    )

    def unreachable(uri: str) -> str:
        raise OSError("down")

    assert (
        check_token_status(reference, fetch=unreachable, issuer_key=lambda h: key, at=NOW)
        is StatusLookup.UNAVAILABLE
    )
    bad_reference = {"status_list": {"idx": "x"}}
    assert (
        check_token_status(bad_reference, fetch=unreachable, issuer_key=lambda h: key, at=NOW)
        is StatusLookup.MALFORMED
    )


def test_a_zlib_bomb_is_refused() -> None:
    bomb = zlib.compress(b"\0" * (17 * 1024 * 1024))
    with pytest.raises(TokenStatusError):
        decode_lst(base64.urlsafe_b64encode(bomb).rstrip(b"=").decode())
    assert json.loads(TokenStatusList.new(URI).to_bytes())["format"]
