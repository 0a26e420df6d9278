"""Offline verification of a whole audit log against signed checkpoints.

Trusts nothing but the checkpoint signing keys. It recomputes every leaf hash
from the entry text, rebuilds the tree while the entries stream past, and
checks the root at every checkpoint size. What it reports, and where:

* an entry whose text no longer matches its stored leaf hash: that index;
* a missing index (deleted row or line): that index;
* an entry stored at another index than the one it was logged with, or out
  of order in an export (reordered): each position;
* searchable columns that no longer agree with the entry: that index;
* a checkpoint whose root the log does not reproduce: the range of entries
  between the last reproduced checkpoint and it (an edit that also rewrote the
  stored leaf hashes can be narrowed no further without a copy: give an
  earlier export as ``reference`` and the exact first index is reported);
* a checkpoint beyond the end of the log (truncation);
* two checkpoints that cannot both be true (a fork): same size with different
  roots, or an earlier one that the log, as it reproduces a later one, contradicts;
* no signed checkpoint at all: then the entries only agree with each other, and
  a log rewritten with recomputed hashes and its checkpoints deleted would pass,
  so this is a failure unless the caller explicitly accepts it.
"""

from __future__ import annotations

import base64
import json
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from commonid.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    open_checkpoint,
    read_checkpoint_unverified,
)
from commonid.audit.events import format_time, logged_fields_allowed
from commonid.audit.merkle import CompactRange, leaf_hash

MAX_FINDINGS_PER_KIND = 50


@dataclass(frozen=True)
class RecordToCheck:
    """One stored entry as the source holds it (database row or export line)."""

    index: int  # the idx column, or the export line's "index" member
    entry: str
    leaf_hash: bytes | None = None  # stored leaf hash, when the source keeps one
    event_type: str | None = None  # searchable column copies, database only
    logged_at: datetime | None = None


@dataclass(frozen=True)
class Finding:
    kind: str  # stable code, e.g. "entry_edited", "entry_missing", "checkpoint_not_reproduced"
    index: int | None  # the located entry (or first of a range)
    detail: str
    last_index: int | None = None  # end of the located range, inclusive


@dataclass(frozen=True)
class CheckpointResult:
    checkpoint: Checkpoint | None
    status: str  # reproduced | not_reproduced | beyond_log | bad_signature | unreadable
    note_digest: str


