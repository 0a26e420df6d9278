"""Copies of the log for reviewers: JSONL (verifiable offline), CSV (spreadsheets).

A JSONL export has one line per entry, ``{"index", "leaf_hash", "entry"}``,
where ``entry`` is the exact canonical JSON text that was hashed, then one
line per signed checkpoint, ``{"checkpoint": "<signed note>"}``.
``commonid audit verify --export FILE`` checks such a file with nothing else.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from commonid.audit.log import AuditLog, LoggedEntry
from commonid.audit.merkle import hash_from_text, hash_text
from commonid.audit.verify import RecordToCheck


def export_jsonl(log: AuditLog, out: TextIO) -> tuple[int, int]:
    """Write every entry and checkpoint; returns (entries, checkpoints) written."""
    entries = 0
    for logged in log.entries():
        out.write(entry_line(logged))
        entries += 1
    checkpoints = log.checkpoints()
    for stored in checkpoints:
        out.write(json.dumps({"checkpoint": stored.note}, ensure_ascii=False) + "\n")
    return entries, len(checkpoints)


def entry_line(logged: LoggedEntry) -> str:
    line = {"index": logged.index, "leaf_hash": hash_text(logged.leaf_hash), "entry": logged.entry}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_csv(log: AuditLog, out: TextIO, **filters: object) -> int:
    """Events as CSV: index, time, type, then the fields as canonical JSON."""
    writer = csv.writer(out)
    writer.writerow(["index", "time", "type", "leaf_hash", "data"])
    count = 0
    for logged in log.entries(**filters):  # type: ignore[arg-type]
        document = json.loads(logged.entry)
        writer.writerow(
            [
                logged.index,
                document["time"],
                logged.event_type,
                hash_text(logged.leaf_hash),
                json.dumps(document["data"], ensure_ascii=False, sort_keys=True),
            ]
        )
        count += 1
    return count


def export_records(path: Path) -> Iterator[RecordToCheck]:
    """The entries of a JSONL export, in file order."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            if "checkpoint" in item:
                continue
            try:
                yield RecordToCheck(
                    index=int(item["index"]),
                    entry=item["entry"],
                    leaf_hash=hash_from_text(item["leaf_hash"]) if "leaf_hash" in item else None,
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}:{number}: not an audit export line") from error


def export_checkpoint_notes(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [
            json.loads(line)["checkpoint"] for line in lines if line.startswith('{"checkpoint"')
        ]


def database_records(log: AuditLog) -> Iterator[RecordToCheck]:
    for logged in log.entries():
        yield RecordToCheck(
            index=logged.index,
            entry=logged.entry,
            leaf_hash=logged.leaf_hash,
            event_type=logged.event_type,
            logged_at=logged.logged_at,
        )
