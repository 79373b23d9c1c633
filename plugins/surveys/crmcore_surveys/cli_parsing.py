"""Parsing for ``crm surveys ...``: option values and response import files."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmcore import ValidationError


def parse_day(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time option (UTC when it gives no zone); ``None`` stays ``None``."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: not an ISO date: {value!r}", field=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_pairs(values: tuple[str, ...], name: str) -> dict[str, str]:
    """Repeated ``FIELD=VALUE`` options as a dict (stripped); ValidationError naming ``name``."""
    result = {}
    for value in values:
        if "=" not in value:
            raise ValidationError(f"{name}: expected FIELD=VALUE, got {value!r}", field=name)
        key, _, text = value.partition("=")
        result[key.strip()] = text.strip()
    return result


def read_response_file(path: Path) -> Iterator[dict[str, Any]]:
    """Stream responses from a CSV (one column per question), JSON Lines or JSON array file.

    CSV columns ``token``, ``survey``, ``version``, ``customer_id``, ``answered_at``,
    ``channel`` and ``comment`` describe the response; every other column is a question
    id (multiple choices separated by ``|``; empty cells are unanswered).
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        meta = {"token", "survey", "version", "customer_id", "answered_at", "channel", "comment"}
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                item: dict[str, Any] = {k: (v or None) for k, v in row.items() if k in meta}
                item["answers"] = {k: v for k, v in row.items() if k not in meta and v}
                yield item
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValidationError(f"line {number}: invalid JSON: {exc}") from None
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValidationError("file: a .json import holds an array of responses")
        yield from data
    else:
        raise ValidationError(f"file: {path.name}: expected .csv, .jsonl or .json", field="file")


def read_json_file(path: Path, field: str) -> Any:
    """The JSON document in ``path``; one-line ValidationError when it is not one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field}: cannot read {path}: {exc}", field=field) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field}: {path} is not JSON: {exc}", field=field) from None
    except RecursionError:
        raise ValidationError(f"{field}: {path} is nested too deeply", field=field) from None
