"""Allocating primary keys for a batch before inserting it.

Bulk paths need the new ids (hooks receive stored entities), and
``INSERT ... RETURNING`` with guaranteed row order degrades to one statement
per row on SQLite. Allocating ids first lets the insert be one executemany.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select, text


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """Reserve ``count`` new ids for ``table`` (integer primary key column ``id``).

    PostgreSQL: drawn from the column's sequence, safe under concurrency.
    SQLite: the ids following the current maximum; safe because crmcore's
    SQLite transactions begin IMMEDIATE, holding the database's write lock.
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
    return list(range(highest + 1, highest + 1 + count))
