"""Audit log benchmark: appends, inclusion proofs and full verification, each next to a baseline.

    .venv/bin/python bench/audit.py                      # 1,000,000-entry tree, SQLite appends
    .venv/bin/python bench/audit.py --postgres-url postgresql://postgres@127.0.0.1:5432/test

What is measured (all in this one process, wall-clock):

1. Appends to the database through AuditLog (allow-list check, RFC 8785
   canonical JSON, leaf hash, the head-row lock, INSERT, COMMIT):
   one caller appending one event at a time (2,000); ``AuditLog.append_many``
   batches of 1,000 (``--db-entries``); and 32 threads each calling
   ``AuditLog.append`` one event at a time (``--db-entries`` in all), as
   request handlers do, where group commit shares transactions. Baseline: a
   plain INSERT of the same rows (no lock, no hashing), driven the same way.
2. At ``--entries`` (default 1,000,000) entries, in memory: building the
   Merkle tree, then inclusion proofs (mean over 10,000 random leaves) and
   consistency proofs. Baseline: the RFC 9162 recursive MTH recomputed for
   the proof (a few runs; that is what a tree without stored subtrees costs).
3. Full verification of the same 1,000,000 entries with commonid.audit.verify
   against 10 signed checkpoints: every entry parsed, its leaf hash
   recomputed, order and allow-list checked, roots compared, Ed25519
   signatures checked. Baseline: SHA-256 of the entries alone (the floor).
   Then the same from a JSONL export file written to a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commonid.audit.checkpoint import Checkpoint, NoteSigner
from commonid.audit.export import export_checkpoint_notes, export_records
from commonid.audit.log import AuditLog, entry_bytes
from commonid.audit.merkle import MerkleTree, leaf_hash, node_hash
from commonid.audit.verify import RecordToCheck, verify_log
from commonid.store.database import create_engine, session_factory, upgrade

ORIGIN = "bench.commonid.example/audit"
TIME = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TIME_TEXT = "2026-11-25T09:00:00.000000Z"


def event(number: int) -> tuple[str, dict]:
    return "session.created", {
        "session_id": f"ses_{number:07d}",
        "provider_id": "prv_bench",
        "mode": "identity",
        "claims": ["birthdate", "name"],
    }


def fast_entry(index: int) -> str:
    """entry_bytes() of event(index) at TIME, by string formatting (checked below)."""
    return (
        '{"data":{"claims":["birthdate","name"],"mode":"identity","provider_id":"prv_bench",'
        f'"session_id":"ses_{index:07d}"}},"index":{index},"time":"{TIME_TEXT}",'
        '"type":"session.created"}'
    )


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s"


def bench_appends(url: str, label: str, count: int) -> None:
    upgrade(url)
    engine = create_engine(url)
    log = AuditLog(session_factory(engine), checkpoint_interval=None)
    single = min(count, 2_000)
    started = time.perf_counter()
    for number in range(single):
        event_type, fields = event(number)
        log.append(event_type, **fields)
    single_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for first in range(0, count, 1_000):
        log.append_many([event(n) for n in range(first, min(count, first + 1_000))])
    batched_seconds = time.perf_counter() - started

    # Request threads appending at once, one event per call (group commit).
    threads = 32
    per_thread = max(1, count // threads)

    def appender(offset: int) -> None:
        for number in range(offset, offset + per_thread):
            event_type, fields = event(number)
            log.append(event_type, **fields)

    started = time.perf_counter()
    workers = [threading.Thread(target=appender, args=(n * per_thread,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    threaded_seconds = time.perf_counter() - started
    threaded = threads * per_thread

    # Baseline: the same rows inserted plainly, no head lock, no hashing.
    metadata = sa.MetaData()
    plain = sa.Table(
        "bench_plain_rows",
        metadata,
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry", sa.Text),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    started = time.perf_counter()
    for number in range(single):
        with engine.begin() as connection:
            connection.execute(sa.insert(plain), {"idx": number, "entry": fast_entry(number)})
    plain_single = time.perf_counter() - started
    started = time.perf_counter()
    for first in range(single, single + count, 1_000):
        rows = [{"idx": n, "entry": fast_entry(n)} for n in range(first, first + 1_000)]
        with engine.begin() as connection:
            connection.execute(sa.insert(plain), rows)
    plain_batched = time.perf_counter() - started

    def plain_appender(offset: int) -> None:
        for number in range(offset, offset + per_thread):
            with engine.begin() as connection:
                connection.execute(sa.insert(plain), {"idx": number, "entry": fast_entry(number)})

    started = time.perf_counter()
    base = single + count
    workers = [
        threading.Thread(target=plain_appender, args=(base + n * per_thread,))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    plain_threaded = time.perf_counter() - started
    metadata.drop_all(engine)
    assert log.size() == single + count + threaded
    engine.dispose()
    print(f"appends, {label}:")
    print(
        f"  one event per transaction ({single:,}): {rate(single, single_seconds)}"
        f"   baseline plain INSERT+COMMIT: {rate(single, plain_single)}"
    )
    print(
        f"  batches of 1,000 ({count:,}):        {rate(count, batched_seconds)}"
        f"   baseline plain batched INSERT: {rate(count, plain_batched)}"
    )
    print(
        f"  {threads} threads, one event per call ({threaded:,}): "
        f"{rate(threaded, threaded_seconds)}"
        f"   baseline {threads} threads plain INSERT+COMMIT: {rate(threaded, plain_threaded)}"
    )


def naive_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 MTH from the leaf hashes, recomputed from scratch."""
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(naive_root(hashes[:k]), naive_root(hashes[k:]))


