"""Fast multi-row inserts for the bulk paths.

SQLAlchemy's executemany builds and processes a parameter dict per row,
which dominates the cost of large batches. ``insert_rows`` converts the batch
column by column, applying each column's bind processor once per *distinct*
value (a batch shares its timestamps, stages, kinds and currencies), and
hands the rows to the driver directly: ``executemany`` on SQLite, ``COPY ...
FROM STDIN`` on PostgreSQL. Rows must carry a value (or ``None``) for every
column they set; columns absent from the first row are left to their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError


def _processors(connection: Connection, table: Table, names: Sequence[str]) -> list[Any]:
    dialect = connection.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]


def _column(
    rows: Sequence[Mapping[str, Any]], name: str, processor: Callable[[Any], Any] | None
) -> list[Any]:
    """The bound values of one column, each distinct value processed once."""
    values = [row[name] for row in rows]
    if processor is None:
        return values
    try:
        distinct = set(values)
    except TypeError:  # unhashable (JSON documents): process each, sharing empty ones
        empty: dict[type, Any] = {}
        result: list[Any] = []
        for value in values:
            if value is None:
                result.append(None)
            elif not value and type(value) in (dict, list):
                if type(value) not in empty:
                    empty[type(value)] = processor(value)
                result.append(empty[type(value)])
            else:
                result.append(processor(value))
        return result
    converted = {v: None if v is None else processor(v) for v in distinct}
    return [converted[v] for v in values]


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` inside the open transaction."""
    if not rows:
        return
    names = list(rows[0].keys())
    if connection.dialect.name not in ("sqlite", "postgresql"):
        connection.execute(insert(table), list(rows))
        return
    processors = _processors(connection, table, names)
    columns = [_column(rows, n, p) for n, p in zip(names, processors, strict=True)]
    values = list(zip(*columns, strict=True))
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
