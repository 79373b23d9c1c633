"""How the columns of an import file become row dicts: cells, JSON values, header checks."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from crmcore.errors import ValidationError, ValidationErrors
from crmcore.io.exports import restore_cell
from crmcore.model.entities import Consent, Customer, Interaction

#: Most columns a CSV header may have (a larger header is refused before any row is read).
MAX_COLUMNS = 1000

Setter = Callable[[dict[str, Any], str], None]


class Columns:
    """How each column of one CSV file goes into a row dict."""

    def __init__(self, header: Sequence[str], setters: Sequence[Setter]) -> None:
        self.header = list(header)
        self._setters = list(setters)
        self._order: list[tuple[int, str]] | None = None

    def parse(self, cells: Sequence[str]) -> dict[str, Any]:
        """Return the row dict of one record; raise ValidationError naming a bad cell's column."""
        if len(cells) > len(self.header):
            raise ValidationError(
                f"the row has {len(cells)} cells but the header has {len(self.header)} columns"
            )
        data: dict[str, Any] = {}
        errors: list[ValidationError] = []
        for name, setter, cell in zip(self.header, self._setters, cells, strict=False):
            if not cell.strip():
                continue
            try:
                setter(data, restore_cell(cell))  # undo an export's formula neutralisation
            except ValueError as exc:
                errors.append(ValidationError(f"{name}: {exc}", field=name, value=cell))
        if errors:
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
        return data

    def content_key(self, cells: Sequence[str]) -> str:
        """A key derived from the row's content: the same cells give the same key.

        The canonical text is ``name`` U+001E ``cell`` for every non-empty
        cell (blanks around it stripped) except the ignored ``id`` column, in
        the order of the column names, joined by U+001F: so column order and
        surrounding blanks do not change the key.
        """
        if self._order is None:
            self._order = [
                (i, f"{self.header[i]}\x1e")
                for i in sorted(
                    (i for i, name in enumerate(self.header) if name != "id"),
                    key=self.header.__getitem__,
                )
            ]
        width = len(cells)
        parts = [
            prefix + cell for i, prefix in self._order if i < width and (cell := cells[i].strip())
        ]
        return content_key("\x1f".join(parts))


def content_key(canonical: str) -> str:
    """The external id an import derives from a record's canonical text."""
    digest = hashlib.blake2b(canonical.encode("utf-8", "surrogateescape"), digest_size=16)
    return "content:" + digest.hexdigest()


