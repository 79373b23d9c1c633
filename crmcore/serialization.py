"""Conversion between entities and JSON-safe dicts (cattrs).

``to_dict`` produces only JSON types: Decimals become strings (exact), dates
and datetimes become ISO 8601 strings, enums become their values, tuples
become lists. ``from_dict`` reverses it and refuses naive datetimes, so every
timestamp in crmcore carries its time zone.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from crmcore.entities import enum_member
from crmcore.errors import ValidationError, ValidationErrors

T = TypeVar("T")


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, float | bool):
        raise ValueError(f"expected a decimal string or integer, got {type(value).__name__}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return result


def _structure_datetime(value: Any, _: type) -> datetime:
    result = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if result.tzinfo is None or result.utcoffset() is None:
        raise ValueError(f"datetime must carry a time zone: {value!r}")
    return result


def _structure_date(value: Any, _: type) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"expected a date, got a datetime: {value!r}")
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "0", "n", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _structure_enum(value: Any, cls: type[enum.StrEnum]) -> enum.StrEnum:
    return enum_member(cls, value)


def make_converter() -> cattrs.Converter:
    """Build the converter crmcore uses; plugins may build on it for their own entities."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, _structure_date)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    # StrEnum subclasses str: without this the str hook above would take them.
    conv.register_structure_hook(enum.StrEnum, _structure_enum)
    conv.register_unstructure_hook(enum.StrEnum, lambda member: member.value)
    conv.register_unstructure_hook_func(
        lambda t: getattr(t, "__origin__", None) is tuple,
        lambda value: [converter.unstructure(v) for v in value],
    )
    return conv


converter = make_converter()


def to_dict(entity: Any) -> dict[str, Any]:
    """Turn an entity into a JSON-safe dict."""
    result: dict[str, Any] = converter.unstructure(entity)
    return result


def _flatten(exc: BaseException, path: str) -> list[ValidationError]:
    """Turn a cattrs exception tree into ValidationErrors with dotted field names."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [
            ValidationError(f"{path + '.' if path else ''}{key}: unknown field", field=key)
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        found: list[ValidationError] = []
        for sub in exc.exceptions:
            note = next(
                (
                    n
                    for n in getattr(sub, "__notes__", [])
                    if hasattr(n, "name") or hasattr(n, "index")
                ),
                None,
            )
            name = getattr(note, "name", None)
            if name is None and note is not None:
                name = str(getattr(note, "index", ""))
            child = f"{path}.{name}" if path and name else (name or path)
            found.extend(_flatten(sub, child))
        return found
    if isinstance(exc, KeyError):
        return [ValidationError(f"{path}: required field is missing", field=path)]
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError | TypeError) and "is not a valid" in message:
        message = message.replace("ValueError: ", "")
    return [ValidationError(f"{path}: {message}", field=path)]


def from_dict(data: Any, cls: type[T]) -> T:
    """Build an entity of type ``cls`` from a dict; raise ValidationError naming each bad field."""
    if not isinstance(data, dict):
        raise ValidationError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        errors = _flatten(exc, "")
        raise (errors[0] if len(errors) == 1 else ValidationErrors(errors)) from None
