"""Limits on stored values that hold on every backend, checked before the database sees them.

* **JSON documents** (customer ``attributes``, interaction ``payload`` and
  ``items``): at most :attr:`JsonLimits.max_depth` levels of nesting and
  :attr:`JsonLimits.max_bytes` bytes, configurable in ``crm.toml``
  (``[limits] json_max_depth``, ``json_max_bytes``). A document's depth counts its
  objects and arrays from the outside in: ``{}`` has depth 1, ``{"a": [1]}``
  depth 2, a scalar depth 0. Its size is the length in bytes of its compact
  UTF-8 JSON text (``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``).
* **Integers** fit the column they go to: 32-bit (:data:`INT32_MIN` ..
  :data:`INT32_MAX`) or 64-bit (:data:`INT64_MIN` .. :data:`INT64_MAX`).
* **Timestamps** are instants Python can represent in UTC, from
  :data:`TIMESTAMP_MIN` to :data:`TIMESTAMP_MAX` (both SQLite and PostgreSQL
  store those); dates are any :class:`~datetime.date`, 0001-01-01 to 9999-12-31.

Every check walks values iteratively, so input nested far deeper than Python's
recursion limit is refused with a message rather than a RecursionError.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: The earliest and latest timestamps crmcore stores (any UTC offset is converted to UTC first).
TIMESTAMP_MIN = datetime.min.replace(tzinfo=UTC)
TIMESTAMP_MAX = datetime.max.replace(tzinfo=UTC)

_RANGE = "0001-01-01T00:00:00 to 9999-12-31T23:59:59.999999"

#: Default of ``[limits] json_max_depth``.
DEFAULT_JSON_MAX_DEPTH = 32
#: Default of ``[limits] json_max_bytes`` (64 KiB).
DEFAULT_JSON_MAX_BYTES = 65536


@frozen
class JsonLimits:
    """How deep and how large one JSON document (attributes, payload, items) may be."""

    max_depth: int = DEFAULT_JSON_MAX_DEPTH
    max_bytes: int = DEFAULT_JSON_MAX_BYTES


def _size_bound(value: Any) -> int:
    """An upper bound on the bytes ``value`` (a scalar) takes in JSON text."""
    if isinstance(value, str):
        return 6 * len(value) + 2  # "\u001f" is the longest a character becomes
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    return 32


def json_problem(value: Any, limits: JsonLimits) -> str | None:
    """Why ``value`` exceeds ``limits``, or ``None`` when it does not.

    Depth is measured without recursion; the exact size is computed only when
    a cheap upper bound exceeds the limit, so small documents cost one walk.
    """
    if not value or not isinstance(value, dict | list | tuple):
        return None  # empty documents are the common case on the bulk paths
    depth_limit, bound = limits.max_depth, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > depth_limit:
            return f"nested more than {depth_limit} levels deep"
        if isinstance(node, dict):
            bound += 2 + 2 * len(node)
            for key, item in node.items():
                bound += _size_bound(key)
                if isinstance(item, dict | list | tuple):
                    stack.append((item, depth + 1))
                else:
                    bound += _size_bound(item)
        else:
            bound += 2 + len(node)
            for item in node:
                if isinstance(item, dict | list | tuple):
                    stack.append((item, depth + 1))
                else:
                    bound += _size_bound(item)
    if bound <= limits.max_bytes:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        return f"not storable as JSON: {exc}"
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        return f"{size} bytes of JSON, more than the limit of {limits.max_bytes}"
    return None


def int_problem(value: Any, low: int, high: int) -> str | None:
    """Why the integer ``value`` does not fit ``[low, high]``, or ``None``."""
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        shown = (
            str(value) if value.bit_length() < 128 else f"an integer of {len(str(value))} digits"
        )
        return f"{shown} is out of range ({low} to {high})"
    return None


def timestamp_problem(value: Any) -> str | None:
    """Why the aware datetime ``value`` cannot be stored (its UTC instant overflows), or None."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"{value.isoformat()} is out of range ({_RANGE} UTC)"
    return None


__all__ = [
    "DEFAULT_JSON_MAX_BYTES",
    "DEFAULT_JSON_MAX_DEPTH",
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "JsonLimits",
    "int_problem",
    "json_problem",
    "timestamp_problem",
]
