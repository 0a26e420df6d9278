"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their checks.

Leaves are hashed as SHA-256(0x00 || entry), interior nodes as
SHA-256(0x01 || left || right), so a leaf can never pass for a node
(RFC 9162 §2.1.1). :class:`MerkleTree` keeps every complete, aligned subtree
hash level by level (level k holds the hashes of the subtrees of 2^k leaves
starting at multiples of 2^k), each level one flat ``bytearray``. Any tree head,
inclusion proof (PATH, §2.1.3) or consistency proof (PROOF, §2.1.4) of a
prefix of the log then needs O(log n) hashes, not O(n).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof or tree size that does not fit the tree."""


def hash_text(digest: bytes) -> str:
    """A hash as the log writes it everywhere a person or program reads one (API, CLI,
    exports, reviewer pages): standard base64, as the signed checkpoint note has it."""
    return base64.b64encode(digest).decode()


def hash_from_text(text: str) -> bytes:
    """The inverse of :func:`hash_text`; also reads the hex that exports before
    2026-12 carried, so an old export still verifies."""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return bytes.fromhex(text)
    return base64.b64decode(text, validate=True)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only Merkle tree over leaf hashes, answering for every prefix size."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for hashed in leaf_hashes:
            self.append_leaf_hash(hashed)

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        return self._size

    def append(self, entry: bytes) -> int:
        """Append an entry; returns its index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, hashed: bytes) -> int:
        """Append a leaf by its hash; completed subtrees get their node hash at once."""
        if len(hashed) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self._size
        self._levels[0] += hashed
        # Every trailing 1 bit of the new size closes one subtree one level up.
        level, position = 0, index
        while position & 1:
            below = self._levels[level]
            left = bytes(below[(position - 1) * HASH_SIZE : position * HASH_SIZE])
            right = bytes(below[position * HASH_SIZE : (position + 1) * HASH_SIZE])
            level += 1
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += node_hash(left, right)
            position >>= 1
        # Published last: a reader in another thread never sees a size whose
        # subtree hashes are not all stored yet.
        self._size = index + 1
        return index

    def leaf_hash_at(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise ProofError(f"no leaf {index} in a tree of {self._size}")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC's recursion produces.

        Every such range starts at a multiple of the largest power of two not
        above its length, so its left part is always a stored complete subtree.
        """
        count = end - start
        if count == 1:
            return self.leaf_hash_at(start)
        if count & (count - 1) == 0 and start % count == 0:
            level = count.bit_length() - 1
            position = start >> level
            return bytes(self._levels[level][position * HASH_SIZE : (position + 1) * HASH_SIZE])
        k = _largest_power_of_two_below(count)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ProofError(f"tree size {size} is not in 0..{self._size}")

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (the whole tree by default)."""
        size = self._size if size is None else size
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
        size = self._size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self._path(m, start, start + k), self._subtree(start + k, end)]
        return [*self._path(m - k, start + k, end), self._subtree(start, start + k)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1."""
        new_size = self._size if new_size is None else new_size
        self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ProofError(f"no consistency proof from {old_size} to {new_size}")
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self._subtree(start, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self._subtree(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._subtree(start, start + k)]


class CompactRange:
    """The right edge of a growing tree: O(log n) hashes, any prefix root on the way.

    Verifying a whole log needs the root at each checkpoint size while the
    entries stream past, not random access, so this keeps only the hashes of
    the complete subtrees the current size decomposes into.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash), largest first
        self.size = 0

    def append_leaf_hash(self, hashed: bytes) -> None:
        count, node = 1, hashed
        while self._stack and self._stack[-1][0] == count:
            _, left = self._stack.pop()
            node = node_hash(left, node)
            count *= 2
        self._stack.append((count, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------


def root_from_inclusion_proof(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof leads to; ProofError if the proof has the wrong shape."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn = index, size - 1
    r = hashed_leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``index`` with hash ``hashed_leaf`` in the tree ``root``."""
    try:
        return root_from_inclusion_proof(index, size, hashed_leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` is a prefix of the tree ``new_root``."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    # A power-of-two old tree is itself a node of the new one: the RFC prepends it.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    if fn & 1:
        while fn & 1:
            fn >>= 1
            sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
