"""Export customers and interactions as CSV or JSON Lines, streamed page by page.

The CSV columns are those :mod:`crmcore.io.imports` accepts, so an export imports
again: customers have ``tags`` joined with ``;``, one ``consent.<flag>`` column
per consent flag and the custom attributes as one JSON ``attributes`` column;
interactions have ``payload`` and ``items`` as JSON. JSON Lines files hold one
:func:`crmcore.model.serialization.to_dict` object per line. Tags containing ``;``
do not survive a CSV round trip (use JSON Lines for those).

**Formula neutralisation.** A spreadsheet opening a CSV file runs a cell that
begins with ``=``, ``+``, ``-`` or ``@`` (and, in some, tab or carriage return)
as a formula: a customer called ``=HYPERLINK("https://evil.example")`` would
become a live link in the analyst's sheet. So, as OWASP recommends, CSV exports
prefix such a cell of a *text* column with a single quote ``'``, which makes
every spreadsheet show it as text. A text cell that already begins with quotes
followed by one of those characters gets one more quote, so the rule can be
undone exactly (:func:`restore_cell`, which the CSV importers apply: an export
imports again unchanged). Numeric columns (:data:`NUMERIC_COLUMNS`: ids, sizes,
amounts, durations) are written as plain numbers, so ``-5.00`` stays a number.
``raw_cells=True`` (``crm ... export --raw-cells``) writes every cell verbatim,
for programs that read the file. JSON Lines exports are exact JSON, written
with :func:`crmcore.model.serialization.json_text` (C1 and bidi controls as
``\\uXXXX`` escapes, so no line acts on a terminal).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

import attrs
from sqlalchemy import select

from crmcore.access import Action
from crmcore.errors import ValidationError
from crmcore.model.entities import Consent, Customer, Interaction
from crmcore.model.serialization import json_text, to_dict
from crmcore.storage.records import interaction_from_row
from crmcore.storage.tables import customers as customers_table
from crmcore.storage.tables import interactions as interactions_table

if TYPE_CHECKING:
    from crmcore.app import CRM

_FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
_PAGE = 1000
_CONSENT_FLAGS = tuple(f.name for f in attrs.fields(Consent))

#: Columns of a customers CSV export, in order.
CUSTOMER_CSV_COLUMNS: tuple[str, ...] = (
    "id",
    *(
        column
        for f in attrs.fields(Customer)
        if f.name != "id"
        for column in (
            [f"consent.{flag}" for flag in _CONSENT_FLAGS] if f.name == "consent" else [f.name]
        )
    ),
)
#: Columns of an interactions CSV export, in order.
INTERACTION_CSV_COLUMNS: tuple[str, ...] = (
    "id",
    *(f.name for f in attrs.fields(Interaction) if f.name != "id"),
)


def _check_format(format: str) -> str:
    found = _FORMATS.get(format.lower()) if isinstance(format, str) else None
    if found is None:
        raise ValidationError(
            f"format: {format!r} is not one of: {', '.join(_FORMATS)}", field="format", value=format
        )
    return found


def _json_text(value: Any) -> str:
    """Compact JSON for a CSV cell; empty objects and arrays become an empty cell."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


#: Characters that make a spreadsheet treat a cell as a formula when it begins with one.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Columns written as numbers, never neutralised (customers' and interactions').
NUMERIC_COLUMNS = frozenset(
    {
        "id",
        "customer_id",
        "contact_id",
        "size",
        "registered_capital",
        "amount",
        "response_seconds",
    }
)
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"^'+[=+\-@\t\r]")


def neutralise_cell(text: str) -> str:
    """``text`` as a spreadsheet will not run it: ``'`` prepended when it begins like a formula.

    Also when it begins with quotes and then a formula character, so that
    :func:`restore_cell` gives back exactly ``text``.
    """
    return "'" + text if _FORMULA.match(text) else text


def restore_cell(text: str) -> str:
    """Undo :func:`neutralise_cell`: drop one leading ``'`` before a formula character."""
    if not text.startswith("'"):  # the common case, without the regular expression
        return text
    return text[1:] if _NEUTRALISED.match(text) else text