def bench_tree_and_verify(size: int) -> None:
    for sample in (0, 7, size - 1):
        assert fast_entry(sample).encode() == entry_bytes(sample, TIME, *event(sample))
    entries = [fast_entry(index) for index in range(size)]

    started = time.perf_counter()
    hashes = [leaf_hash(entry.encode()) for entry in entries]
    hashing_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tree = MerkleTree(hashes)
    build_seconds = time.perf_counter() - started
    print(f"tree of {size:,} entries (in memory):")
    print(
        f"  leaf hashing {hashing_seconds:.2f} s, tree build {build_seconds:.2f} s "
        f"({rate(size, build_seconds)} appends to the tree)"
    )

    randomizer = random.Random(9162)
    indexes = [randomizer.randrange(size) for _ in range(10_000)]
    started = time.perf_counter()
    for index in indexes:
        tree.inclusion_proof(index)
    proof_ms = (time.perf_counter() - started) / len(indexes) * 1000
    olds = [randomizer.randrange(1, size) for _ in range(10_000)]
    started = time.perf_counter()
    for old in olds:
        tree.consistency_proof(old)
    consistency_ms = (time.perf_counter() - started) / len(olds) * 1000
    started = time.perf_counter()
    runs = 3
    for _ in range(runs):
        assert naive_root(hashes) == tree.root()
    naive_ms = (time.perf_counter() - started) / runs * 1000
    print(
        f"  inclusion proof:   {proof_ms:.4f} ms mean over 10,000   "
        f"baseline (recompute MTH for the proof): {naive_ms:,.0f} ms"
    )
    print(f"  consistency proof: {consistency_ms:.4f} ms mean over 10,000")

    signer = NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate())
    notes = [
        signer.sign_checkpoint(Checkpoint(ORIGIN, cut, tree.root(cut), TIME))
        for cut in range(size // 10, size + 1, size // 10)
    ]
    records = (
        RecordToCheck(index=index, entry=entry, leaf_hash=hashes[index])
        for index, entry in enumerate(entries)
    )
    started = time.perf_counter()
    report = verify_log(records, notes, [signer.verifier()], origin=ORIGIN)
    verify_seconds = time.perf_counter() - started
    assert report.ok and report.entries_checked == size, report.lines()
    started = time.perf_counter()
    for entry in entries:
        hashlib.sha256(entry.encode()).digest()
    floor_seconds = time.perf_counter() - started
    print(
        f"  full verification, {len(notes)} checkpoints: {verify_seconds:.2f} s   "
        f"baseline (SHA-256 of every entry only): {floor_seconds:.2f} s"
    )

    # The same log as a reviewer receives it: a JSONL export file on disk.
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory) / "log.jsonl"
        with export.open("w", encoding="utf-8") as handle:
            for index, entry in enumerate(entries):
                line = {"index": index, "leaf_hash": hashes[index].hex(), "entry": entry}
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")
            for note in notes:
                handle.write(json.dumps({"checkpoint": note}) + "\n")
        started = time.perf_counter()
        report = verify_log(
            export_records(export),
            export_checkpoint_notes(export),
            [signer.verifier()],
            origin=ORIGIN,
        )
        file_seconds = time.perf_counter() - started
        assert report.ok and report.entries_checked == size, report.lines()
        megabytes = export.stat().st_size / 1e6
    print(f"  full verification of the JSONL export ({megabytes:,.0f} MB): {file_seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db-entries", type=int, default=20_000)
    parser.add_argument("--postgres-url", default="")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        bench_appends(
            f"sqlite:///{directory}/audit.sqlite3", "SQLite (WAL, file)", arguments.db_entries
        )
    if arguments.postgres_url:
        schema_free_url = arguments.postgres_url
        engine = create_engine(schema_free_url)
        schema = f"bench_audit_{int(time.time())}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.make_url(create_engine(schema_free_url).url).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        try:
            bench_appends(
                url.render_as_string(hide_password=False), "PostgreSQL", arguments.db_entries
            )
        finally:
            with engine.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
    bench_tree_and_verify(arguments.entries)


if __name__ == "__main__":
    main()
