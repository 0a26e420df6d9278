"""Code run in separate processes by the concurrency tests (importable for 'spawn')."""

from __future__ import annotations

import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from commonid.audit.log import AuditLog
from commonid.store.database import create_engine, session_factory


def append_events(
    database_url: str, worker: int, count: int, start: Barrier, results: Queue
) -> None:
    """Append ``count`` events as one service process would: one transaction each,
    every fifth as a small batch. Puts (worker, indexes the log gave) on ``results``."""
    engine = create_engine(database_url, pool_size=2)
    log = AuditLog(session_factory(engine), checkpoint_interval=None)
    log.size()  # connect before the start line, so all workers really start together
    indexes: list[int] = []
    start.wait(timeout=60)
    try:
        number = 0
        while number < count:
            if number % 5 == 4 and number + 2 <= count:
                batch = [
                    (
                        "admin.action",
                        {"action": "bulk", "actor": f"w{worker}", "target_id": f"n{n}"},
                    )
                    for n in (number, number + 1)
                ]
                indexes += log.append_many(batch)
                number += 2
            else:
                indexes.append(
                    log.append(
                        "admin.action", action="one", actor=f"w{worker}", target_id=f"n{number}"
                    )
                )
                number += 1
            # A service process does other work between two appends. Without this
            # pause, SQLite's busy handler (sleep, then retry) lets one process take
            # the write lock for all its appends while the others sleep, and the
            # workers would not interleave at all.
            time.sleep(0.002)
    finally:
        engine.dispose()
    results.put((worker, indexes))
