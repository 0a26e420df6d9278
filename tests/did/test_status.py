"""StatusList2021 lists: encoding (checked by an independent decoder), allocation, cascade."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from did import _didkit
from did.credentials import (
    CredentialReason,
    IdentityCredentialRequest,
    issue_identity_credential,
    verify_identity_credential,
)
from did.status import (
    MINIMUM_ENTRIES,
    StatusCheck,
    StatusList,
    StatusListError,
    StatusListKind,
    StatusPurpose,
    check_status,
    decode_encoded_list,
    issue_status_list_credential,
    revoke_credentials_of_certificate,
)

from .conftest import StatusRegistry


def _independent_decode(encoded_list: str) -> bytes:
    """The spec's decoding, by hand: the multibase 'u' (Bitstring Status List; none in
    StatusList2021), base64url (padding restored), then GUNZIP."""
    encoded_list = encoded_list.removeprefix("u")
    padded = encoded_list + "=" * (-len(encoded_list) % 4)
    return gzip.decompress(base64.b64decode(padded, altchars=b"-_", validate=True))


def _bit(bitstring: bytes, index: int) -> int:
    # Index 0 is the left-most bit of the first byte.
    return (bitstring[index // 8] >> (7 - index % 8)) & 1


def test_encoded_list_is_gzip_base64url_msb_first_and_16kib(
    status_registry: StatusRegistry,
) -> None:
    revocation = status_registry.revocation
    indices = [revocation.allocate() for _ in range(5)]
    for index in indices[:3]:
        revocation.revoke(index)

    encoded = revocation.encoded_list()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encoded), "base64url without padding"
    bitstring = _independent_decode(encoded)
    assert len(bitstring) == 16 * 1024 == MINIMUM_ENTRIES // 8
    set_bits = {i for i in range(len(bitstring) * 8) if _bit(bitstring, i)}
    assert set_bits == set(indices[:3])


def test_known_bit_positions() -> None:
    status_list = StatusList.new("https://commonid.test/s/1", StatusPurpose.SUSPENSION)
    status_list.allocated_bits[:] = b"\xff" * len(status_list.allocated_bits)
    for index in (0, 9, MINIMUM_ENTRIES - 1):
        status_list.suspend(index)
    bitstring = _independent_decode(status_list.encoded_list())
    assert bitstring[0] == 0b1000_0000
    assert bitstring[1] == 0b0100_0000
    assert bitstring[-1] == 0b0000_0001


def test_status_list_credential_is_signed_and_carries_the_list(
    status_registry: StatusRegistry,
) -> None:
    revocation = status_registry.revocation
    revocation.revoke(revocation.allocate())
    credential = issue_status_list_credential(
        revocation, status_registry.keyring, issued_at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    )
    assert credential["id"] == revocation.url
    assert credential["issuanceDate"] == "2026-05-01T09:00:00Z"
    assert credential["expirationDate"] == "2026-05-01T10:00:00Z"  # re-signed hourly
    assert "BitstringStatusListCredential" in credential["type"]
    subject = credential["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "revocation"
    assert subject["encodedList"].startswith("u")  # multibase base64url
    assert _independent_decode(subject["encodedList"]) == bytes(revocation.status_bits)
    report = _didkit.verify_credential(json.dumps(credential), {"proofPurpose": "assertionMethod"})
    assert report.ok, report.errors


def test_a_statuslist2021_list_made_before_is_still_served_and_checked(
    status_registry: StatusRegistry,
) -> None:
    legacy = StatusList.new(
        "https://commonid.test/s/legacy",
        StatusPurpose.REVOCATION,
        kind=StatusListKind.STATUS_LIST_2021,
    )
    index = legacy.allocate()
    # Serialized before the kind was recorded: read back as StatusList2021.
    document = json.loads(legacy.to_bytes())
    del document["kind"]
    legacy = StatusList.from_bytes(json.dumps(document).encode())
    assert legacy.kind is StatusListKind.STATUS_LIST_2021
    legacy.revoke(index)
    credential = issue_status_list_credential(legacy, status_registry.keyring)
    assert credential["type"] == ["VerifiableCredential", "StatusList2021Credential"]
    assert not credential["credentialSubject"]["encodedList"].startswith("u")
    assert _didkit.verify_credential(json.dumps(credential), {"proofPurpose": "assertionMethod"}).ok
    entry = legacy.entry(index)
    assert entry["type"] == "StatusList2021Entry"
    checked = check_status(
        entry,
        StatusPurpose.REVOCATION,
        resolver=lambda url: credential,
        issuers=status_registry.keyring,
        at=datetime.now(UTC),
    )
    assert checked is StatusCheck.SET
    # An entry of the other kind pointing at it is refused, not read.
    wrong = dict(entry, type="BitstringStatusListEntry")
    assert (
        check_status(
            wrong,
            StatusPurpose.REVOCATION,
            resolver=lambda url: credential,
            issuers=status_registry.keyring,
            at=datetime.now(UTC),
        )
        is StatusCheck.INVALID
    )


def test_allocation_is_random_and_never_repeats() -> None:
    status_list = StatusList.new("https://commonid.test/s/2", StatusPurpose.REVOCATION)
    indices = [status_list.allocate() for _ in range(2000)]
    assert len(set(indices)) == len(indices)
    assert indices != sorted(indices)


def test_full_list_refuses_to_allocate() -> None:
    status_list = StatusList.new("https://commonid.test/s/3", StatusPurpose.REVOCATION)
    status_list.allocated_bits[:] = b"\xff" * len(status_list.allocated_bits)
    status_list.allocated_bits[100] = 0b1111_1011  # one free index: 805
    assert status_list.allocate() == 805
    with pytest.raises(StatusListError, match="full"):
        status_list.allocate()


def test_serialized_list_keeps_allocation_and_status() -> None:
    status_list = StatusList.new("https://commonid.test/s/4", StatusPurpose.REVOCATION)
    revoked, kept = status_list.allocate(), status_list.allocate()
    status_list.revoke(revoked)
    restored = StatusList.from_bytes(status_list.to_bytes())
    assert restored.url == status_list.url and restored.purpose is StatusPurpose.REVOCATION
    assert restored.is_set(revoked) and not restored.is_set(kept)
    assert restored.allocated_bits == status_list.allocated_bits


def test_status_changes_respect_the_list_purpose() -> None:
    revocation = StatusList.new("https://commonid.test/r", StatusPurpose.REVOCATION)
    suspension = StatusList.new("https://commonid.test/s", StatusPurpose.SUSPENSION)
    index = revocation.allocate()
    with pytest.raises(StatusListError):
        revocation.suspend(index)
    with pytest.raises(StatusListError):
        revocation.unsuspend(index)  # revocation is final
    with pytest.raises(StatusListError, match="never allocated"):
        suspension.suspend(12345)  # nothing was allocated in this list
    assert revocation.revoke(index) is True
    assert revocation.revoke(index) is False  # already revoked


def test_truncated_list_is_refused() -> None:
    encoded = StatusList.new("https://commonid.test/s/5", StatusPurpose.REVOCATION).encoded_list()
    encoded = encoded.removeprefix("u")  # the multibase prefix
    compressed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    truncated = base64.urlsafe_b64encode(compressed[:-12]).decode().rstrip("=")
    with pytest.raises(StatusListError, match="truncated"):
        decode_encoded_list(truncated)


def test_gzip_bomb_is_refused() -> None:
    bomb = base64.urlsafe_b64encode(gzip.compress(bytes(17 * 1024 * 1024))).decode().rstrip("=")
    with pytest.raises(StatusListError, match="size limit"):
        decode_encoded_list(bomb)


def test_revoking_a_certificate_revokes_every_credential_issued_on_it(
    make_request: Callable[..., IdentityCredentialRequest],
    status_registry: StatusRegistry,
    now: datetime,
) -> None:
    card_a = [make_request(serial=0xA), make_request(serial=0xA)]
    card_b = make_request(serial=0xB)
    issued_a = [issue_identity_credential(r, status_registry.keyring) for r in card_a]
    issued_b = issue_identity_credential(card_b, status_registry.keyring)
    serial_a = card_a[0].certificates[0].serial_sha256
    # What the service's store would hand over: serial hash -> credential id -> status bits.
    by_certificate = {
        serial_a: {r.credential_id: r.status for r in card_a},
        card_b.certificates[0].serial_sha256: {card_b.credential_id: card_b.status},
    }

    outcome = revoke_credentials_of_certificate(serial_a, by_certificate, status_registry.lists)

    assert set(outcome.revoked_credential_ids) == {r.credential_id for r in card_a}
    assert outcome.changed_list_urls == {status_registry.revocation.url}

    def verify(credential: str) -> CredentialReason:
        return verify_identity_credential(
            credential, status_registry.keyring, at=now, status_resolver=status_registry.resolve
        ).reason

    assert [verify(issued.credential) for issued in issued_a] == [CredentialReason.REVOKED] * 2
    assert verify(issued_b.credential) is CredentialReason.VALID
    again = revoke_credentials_of_certificate(serial_a, by_certificate, status_registry.lists)
    assert again.revoked_credential_ids == () and again.changed_list_urls == frozenset()


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=MINIMUM_ENTRIES - 1), max_size=40))
def test_any_set_of_revocations_decodes_independently(indices: set[int]) -> None:
    status_list = StatusList.new("https://commonid.test/s/h", StatusPurpose.REVOCATION)
    status_list.allocated_bits[:] = b"\xff" * len(status_list.allocated_bits)
    for index in indices:
        status_list.revoke(index)
    bitstring = _independent_decode(status_list.encoded_list())
    assert {i for i, byte in enumerate(bitstring) if byte} == {i // 8 for i in indices}
    assert all(_bit(bitstring, index) for index in indices)
    assert sum(bin(byte).count("1") for byte in bitstring) == len(indices)
