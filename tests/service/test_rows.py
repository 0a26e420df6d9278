"""The hot path's rows (commonid.store.rows) mirror their tables exactly.

A row is built from a ``SELECT`` of every column, by position: a column added
to a model without its field (or in another order) would shift every value
after it, so the fields must be the table's columns, in the table's order.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from commonid.store.models import Kiosk, Provider, Session
from commonid.store.rows import KioskRow, ProviderRow, SessionRow


@pytest.mark.parametrize(
    ("row", "model"), [(ProviderRow, Provider), (KioskRow, Kiosk), (SessionRow, Session)]
)
def test_a_row_has_its_tables_columns_in_order(row: type, model: type) -> None:
    table = sa.inspect(model).local_table
    assert [field.name for field in dataclasses.fields(row)] == [c.key for c in table.columns]
