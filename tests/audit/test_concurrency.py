"""Several processes appending at once leave one gapless, consistent tree."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from sqlalchemy.orm import sessionmaker

from commonid.audit.export import database_records
from commonid.audit.log import AuditLog
from commonid.audit.verify import verify_log
from commonid.store.database import create_engine, upgrade
from tests.audit import rfc9162
from tests.audit.conftest import ORIGIN
from tests.audit.workers import append_events

WORKERS = 4
PER_WORKER = 40


def _run_workers(database_url: str) -> list[list[int]]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=append_events, args=(database_url, worker, PER_WORKER, start, results)
        )
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    given = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return [given[worker] for worker in range(WORKERS)]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_appends_from_processes_keep_a_gapless_consistent_tree(
    backend: str, request: pytest.FixtureRequest, signer
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_schema_url")
    upgrade(url)
    given = _run_workers(url)
    total = WORKERS * PER_WORKER

    engine = create_engine(url)
    try:
        log = AuditLog(sessionmaker(engine), signer, checkpoint_interval=None)
        entries = list(log.entries())
        # Gapless, each index given to exactly one append, in index order.
        assert [logged.index for logged in entries] == list(range(total))
        assert sorted(index for indexes in given for index in indexes) == list(range(total))
        # The workers really ran at the same time: their entries interleave.
        interleaved = [max(ix) - min(ix) + 1 > len(ix) for ix in given]
        assert sum(interleaved) >= 2
        for worker, indexes in enumerate(given):
            logged_numbers = [
                json.loads(entries[index].entry)["data"]["target_id"] for index in indexes
            ]
            assert logged_numbers == [f"n{n}" for n in range(PER_WORKER)], worker
            assert all(
                json.loads(entries[index].entry)["data"]["actor"] == f"w{worker}"
                for index in indexes
            )
        # The tree the log serves is the RFC's tree over the entries as stored...
        assert log.tree().root() == rfc9162.mth([e.entry.encode() for e in entries])
        # ...and the whole log verifies against a checkpoint of it.
        note = log.checkpoint().note
        report = verify_log(database_records(log), [note], [signer.verifier()], origin=ORIGIN)
        assert report.ok, report.lines()
    finally:
        engine.dispose()