@dataclass
class VerificationReport:
    entries_checked: int = 0
    first_index: int | None = None
    last_index: int | None = None
    checkpoints: list[CheckpointResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    finding_counts: dict[str, int] = field(default_factory=dict)
    root: bytes | None = None
    # Set when the caller accepted a verification without any signed checkpoint.
    unanchored_allowed: bool = False

    @property
    def ok(self) -> bool:
        return not self.finding_counts

    def add(self, finding: Finding) -> None:
        count = self.finding_counts.get(finding.kind, 0)
        self.finding_counts[finding.kind] = count + 1
        if count < MAX_FINDINGS_PER_KIND:
            self.findings.append(finding)

    def located_indexes(self, kind: str | None = None) -> set[int]:
        """Every entry index a finding (of ``kind``) points at, ranges expanded."""
        located: set[int] = set()
        for finding in self.findings:
            if finding.index is None or (kind is not None and finding.kind != kind):
                continue
            last = finding.last_index if finding.last_index is not None else finding.index
            located.update(range(finding.index, last + 1))
        return located

    def lines(self) -> list[str]:
        """What was checked and what was found, for people."""
        out = [f"entries checked: {self.entries_checked}"]
        if self.entries_checked:
            out.append(
                "  each: leaf hash recomputed (RFC 9162 SHA-256(0x00 || entry)), index and "
                "order, searchable columns, fields on the allow-list"
            )
        if self.root is not None:
            out.append(f"  tree root of the log as stored: {base64.b64encode(self.root).decode()}")
        out.append(f"checkpoints checked: {len(self.checkpoints)}")
        for result in self.checkpoints:
            if result.checkpoint is None:
                out.append(f"  [{result.status}] note {result.note_digest}")
                continue
            cp = result.checkpoint
            out.append(
                f"  [{result.status}] size {cp.tree_size} root "
                f"{base64.b64encode(cp.root_hash).decode()} time {format_time(cp.time)}"
            )
        if self.ok and self.unanchored_allowed:
            out.append(
                "result: OK WITHOUT CHECKPOINT, the entries agree with each other but no signed "
                "checkpoint anchors them (allowed by --allow-no-checkpoint)"
            )
            return out
        if self.ok:
            out.append("result: OK, no problem found")
            return out
        total = sum(self.finding_counts.values())
        out.append(f"result: FAILED, {total} problem(s)")
        for finding in self.findings:
            where = ""
            if finding.index is not None:
                where = f" at index {finding.index}"
                if finding.last_index is not None and finding.last_index != finding.index:
                    where = f" at indexes {finding.index}..{finding.last_index}"
            out.append(f"  {finding.kind}{where}: {finding.detail}")
        for kind, count in sorted(self.finding_counts.items()):
            if count > MAX_FINDINGS_PER_KIND:
                out.append(f"  ... {count - MAX_FINDINGS_PER_KIND} more {kind}")
        return out


def _opened_checkpoints(
    notes: Iterable[str], verifiers: Sequence[NoteVerifier], origin: str | None
) -> tuple[list[tuple[Checkpoint, int]], VerificationReport]:
    report = VerificationReport()
    opened: list[tuple[Checkpoint, int]] = []
    for note in notes:
        digest = leaf_hash(note.encode()).hex()[:16]
        try:
            checkpoint = open_checkpoint(note, verifiers)
        except CheckpointError as error:
            try:
                claimed = read_checkpoint_unverified(note)
            except CheckpointError:
                claimed = None
            status = "bad_signature" if claimed is not None else "unreadable"
            report.checkpoints.append(CheckpointResult(claimed, status, digest))
            report.add(Finding("checkpoint_" + status, None, f"note {digest}: {error}"))
            continue
        if origin is not None and checkpoint.origin != origin:
            report.checkpoints.append(CheckpointResult(checkpoint, "wrong_origin", digest))
            report.add(
                Finding(
                    "checkpoint_wrong_origin", None, f"note {digest} is for {checkpoint.origin}"
                )
            )
            continue
        report.checkpoints.append(CheckpointResult(checkpoint, "pending", digest))
        opened.append((checkpoint, len(report.checkpoints) - 1))
    return opened, report


def verify_log(
    records: Iterable[RecordToCheck],
    checkpoint_notes: Iterable[str],
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    reference_leaf_hashes: Sequence[bytes] | None = None,
    allow_no_checkpoint: bool = False,
) -> VerificationReport:
    """Check every entry and every checkpoint; see the module docstring.

    Without any checkpoint note the report fails (``no_checkpoint``) unless
    ``allow_no_checkpoint``: self-consistent entries prove nothing on their own.
    """
    opened, report = _opened_checkpoints(checkpoint_notes, verifiers, origin)
    if not report.checkpoints:
        if allow_no_checkpoint:
            report.unanchored_allowed = True
        else:
            report.add(
                Finding(
                    "no_checkpoint",
                    None,
                    "no signed checkpoint was checked, so nothing anchors the entries: a log "
                    "rewritten with recomputed hashes and its checkpoints deleted would look "
                    "the same; give the checkpoints you kept (--checkpoint), or accept this "
                    "explicitly (--allow-no-checkpoint)",
                )
            )
    by_size: dict[int, list[tuple[Checkpoint, int]]] = {}
    for checkpoint, slot in opened:
        by_size.setdefault(checkpoint.tree_size, []).append((checkpoint, slot))
    for size, group in sorted(by_size.items()):
        if len({checkpoint.root_hash for checkpoint, _ in group}) > 1:
            report.add(
                Finding(
                    "checkpoints_fork",
                    None,
                    f"{len(group)} signed checkpoints of size {size} have different roots",
                )
            )

    tree = CompactRange()
    claims = array("q")
    reproduced_sizes: list[int] = []
    failed_sizes: list[int] = []
    last_good = 0
    differs_from: int | None = None

    def check_checkpoints_at(size: int) -> None:
        nonlocal last_good
        group = by_size.get(size)
        if not group:
            return
        root = tree.root()
        for checkpoint, slot in group:
            if checkpoint.root_hash == root:
                report.checkpoints[slot] = CheckpointResult(
                    checkpoint, "reproduced", report.checkpoints[slot].note_digest
                )
                reproduced_sizes.append(size)
            else:
                report.checkpoints[slot] = CheckpointResult(
                    checkpoint, "not_reproduced", report.checkpoints[slot].note_digest
                )
                failed_sizes.append(size)
                report.add(
                    Finding(
                        "checkpoint_not_reproduced",
                        last_good,
                        f"the log does not reproduce the root signed at size {size} "
                        f"({format_time(checkpoint.time)}): an entry in this range was "
                        "changed, removed or moved",
                        last_index=size - 1,
                    )
                )
        if all(checkpoint.root_hash == root for checkpoint, _ in group):
            last_good = size

    check_checkpoints_at(0)
    for position, record in enumerate(records):
        entry_bytes = record.entry.encode()
        computed = leaf_hash(entry_bytes)
        claims.append(record.index)
        if record.leaf_hash is not None and record.leaf_hash != computed:
            report.add(
                Finding(
                    "entry_edited",
                    record.index,
                    "the entry text no longer matches the leaf hash stored with it",
                )
            )
        try:
            document: Any = json.loads(record.entry)
            claimed_index = document["index"]
            event_type = document["type"]
            data = document["data"]
            logged_time = document["time"]
        except (ValueError, KeyError, TypeError):
            report.add(Finding("entry_unreadable", record.index, "not an audit entry document"))
        else:
            if claimed_index != record.index:
                report.add(
                    Finding(
                        "entry_moved",
                        record.index,
                        f"stored at index {record.index} but logged as index {claimed_index}",
                    )
                )
            if (record.event_type is not None and record.event_type != event_type) or (
                record.logged_at is not None and format_time(record.logged_at) != logged_time
            ):
                report.add(
                    Finding(
                        "column_edited",
                        record.index,
                        "the searchable type/time columns disagree with the entry",
                    )
                )
            if not isinstance(data, dict) or not logged_fields_allowed(event_type, data):
                report.add(
                    Finding(
                        "fields_not_allowed",
                        record.index,
                        "the entry holds a field outside its event type's allow-list",
                    )
                )
        if (
            reference_leaf_hashes is not None
            and differs_from is None
            and position < len(reference_leaf_hashes)
            and reference_leaf_hashes[position] != computed
        ):
            differs_from = position
            report.add(
                Finding(
                    "differs_from_reference",
                    position,
                    "first entry whose leaf hash differs from the reference copy",
                )
            )
        tree.append_leaf_hash(computed)
        check_checkpoints_at(tree.size)

    report.entries_checked = tree.size
    report.root = tree.root()
    if claims:
        report.first_index, report.last_index = claims[0], claims[-1]
    _order_findings(claims, report)

    for checkpoint, slot in opened:
        if checkpoint.tree_size > tree.size:
            report.checkpoints[slot] = CheckpointResult(
                checkpoint, "beyond_log", report.checkpoints[slot].note_digest
            )
            end = report.last_index + 1 if report.last_index is not None else 0
            if end < checkpoint.tree_size:
                report.add(
                    Finding(
                        "log_truncated",
                        end,
                        f"a checkpoint signed {checkpoint.tree_size} entries but the log ends "
                        f"at index {end - 1}: the entries after it are gone",
                        last_index=checkpoint.tree_size - 1,
                    )
                )
            else:  # the indexes reach that far: entries inside the range are missing
                report.add(
                    Finding(
                        "checkpoint_not_reproduced",
                        last_good,
                        f"a checkpoint signed {checkpoint.tree_size} entries but the log holds "
                        f"{tree.size}: entries in this range are missing",
                        last_index=checkpoint.tree_size - 1,
                    )
                )
    if reference_leaf_hashes is not None and tree.size < len(reference_leaf_hashes):
        report.add(
            Finding(
                "differs_from_reference",
                tree.size,
                f"the reference copy has {len(reference_leaf_hashes)} entries, the log {tree.size}",
            )
        )
    # A checkpoint the log contradicts while it reproduces a later one: the
    # history the earlier checkpoint signed was replaced (a fork).
    for failed in sorted(set(failed_sizes)):
        later = [size for size in reproduced_sizes if size > failed]
        if later:
            report.add(
                Finding(
                    "checkpoints_fork",
                    None,
                    f"checkpoint of size {failed} is not a prefix of the checkpoint of size "
                    f"{later[0]} that the log reproduces: the log was rewritten after size "
                    f"{failed} was signed",
                )
            )
    return report


def _order_findings(claims: array, report: VerificationReport) -> None:
    """Missing and out-of-place indexes, from the index each record is stored under."""
    if not claims:
        return
    highest = max(claims)
    if min(claims) < 0:
        report.add(Finding("entry_out_of_order", None, "negative index in the log"))
        return
    seen = bytearray(highest + 1)
    for index in claims:
        if seen[index]:
            report.add(Finding("entry_duplicated", index, f"index {index} appears again"))
        seen[index] = 1
    missing_before = array("q", [0]) * (highest + 2)
    running = 0
    run_start: int | None = None
    for index in range(highest + 1):
        missing_before[index] = running
        if not seen[index]:
            running += 1
            if run_start is None:
                run_start = index
        elif run_start is not None:
            report.add(
                Finding(
                    "entry_missing",
                    run_start,
                    "deleted: no entry with this index",
                    last_index=index - 1,
                )
            )
            run_start = None
    for position, index in enumerate(claims):
        if index - missing_before[index] != position:
            report.add(
                Finding(
                    "entry_out_of_order",
                    index,
                    f"entry {index} is at position {position} of the log",
                )
            )
