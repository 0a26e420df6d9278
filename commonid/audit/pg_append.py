"""The audit append on PostgreSQL in one statement: take the indexes and write the entries.

The portable append (commonid.audit.log) is two round trips inside the
caller's transaction: ``UPDATE audit_head ... RETURNING size``, then the
INSERT of the entries, whose canonical JSON holds the index it just got. On
PostgreSQL a data-modifying CTE does both in one statement: Python renders
each entry around the two values only the lock holder knows (its index and
its time), and the statement splices them in and hashes the leaf with
``sha256()``. The stored bytes are the ones :func:`commonid.audit.log.entry_bytes`
gives for the same index, time, type and data (tests/audit/test_pg_append.py
holds them to that), so verification and proofs see no difference.

With the system clock the time is the database server's ``clock_timestamp()``,
read under the row lock: one clock for every service instance, so times follow
index order across instances, not only on one host. A test clock's time is
passed in instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import rfc8785
import sqlalchemy as sa

from commonid.audit.models import HEAD_ROW_ID

# The entry is {"data":...,"index":I,"time":"T","type":"X"}: RFC 8785 sorts the keys,
# and "data" < "index" < "time" < "type", so index and time sit between fixed parts.
# The leaf hash is RFC 9162's: SHA-256 over 0x00 and the entry (commonid.audit.merkle).
APPEND = sa.text(
    """
    WITH head AS (
        UPDATE audit_head SET size = size + CAST(:count AS bigint) WHERE id = :head
        RETURNING size - CAST(:count AS bigint) AS first,
                  COALESCE(CAST(:now AS timestamptz), clock_timestamp()) AS at
    ), stamped AS (
        SELECT head.first + event.ord - 1 AS idx, head.at AS logged_at, event.event_type,
               event.prefix, event.type_json
        FROM head,
             unnest(CAST(:event_types AS text[]), CAST(:prefixes AS text[]),
                    CAST(:type_jsons AS text[]))
               WITH ORDINALITY AS event(event_type, prefix, type_json, ord)
    )
    INSERT INTO audit_entries (idx, logged_at, event_type, entry, leaf_hash)
    SELECT idx, logged_at, event_type, rendered.entry,
           sha256('\\x00'::bytea || convert_to(rendered.entry, 'UTF8'))
    FROM stamped, LATERAL (
        SELECT prefix || idx::text || ',"time":"'
               || to_char(logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
               || '","type":' || type_json || '}' AS entry
    ) AS rendered
    RETURNING idx
    """
)


def entry_prefix(data: dict[str, Any]) -> str:
    """The entry up to its index: ``{"data":{...},"index":``."""
    return rfc8785.dumps({"data": data}).decode()[:-1] + ',"index":'


def append_rows(
    connection: sa.Connection,
    events: Sequence[tuple[str, dict[str, Any]]],
    now: datetime | None,
) -> list[int]:
    """Append ``events`` (already checked) in one statement; their indexes, in order.

    ``now`` None takes the database's clock under the lock.
    """
    indexes = connection.execute(
        APPEND,
        {
            "head": HEAD_ROW_ID,
            "count": len(events),
            "now": now,
            "event_types": [event_type for event_type, _ in events],
            "prefixes": [entry_prefix(data) for _, data in events],
            "type_jsons": [rfc8785.dumps(event_type).decode() for event_type, _ in events],
        },
    ).scalars()
    return sorted(indexes)
