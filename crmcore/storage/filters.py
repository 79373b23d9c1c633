"""``column IN (many values)`` as one bound parameter.

SQLAlchemy's expanding ``IN`` renders one placeholder per value, so every
batch compiles (and PostgreSQL's driver parses) a new statement text. The
bulk paths look up hundreds of ids or keys per batch; :func:`among` binds the
whole list as a single parameter instead: a JSON array read with
``json_each`` on SQLite, an array compared with ``= ANY`` on PostgreSQL. The
statement text is the same for every batch, so it is compiled once.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def among(
    connection: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (ints or strings), bound as one parameter."""
    wanted = list(values)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, wanted, type_=ARRAY(column.type)))
    if dialect == "sqlite":
        each = func.json_each(bindparam(None, json.dumps(wanted), type_=String)).table_valued(
            "value"
        )
        return column.in_(select(each.c.value).scalar_subquery())
    return column.in_(wanted)