#: Checks a CSV header (given with its ``file:line``) and plans its columns.
ColumnsFactory = Callable[[Sequence[str], str], Columns]


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value, for messages."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def json_cell(text: str, expected: type[dict[str, Any]] | type[list[Any]]) -> Any:
    """Parse a cell holding a JSON object or array; ValueError saying what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    if not isinstance(value, expected):
        wanted = "object" if expected is dict else "array"
        raise ValueError(f"expected a JSON {wanted}, got {json_type(value)}")
    return value


def object_from_json(value: Any) -> dict[str, Any]:
    """Turn a JSON Lines value into a row dict (without ``id``, which imports ignore)."""
    if not isinstance(value, dict):
        raise ValidationError(f"expected a JSON object, got {json_type(value)}")
    return {k: v for k, v in value.items() if k != "id"}


def _set_plain(name: str) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data[name] = text

    return setter


def _set_ignored(data: dict[str, Any], text: str) -> None:
    """Columns such as ``id`` that an import accepts and ignores."""


def _set_json(name: str, expected: type[dict[str, Any]] | type[list[Any]]) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data[name] = json_cell(text, expected)

    return setter


# ASCII digits only: int() and float() also take Arabic-Indic or full-width digits and "1_000".
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_BOOLEANS = {"true": True, "yes": True, "y": True, "1": True}
_BOOLEANS |= {"false": False, "no": False, "n": False, "0": False}


def _to_integer(text: str) -> int:
    if not _INTEGER.match(text.strip()):
        raise ValueError(f"expected an integer, got {text!r}")
    return int(text)


def _to_number(text: str) -> int | float:
    value = text.strip()
    if _INTEGER.match(value):
        return int(value)
    if not _NUMBER.match(value) or not math.isfinite(float(value)):
        raise ValueError(f"expected a number, got {text!r}")
    return float(value)


def _to_boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {text!r}") from None


_COERCIONS: dict[str, Callable[[str], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
}


def _attribute_coercion(schema: Mapping[str, Any] | None, key: str) -> Callable[[str], Any]:
    """How to read an ``attributes.<key>`` cell: by the type the schema declares, else as text."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    declared = properties.get(key) if isinstance(properties, Mapping) else None
    kind = declared.get("type") if isinstance(declared, Mapping) else None
    types = {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()
    if "string" not in types:
        for name in ("integer", "number", "boolean"):
            if name in types:
                return _COERCIONS[name]
    return str


_CONSENT_FLAGS = tuple(f.name for f in attrs.fields(Consent))
CUSTOMER_PLAIN = tuple(
    f.name for f in attrs.fields(Customer) if f.name not in {"id", "tags", "attributes", "consent"}
)
INTERACTION_PLAIN = (
    *(f.name for f in attrs.fields(Interaction) if f.name not in {"id", "payload", "items"}),
    "customer_email",
)


def _set_tags(data: dict[str, Any], text: str) -> None:
    data["tags"] = [tag for tag in text.split(";") if tag.strip()]


def _set_consent(flag: str) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data.setdefault("consent", {})[flag] = text

    return setter


def _set_attributes(data: dict[str, Any], text: str) -> None:
    # attributes.<key> columns win over the same key in the JSON column, whatever the order.
    data["attributes"] = {**json_cell(text, dict), **data.get("attributes", {})}


def _set_attribute(key: str, coerce: Callable[[str], Any]) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data.setdefault("attributes", {})[key] = coerce(text)

    return setter


def customer_setter(column: str, schema: Mapping[str, Any] | None) -> Setter | None:
    """How a customers file's column goes into the row dict; ``None`` for an unknown column."""
    if column in CUSTOMER_PLAIN:
        return _set_plain(column)
    fixed: dict[str, Setter] = {
        "id": _set_ignored,
        "tags": _set_tags,
        "attributes": _set_attributes,
    }
    if column in fixed:
        return fixed[column]
    prefix, _, rest = column.partition(".")
    if prefix == "consent" and rest in _CONSENT_FLAGS:
        return _set_consent(rest)
    if prefix == "attributes" and rest:
        return _set_attribute(rest, _attribute_coercion(schema, rest))
    return None


def interaction_setter(column: str) -> Setter | None:
    """How an interactions file's column goes into the row dict; ``None`` if unknown."""
    if column in INTERACTION_PLAIN:
        return _set_plain(column)
    fixed: dict[str, Setter] = {
        "id": _set_ignored,
        "payload": _set_json("payload", dict),
        "items": _set_json("items", list),
    }
    return fixed.get(column)


def build_columns(
    header: Sequence[str],
    where: str,
    setter_for: Callable[[str], Setter | None],
    known: str,
    max_columns: int = MAX_COLUMNS,
) -> Columns:
    """Check a CSV header (ValidationError at line 1 naming the column) and plan its columns."""
    if len(header) > max_columns:
        raise ValidationError(
            f"{where}: the header has {len(header)} columns; at most {max_columns} are accepted",
            field="columns",
            value=len(header),
        )
    names = [cell.strip() for cell in header]
    setters: list[Setter] = []
    seen: set[str] = set()
    for index, name in enumerate(names, start=1):
        if not name:
            raise ValidationError(f"{where}: column {index} has no name", field=f"column {index}")
        if name in seen:
            raise ValidationError(f"{where}: {name}: duplicate column", field=name)
        seen.add(name)
        setter = setter_for(name)
        if setter is None:
            raise ValidationError(f"{where}: {name}: unknown column; known: {known}", field=name)
        setters.append(setter)
    return Columns(names, setters)


def customer_columns(schema: Mapping[str, Any] | None, max_columns: int) -> ColumnsFactory:
    """The column plan of a customers file."""
    known = ", ".join([*CUSTOMER_PLAIN, "tags", "consent.<flag>", "attributes", "attributes.<key>"])

    def build(header: Sequence[str], where: str) -> Columns:
        return build_columns(
            header, where, lambda c: customer_setter(c, schema), known, max_columns
        )

    return build


def interaction_columns(id_column: str | None, max_columns: int) -> ColumnsFactory:
    """The column plan of an interactions file; ``id_column`` holds each row's external id."""
    known = ", ".join([*INTERACTION_PLAIN, "payload", "items"])

    def setter_for(column: str) -> Setter | None:
        if id_column is not None and column == id_column:
            return _set_plain("external_id")
        return interaction_setter(column)

    def build(header: Sequence[str], where: str) -> Columns:
        columns = build_columns(header, where, setter_for, known, max_columns)
        if id_column is not None and id_column not in columns.header:
            raise ValidationError(
                f"{where}: id column {id_column!r} is not in the header",
                field="id_column",
                value=id_column,
            )
        return columns

    return build
