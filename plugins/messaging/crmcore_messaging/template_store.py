"""Stored templates: the :class:`Template` value, reading rows, and the locale fallback.

A template is one row of ``messaging_templates`` per (name, locale, version);
the *current* template of a (name, locale) is its highest version. Which
locale a message uses is :func:`locale_chain` then :func:`pick_locale`
(documented in docs/plugins/messaging.md, "Templates").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import Connection, MetaData, Row, func, select

from crmcore.errors import NotFoundError
from crmcore_messaging.tables import templates_table

#: The locale tried after the requested one and ``default_locale``.
FALLBACK_LOCALE = "en"


@frozen
class Template:
    """One stored version of a template (``text``/``html`` are the Jinja2 sources)."""

    id: int
    name: str
    locale: str
    version: int
    purpose: str
    channel: str | None
    subject: str | None
    text: str
    html: str | None
    created_at: datetime
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``created_at`` as ISO text)."""
        return {
            "id": self.id,
            "name": self.name,
            "locale": self.locale,
            "version": self.version,
            "purpose": self.purpose,
            "channel": self.channel,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def template_from_row(row: Row[Any]) -> Template:
    """The :class:`Template` of a ``messaging_templates`` row."""
    return Template(
        id=row.id,
        name=row.name,
        locale=row.locale,
        version=row.version,
        purpose=row.purpose,
        channel=row.channel,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def locale_chain(requested: str | None, default_locale: str) -> list[str]:
    """The locales to try in order: requested, ``default_locale``, ``"en"`` (duplicates once)."""
    chain = [requested, default_locale, FALLBACK_LOCALE]
    return list(dict.fromkeys(c for c in chain if c))


def pick_locale(chain: Sequence[str], stored: Iterable[str]) -> str | None:
    """The first locale of ``chain`` that is stored, else the first stored one in sorted order."""
    present = sorted(set(stored))
    for locale in chain:
        if locale in present:
            return locale
    return present[0] if present else None


def stored_locales(connection: Connection, metadata: MetaData, name: str) -> list[str]:
    """The locales template ``name`` exists in (sorted)."""
    table = templates_table(metadata)
    query = select(table.c.locale).where(table.c.name == name).distinct()
    return sorted(connection.execute(query).scalars())


def latest_version(connection: Connection, metadata: MetaData, name: str, locale: str) -> int:
    """The highest stored version of (name, locale); 0 when there is none."""
    table = templates_table(metadata)
    query = select(func.max(table.c.version)).where(table.c.name == name, table.c.locale == locale)
    return int(connection.execute(query).scalar() or 0)


def load_version(
    connection: Connection, metadata: MetaData, name: str, locale: str, version: int | None
) -> Template | None:
    """(name, locale) at ``version`` (``None``: the current one), or ``None`` when not stored."""
    table = templates_table(metadata)
    query = select(table).where(table.c.name == name, table.c.locale == locale)
    if version is None:
        query = query.order_by(table.c.version.desc()).limit(1)
    else:
        query = query.where(table.c.version == version)
    row = connection.execute(query).first()
    return None if row is None else template_from_row(row)


def resolve(
    connection: Connection, metadata: MetaData, name: str, chain: Sequence[str]
) -> Template:
    """The current template ``name`` in the first available locale of ``chain`` (else any).

    NotFoundError when no template has this name.
    """
    locale = pick_locale(chain, stored_locales(connection, metadata, name))
    found = None if locale is None else load_version(connection, metadata, name, locale, None)
    if found is None:
        raise NotFoundError(f"template: no template named {name!r}")
    return found


def current_templates(
    connection: Connection,
    metadata: MetaData,
    *,
    name: str | None = None,
    locale: str | None = None,
    all_versions: bool = False,
) -> list[Template]:
    """Stored templates by name, locale and version: the current ones unless ``all_versions``."""
    table = templates_table(metadata)
    query = select(table)
    if name is not None:
        query = query.where(table.c.name == name)
    if locale is not None:
        query = query.where(table.c.locale == locale)
    if not all_versions:
        latest = (
            select(
                table.c.name.label("n"),
                table.c.locale.label("l"),
                func.max(table.c.version).label("v"),
            )
            .group_by(table.c.name, table.c.locale)
            .subquery()
        )
        query = query.join(
            latest,
            (table.c.name == latest.c.n)
            & (table.c.locale == latest.c.l)
            & (table.c.version == latest.c.v),
        )
    query = query.order_by(table.c.name, table.c.locale, table.c.version)
    return [template_from_row(r) for r in connection.execute(query)]


__all__ = [
    "FALLBACK_LOCALE",
    "Template",
    "current_templates",
    "latest_version",
    "load_version",
    "locale_chain",
    "pick_locale",
    "resolve",
    "stored_locales",
    "template_from_row",
]
