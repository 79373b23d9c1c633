"""Listings of any length, fetched and printed page by page (tables or streamed JSON).

``--limit`` may exceed the services' page size (:data:`~crmcore.model.pagination.MAX_PAGE_SIZE`):
the command fetches successive pages and prints each as it arrives, so memory
holds one page whatever the limit, with ``--json`` as with tables.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import click

from crmcore.cli.context import print_table
from crmcore.cli.output import safe_json
from crmcore.errors import ValidationError
from crmcore.model.pagination import MAX_PAGE_SIZE, Page

T = TypeVar("T")


def iter_pages(fetch: Callable[[int, int], Page[T]], limit: int, offset: int) -> Iterator[Page[T]]:
    """Pages from ``fetch(limit, offset)`` covering ``limit`` items from ``offset``.

    Always yields at least one page (possibly empty), so its ``total`` is known.
    """
    if limit < 1:
        raise ValidationError(f"--limit: must be at least 1, got {limit}", field="--limit")
    if offset < 0:
        raise ValidationError(f"--offset: must not be negative, got {offset}", field="--offset")
    remaining, at = limit, offset
    while True:
        page = fetch(min(remaining, MAX_PAGE_SIZE), at)
        yield page
        remaining -= len(page.items)
        at = page.next_offset  # past unreadable rows the page skipped too
        if remaining <= 0 or not (page.items or page.skipped) or not page.has_more:
            return


def print_listing(
    pages: Iterator[Page[T]],
    *,
    as_json: bool,
    limit: int,
    offset: int,
    row: Callable[[T], Mapping[str, Any]],
    columns: Sequence[str],
    title: str,
    caption: Callable[[int, int], str] | None = None,
    table_row: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Print the pages' items as tables (one per page) or as one JSON document, streamed.

    JSON: ``{"total", "limit", "offset", "items": [...]}`` where items are
    ``row(item)``. Tables show ``table_row(row(item))`` in ``columns``, the
    last with ``caption(shown, total)`` under it.
    """
    first = next(pages)
    if as_json:
        _print_json_listing(first, pages, limit, offset, row)
        return
    page: Page[T] | None = first
    shown = 0
    heading: str | None = title
    while page is not None:
        following = next(pages, None)
        rows = [row(item) for item in page.items]
        shown += len(rows)
        print_table(
            [table_row(r) for r in rows] if table_row else rows,
            columns,
            title=heading,
            caption=caption(shown, first.total) if caption and following is None else None,
        )
        heading, page = None, following


def _print_json_listing(
    first: Page[T],
    pages: Iterator[Page[T]],
    limit: int,
    offset: int,
    row: Callable[[T], Mapping[str, Any]],
) -> None:
    head = safe_json({"total": first.total, "limit": limit, "offset": offset})
    click.echo(head[: head.rindex("}")].rstrip() + ',\n  "items": [', nl=False)
    sep = "\n"
    for page in _chain(first, pages):
        for item in page.items:
            click.echo(sep + textwrap.indent(safe_json(row(item)), "    "), nl=False)
            sep = ",\n"
    click.echo("\n  ]\n}" if sep != "\n" else "]\n}")


def _chain(first: Page[T], rest: Iterator[Page[T]]) -> Iterator[Page[T]]:
    yield first
    yield from rest


__all__ = ["iter_pages", "print_listing"]
