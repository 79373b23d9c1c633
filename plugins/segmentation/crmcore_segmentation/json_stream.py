"""JSON written as it is produced: arrays (and an object's last array) from iterators.

The text is the same as ``print_json`` of the whole document (core's
:func:`~crmcore.cli.output.safe_json`: indented, exact and terminal-safe), but
each item is encoded and written when the iterator yields it, so a listing of
any length prints in constant memory.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

import click

from crmcore.cli.output import safe_json


def _dumps(data: Any) -> str:
    return safe_json(data, indent=2)


def _write_items(items: Iterable[Any], indent: str) -> int:
    """Write ``[ item, ... ]`` (without a final newline); return the number of items."""
    count = 0
    for item in items:
        click.echo(
            ("[\n" if count == 0 else ",\n") + textwrap.indent(_dumps(item), indent), nl=False
        )
        count += 1
    click.echo("[]" if count == 0 else "\n" + indent[:-2] + "]", nl=False)
    return count


def echo_json_array(items: Iterable[Any]) -> int:
    """Print ``items`` as one indented JSON array, item by item; return how many."""
    count = _write_items(items, "  ")
    click.echo()
    return count


def echo_json_object(head: Mapping[str, Any], key: str, items: Iterable[Any]) -> int:
    """Print ``{**head, key: [items...]}`` as indented JSON, the items streamed; return how many.

    ``head`` is written first (its values are computed before the items).
    """
    text = _dumps({**head, key: []})
    click.echo(text[: text.rindex("[]")], nl=False)
    count = _write_items(items, "    ")
    click.echo("\n}")
    return count
