"""The Merkle tree against RFC 9162 written out plainly (tests/audit/rfc9162.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonid.audit.merkle import (
    CompactRange,
    MerkleTree,
    ProofError,
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.audit import rfc9162

ENTRIES = [f"entry {i}".encode() for i in range(37)]

# The eight leaves and roots of Certificate Transparency's reference tests.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _tree(entries: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    return tree


def test_roots_match_certificate_transparency_reference_vectors() -> None:
    tree = _tree(CT_LEAVES)
    assert tree.root(0).hex() == hashlib.sha256(b"").hexdigest()
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert tree.root(size).hex() == expected
        assert rfc9162.mth(CT_LEAVES[:size]).hex() == expected


def test_every_prefix_root_and_proof_equals_the_rfc_definitions() -> None:
    tree = _tree(ENTRIES)
    for size in range(len(ENTRIES) + 1):
        prefix = ENTRIES[:size]
        assert tree.root(size) == rfc9162.mth(prefix)
        for index in range(size):
            assert tree.inclusion_proof(index, size) == rfc9162.path(index, prefix)
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == rfc9162.proof(old, prefix)


def test_rfc_proofs_verify_and_wrong_ones_do_not() -> None:
    for size in range(1, len(ENTRIES) + 1):
        prefix = ENTRIES[:size]
        root = rfc9162.mth(prefix)
        for index in range(size):
            path = rfc9162.path(index, prefix)
            assert verify_inclusion(index, size, leaf_hash(prefix[index]), path, root)
            assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, root)
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(other, size, leaf_hash(prefix[index]), path, root)
                assert not verify_inclusion(index, size, leaf_hash(prefix[index]), path[:-1], root)
        for old in range(1, size + 1):
            old_root = rfc9162.mth(ENTRIES[:old])
            consistency = rfc9162.proof(old, prefix)
            assert verify_consistency(old, size, old_root, root, consistency)
            if old < size:
                assert not verify_consistency(old, size, old_root, leaf_hash(b"x"), consistency)
                assert not verify_consistency(old, size, leaf_hash(b"x"), root, consistency)
                assert not verify_consistency(old, size, old_root, root, [])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_random_sizes_against_the_rfc(size: int, data: st.DataObject) -> None:
    entries = [index.to_bytes(4, "big") for index in range(size)]
    tree = _tree(entries)
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    assert tree.root() == rfc9162.mth(entries)
    assert tree.inclusion_proof(index) == rfc9162.path(index, entries)
    assert tree.consistency_proof(old) == rfc9162.proof(old, entries)


def test_compact_range_gives_every_prefix_root() -> None:
    compact = CompactRange()
    assert compact.root() == rfc9162.mth([])
    for size, entry in enumerate(ENTRIES, start=1):
        compact.append_leaf_hash(leaf_hash(entry))
        assert compact.root() == rfc9162.mth(ENTRIES[:size])


def test_sizes_outside_the_tree_are_refused() -> None:
    tree = _tree(ENTRIES[:5])
    with pytest.raises(ProofError):
        tree.root(6)
    with pytest.raises(ProofError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ProofError):
        tree.consistency_proof(0, 5)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(0, 5, leaf_hash(b""), [])
