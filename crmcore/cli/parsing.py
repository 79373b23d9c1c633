"""Parsing of CLI option values: key=value pairs and timestamps."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from crmcore.errors import ValidationError
from crmcore.model.limits import timestamp_problem


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, Any]:
    """Turn ``key=value`` strings into a dict; values parse as JSON when they can.

    ``--attr level=3`` gives ``{"level": 3}``; ``--attr code=A7`` gives ``{"code": "A7"}``;
    quote to force a string: ``--attr code='"007"'``.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{option}: expected key=value, got {pair!r}", field=option)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        except RecursionError:
            raise ValidationError(
                f"{option}: {key.strip()}: nested too deeply", field=option
            ) from None
        result[key.strip()] = value
    return result


def parse_timestamp(value: str, option: str) -> datetime:
    """An ISO 8601 date or datetime; without an offset it is taken as UTC.

    Refused (ValidationError naming ``option``) when it is not one, or when its
    UTC instant falls outside what crmcore stores (:mod:`crmcore.model.limits`).
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"{option}: not an ISO 8601 date or datetime: {value!r}", field=option
            ) from None
        parsed = datetime(day.year, day.month, day.day)
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    problem = timestamp_problem(parsed)
    if problem:
        raise ValidationError(f"{option}: {problem}", field=option, value=value)
    return parsed


def parse_json_object(value: str | None, option: str) -> dict[str, Any] | None:
    """A JSON object given on the command line, or None."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{option}: not valid JSON: {exc.msg}", field=option) from None
    except RecursionError:
        raise ValidationError(f"{option}: nested too deeply", field=option) from None
    if not isinstance(data, dict):
        raise ValidationError(f"{option}: expected a JSON object", field=option)
    return data
