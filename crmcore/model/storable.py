"""Checks that text can be stored on every backend.

PostgreSQL refuses NUL characters in text and JSON, and no backend can encode
an unpaired UTF-16 surrogate as UTF-8. Services refuse such values with a
ValidationError naming the field, instead of failing deep in the driver.
"""

from __future__ import annotations

from typing import Any


def text_problem(value: Any, path: str) -> tuple[str, str] | None:
    """``(field path, problem)`` for the first unstorable string in ``value``, else ``None``.

    Walks strings, mapping keys and values, and sequence items.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if "\x00" in value:
            return path, "contains a NUL character"
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "contains an unpaired surrogate (not valid Unicode text)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = text_problem(key, f"{path} key") or text_problem(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = text_problem(item, f"{path}.{index}")
            if found:
                return found
    return None
