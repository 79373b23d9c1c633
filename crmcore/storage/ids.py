"""Allocating primary keys for a batch before inserting it.

Bulk paths need the new ids (hooks receive stored entities), and
``INSERT ... RETURNING`` with guaranteed row order degrades to one statement
per row on SQLite. Allocating ids first lets the insert be one executemany.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Table, func, select, text

from crmcore.storage.tables import customer_merges

#: Ids a table must never hand out again although no row of it holds them: a merged
#: customer's id resolves through its tombstone (SQLite would reuse a deleted maximum).
RETIRED: dict[str, tuple[Column[int], ...]] = {"crm_customers": (customer_merges.c.merged_id,)}


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """Reserve ``count`` new ids for ``table`` (integer primary key column ``id``).

    PostgreSQL: drawn from the column's sequence, safe under concurrency.
    SQLite: the ids following the current maximum (and the highest
    :data:`RETIRED` id); safe because crmcore's SQLite transactions begin
    IMMEDIATE, holding the database's write lock.
    """
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        drawn = connection.execute(
            text(
                "SELECT array_agg(nextval(pg_get_serial_sequence(:table, 'id'))) "
                "FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        ).scalar_one()
        return [int(v) for v in drawn]
    highest = connection.execute(select(func.max(table.c.id))).scalar_one() or 0
    for column in RETIRED.get(table.name, ()):
        highest = max(highest, connection.execute(select(func.max(column))).scalar_one() or 0)
    return list(range(highest + 1, highest + 1 + count))
