"""Custom attributes in SQL: one key of the ``attributes`` JSON document, safely.

SQLite addresses a JSON member by a path (``$."key"``) in which a double
quote cannot be escaped: a key containing ``"`` would change the path and
read another member (``a"."b`` reads ``{"a": {"b": ...}}``). Such keys are
refused, on every backend alike, when customers are written and when a
filter names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement

from crmcore.errors import ValidationError


def attribute_key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a custom attribute, or ``None`` when it can."""
    if not isinstance(key, str) or not key:
        return f"an attribute key must be a non-empty string, got {key!r}"
    if '"' in key:
        return f"attribute key {key!r} contains a double quote (not allowed in attribute keys)"
    return None


def attribute_keys_problem(attributes: Mapping[Any, Any]) -> str | None:
    """The problem of the first bad key of an attributes document, or ``None`` (fast path)."""
    try:
        joined = "\x00".join(attributes)
    except TypeError:  # a key that is not a string
        joined = '"'
    if '"' not in joined and "" not in attributes:
        return None
    return next((p for p in map(attribute_key_problem, attributes) if p is not None), None)


def attribute(column: ColumnElement[Any], key: str) -> ColumnElement[Any]:
    """``column[key]`` for a filter; ValidationError (field ``attributes.<key>``) for a bad key."""
    problem = attribute_key_problem(key)
    if problem is not None:
        raise ValidationError(f"attributes.{key}: {problem}", field=f"attributes.{key}", value=key)
    return column[key]


__all__ = ["attribute", "attribute_key_problem", "attribute_keys_problem"]
