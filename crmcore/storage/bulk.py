"""Fast multi-row inserts for the bulk paths.

SQLAlchemy's executemany builds and processes a parameter dict per row,
which dominates the cost of large batches. ``insert_rows`` applies each
column's bind processor once per value into tuples and hands them to the
driver directly: ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on
PostgreSQL. Rows must carry a value (or ``None``) for every column they set;
columns absent from the first row are left to their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError


def _processors(connection: Connection, table: Table, names: Sequence[str]) -> list[Any]:
    dialect = connection.dialect
    return [table.c[name].type._cached_bind_processor(dialect) for name in names]


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` inside the open transaction."""
    if not rows:
        return
    names = list(rows[0].keys())
    processors = _processors(connection, table, names)
    if connection.dialect.name not in ("sqlite", "postgresql"):
        connection.execute(insert(table), list(rows))
        return
    pairs: list[tuple[str, Callable[[Any], Any] | None]] = list(zip(names, processors, strict=True))
    values = [
        tuple(row[n] if p is None or row[n] is None else p(row[n]) for n, p in pairs)
        for row in rows
    ]
    driver = connection.connection.driver_connection
    assert driver is not None
    quoted = ", ".join(f'"{n}"' for n in names)
    dbapi_error = connection.dialect.loaded_dbapi.Error
    if connection.dialect.name == "postgresql":
        statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for value in values:
                    copy.write_row(value)
        except dbapi_error as exc:
            # Raise what SQLAlchemy would have (IntegrityError, OperationalError ...).
            raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc
        return
    statement = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(names))})'
    cursor = driver.cursor()
    try:
        cursor.executemany(statement, values)
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc
    finally:
        cursor.close()
