"""Putting per-customer relations side by side without a join the planner can run per customer.

``a LEFT JOIN b ON b.customer_id = a.customer_id``, with ``b`` a derived table
(window functions, GROUP BY), is what made SQLite quadratic: it materialises
``b`` once but, lacking an index on it, scans all of it again for every row of
``a``. :func:`merge_per_customer` gives the same result as the chain of left
joins with one ``UNION ALL`` and one ``GROUP BY customer_id``: a sort, so
``O(n log n)`` on every backend whatever the planner estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Integer, Select, cast, func, literal, null, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery


def merge_per_customer(primary: Select[Any], others: Sequence[Select[Any]], name: str) -> Subquery:
    """One row per customer of ``primary``, with the columns of ``primary`` and every other.

    Each select has a ``customer_id`` column (at most one row per customer)
    and otherwise column names found in no other select. The result is
    ``primary LEFT JOIN other_1 ... LEFT JOIN other_n`` on ``customer_id``:
    an other's columns are NULL for a customer it has no row for, and
    customers only in an other are left out. Column values must be
    comparable scalars (``MAX`` picks the one non-NULL value; booleans go
    through an integer, as PostgreSQL has no ``MAX(boolean)``).
    """
    # Anonymous CTEs: hoisted to the statement's WITH, they keep the nesting shallow
    # (SQLite's parser overflows past about 15 levels of subqueries) and never clash.
    sources = [primary.cte()] + [other.cte() for other in others]
    slots: list[tuple[int, str, Any]] = []
    for index, source in enumerate(sources):
        for column in source.c:
            if column.key != "customer_id":
                slots.append((index, column.key, column.type))
    branches = []
    for index, source in enumerate(sources):
        values: list[ColumnElement[Any]] = [
            source.c.customer_id.label("customer_id"),
            (literal(1, Integer) if index == 0 else cast(null(), Integer)).label("in_primary"),
        ]
        for owner, key, type_ in slots:
            stored = Integer() if isinstance(type_, Boolean) else type_
            if owner == index:
                value: ColumnElement[Any] = source.c[key]
                if isinstance(type_, Boolean):
                    value = cast(value, Integer)
            else:
                value = cast(null(), stored)
            values.append(value.label(key))
        branches.append(select(*values))
    stacked = union_all(*branches).subquery()
    merged: list[ColumnElement[Any]] = [stacked.c.customer_id]
    for _, key, type_ in slots:
        top = func.max(stacked.c[key])
        merged.append((cast(top, Boolean) if isinstance(type_, Boolean) else top).label(key))
    return (
        select(*merged)
        .group_by(stacked.c.customer_id)
        .having(func.max(stacked.c.in_primary) == 1)
        .subquery(name)
    )