def _csv_cells(cells: list[str], numeric: tuple[bool, ...]) -> list[str]:
    return [c if number else neutralise_cell(c) for c, number in zip(cells, numeric, strict=True)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def customer_csv_row(customer: Customer) -> list[str]:
    """One customer as cells of :data:`CUSTOMER_CSV_COLUMNS`."""
    data = to_dict(customer)
    for flag in _CONSENT_FLAGS:
        data[f"consent.{flag}"] = data["consent"][flag]
    data["tags"] = ";".join(data["tags"])
    data["attributes"] = _json_text(data["attributes"])
    return [_cell(data[column]) for column in CUSTOMER_CSV_COLUMNS]


def interaction_csv_row(interaction: Interaction) -> list[str]:
    """One interaction as cells of :data:`INTERACTION_CSV_COLUMNS`."""
    data = to_dict(interaction)
    data["payload"] = _json_text(data["payload"])
    data["items"] = _json_text(data["items"])
    return [_cell(data[column]) for column in INTERACTION_CSV_COLUMNS]


def _write(
    out: TextIO,
    entities: Iterable[Any],
    format: str,
    columns: tuple[str, ...],
    csv_row: Callable[[Any], list[str]],
    raw_cells: bool = False,
) -> int:
    count = 0
    if format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        numeric = tuple(c in NUMERIC_COLUMNS for c in columns)
        for entity in entities:
            cells = csv_row(entity)
            writer.writerow(cells if raw_cells else _csv_cells(cells, numeric))
            count += 1
        return count
    for entity in entities:
        out.write(json_text(to_dict(entity)) + "\n")
        count += 1
    return count


def export_customers(crm: CRM, out: TextIO, *, format: str = "csv", raw_cells: bool = False) -> int:
    """Write every customer, in id order, to ``out``; return how many were written.

    ``format`` is ``"csv"`` (columns :data:`CUSTOMER_CSV_COLUMNS`, importable
    with :func:`crmcore.io.imports.import_customers`) or ``"jsonl"``. Customers
    are read in pages, so memory stays flat. CSV text cells that begin like a
    formula are neutralised unless ``raw_cells`` (see the module docs). Nothing
    is written when the export is denied.
    """
    crm.access.check(Action.EXPORT)
    fmt = _check_format(format)
    customers = crm.customers.iter_all()
    return _write(out, customers, fmt, CUSTOMER_CSV_COLUMNS, customer_csv_row, raw_cells)


def _iter_interactions(crm: CRM, customer_id: int | None) -> Iterator[Interaction]:
    """Interactions in id order, read in pages keyed on the last id seen (access checked)."""
    visible = crm.access.visible_condition()
    last = 0
    while True:
        query = select(interactions_table).where(interactions_table.c.id > last)
        if visible is not None:
            query = query.where(
                interactions_table.c.customer_id.in_(select(customers_table.c.id).where(visible))
            )
        if customer_id is not None:
            query = query.where(interactions_table.c.customer_id == customer_id)
        with crm.reading() as uow:
            rows = uow.connection.execute(
                query.order_by(interactions_table.c.id).limit(_PAGE)
            ).all()
        if not rows:
            return
        for row in rows:
            yield interaction_from_row(row)
        last = rows[-1].id


def export_interactions(
    crm: CRM,
    out: TextIO,
    *,
    format: str = "csv",
    customer_id: int | None = None,
    raw_cells: bool = False,
) -> int:
    """Write interactions, in id order, to ``out``; return how many were written.

    ``customer_id`` limits the export to one customer (NotFoundError when
    there is no such customer). ``format`` is ``"csv"`` (columns
    :data:`INTERACTION_CSV_COLUMNS`, importable with
    :func:`crmcore.io.imports.import_interactions`) or ``"jsonl"``. ``raw_cells``
    as for :func:`export_customers`. Access is checked before anything is
    written: a denied export writes nothing, not even the CSV header.
    """
    crm.access.check(Action.EXPORT)
    fmt = _check_format(format)
    if customer_id is not None:
        crm.customers.get(customer_id)
    entities = _iter_interactions(crm, customer_id)
    return _write(out, entities, fmt, INTERACTION_CSV_COLUMNS, interaction_csv_row, raw_cells)


__all__ = [
    "CUSTOMER_CSV_COLUMNS",
    "FORMULA_PREFIXES",
    "INTERACTION_CSV_COLUMNS",
    "NUMERIC_COLUMNS",
    "customer_csv_row",
    "export_customers",
    "export_interactions",
    "interaction_csv_row",
    "neutralise_cell",
    "restore_cell",
]
