"""Conversion between entities and JSON-safe dicts (cattrs).

``to_dict`` produces only JSON types: Decimals become strings (exact), dates
and datetimes become ISO 8601 strings, enums become their values, tuples
become lists. ``from_dict`` reverses it and refuses naive datetimes, so every
timestamp in crmcore carries its time zone.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from crmcore.errors import ValidationError, ValidationErrors
from crmcore.model.entities import enum_member

T = TypeVar("T")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _ascii_number(value: Any, what: str) -> str:
    """``value`` as stripped text, refused unless written with ASCII characters only.

    ``Decimal``, ``int`` and ``float`` also accept Arabic-Indic or full-width
    digits and ``_`` digit separators ("1_000"); crmcore does not, so a number
    means the same to every reader of the file it came from.
    """
    text = str(value).strip()
    if isinstance(value, str) and (not text.isascii() or "_" in text):
        raise ValueError(f"not {what} (ASCII digits only, no separators): {value!r}")
    return text


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, float | bool):
        raise ValueError(f"expected a decimal string or integer, got {type(value).__name__}")
    text = _ascii_number(value, "a decimal number")
    try:
        result = Decimal(text)
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
    if isinstance(value, str):
        text = _ascii_number(value, "an integer")
        if not _INTEGER.match(text):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(text)
    return int(value)


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str):
        return float(_ascii_number(value, "a number"))
    return float(value)


def _json_leaf(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def json_copy(value: Any) -> Any:
    """A JSON-safe deep copy of a JSON document (attributes, payload), without recursion.

    Objects and arrays are copied (tuples become lists); Decimals, dates and
    enums become strings, as in :func:`to_dict`. Any depth works, so a document
    stored before the nesting limit existed still reads back.
    """
    if not isinstance(value, dict | list | tuple):
        return _json_leaf(value)
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, dict | list | tuple):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy))
            else:
                copy = _json_leaf(item)
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


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
    # JSON documents: copied without recursion (cattrs would recurse once per level).
    conv.register_unstructure_hook_func(lambda t: t == dict[str, Any], json_copy)
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


# Characters json.dumps(ensure_ascii=False) writes raw although a terminal acts on them:
# DEL, the C1 controls, bidi embeddings/overrides/isolates, line and paragraph separators.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(data: Any, *, indent: int | None = None) -> str:
    """``data`` as JSON text that is exact and safe to show on a terminal.

    Non-ASCII text stays readable (``ensure_ascii=False``); JSON itself
    escapes the C0 controls, and DEL, the C1 controls, the bidi controls and
    U+2028/U+2029 are written as ``\\uXXXX`` escapes too, so parsing the text
    gives ``data`` back unchanged. Decimals and dates become strings.
    """
    text = json.dumps(data, indent=indent, default=str, ensure_ascii=False)
    if text.isascii():
        return text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
