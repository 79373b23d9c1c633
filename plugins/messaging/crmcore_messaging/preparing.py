"""How :mod:`crmcore_messaging.queue` turns requests into rows: check, decide, render, store.

A batch of requests costs a fixed number of queries, not a number per
message: the stored dedupe keys, the customers (with their tags), their
erasures and one count per frequency cap, then one multi-row ``INSERT ...
ON CONFLICT (dedupe_key) DO NOTHING RETURNING``. Only rendering a template
is per message. Nothing here checks access: the service functions of
:mod:`crmcore_messaging.queue` do.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crmcore import Customer, UnitOfWork, checks
from crmcore.checks import bad, choice
from crmcore.errors import NotFoundError, ValidationError
from crmcore.storage.records import customer_from_row, merged_into
from crmcore.storage.tables import customer_tags, customers
from crmcore_messaging import rules
from crmcore_messaging.channels.registry import channel_of
from crmcore_messaging.settings import CUSTOMER_PURPOSES, Settings
from crmcore_messaging.tables import messages_table

if TYPE_CHECKING:
    from crmcore_messaging.rendering import Rendered

#: Ids or keys per ``IN (...)`` list.
CHUNK = 500
#: Longest subject and body accepted (characters).
SUBJECT_LIMIT = 998
TEXT_LIMIT = 100_000
#: What a request to a customer may hold (the keyword arguments of ``enqueue``).
FIELDS = (
    "customer_id",
    "template",
    "subject",
    "text",
    "html",
    "channel",
    "purpose",
    "locale",
    "variables",
    "ref_type",
    "ref_id",
    "dedupe_key",
    "not_before",
)
#: Every column a new message row is given (a multi-row insert needs the same keys in each).
ROW_KEYS = (
    "token",
    "customer_id",
    "staff_user",
    "recipient",
    "channel",
    "purpose",
    "template",
    "template_version",
    "locale",
    "timezone",
    "subject",
    "body_text",
    "body_html",
    "ref_type",
    "ref_id",
    "dedupe_key",
    "state",
    "reason",
    "not_before",
)


def optional_text(field: str, value: Any, limit: int) -> str | None:
    """``value`` as given (whitespace kept), at most ``limit`` characters, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        bad(field, f"expected text, got {type(value).__name__}", value)
    if len(value) > limit:
        bad(field, f"is longer than {limit} characters", value)
    return value


def required_text(field: str, value: Any, limit: int) -> str:
    """Stripped, non-empty text of at most ``limit`` characters."""
    found = checks.text(field, value, limit, required=True)
    assert found is not None
    return found


def references(ref_type: Any, ref_id: Any, dedupe_key: Any) -> tuple[str | None, ...]:
    """``ref_type`` (≤ 60), ``ref_id`` (≤ 100, as text) and ``dedupe_key`` (≤ 200), checked."""
    return (
        checks.text("ref_type", ref_type, 60),
        None if ref_id is None else checks.text("ref_id", str(ref_id), 100),
        checks.text("dedupe_key", dedupe_key, 200),
    )


class Batch:
    """Requests being turned into rows inside one unit of work (``ctx``), with ``settings``."""

    def __init__(self, ctx: UnitOfWork, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings

    def check(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """One request to a customer, checked and completed (ValidationError naming the field)."""
        ctx, settings = self.ctx, self.settings
        unknown = sorted(set(given) - set(FIELDS))
        if unknown:
            bad(unknown[0], "is not a field of a message", given[unknown[0]])
        request = {name: given.get(name) for name in FIELDS}
        request["customer_id"] = checks.identifier("customer_id", request["customer_id"])
        purpose = choice("purpose", request["purpose"] or "marketing", CUSTOMER_PURPOSES)
        channel = request["channel"]
        name = settings.default_channel(purpose) if channel is None else channel
        request.update(purpose=purpose, channel=name, config=settings.channel(name))
        request["kind"] = channel_of(ctx.crm, name).address
        if (request["template"] is None) == (request["text"] is None):
            raise ValidationError("message: give either template or text", field="template")
        body = optional_text("text", request["text"], TEXT_LIMIT)
        if body is not None and not body.strip():
            bad("text", "must not be empty", body)
        request["subject"] = optional_text("subject", request["subject"], SUBJECT_LIMIT)
        request["html"] = optional_text("html", request["html"], TEXT_LIMIT)
        if request["template"] is not None:
            checks.text("template", request["template"], 100, required=True)
        request["locale"] = checks.text("locale", request["locale"], 20)
        variables = request["variables"]
        if variables is not None and not isinstance(variables, Mapping):
            bad("variables", f"expected a mapping, got {type(variables).__name__}", variables)
        refs = references(request["ref_type"], request["ref_id"], request["dedupe_key"])
        request["ref_type"], request["ref_id"], request["dedupe_key"] = refs
        start = request["not_before"]
        if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
            bad("not_before", f"expected a timezone-aware timestamp, got {start!r}", start)
        request["not_before"] = ctx.now if start is None else max(start, ctx.now)
        return request

    def stored_keys(self, keys: Iterable[str | None]) -> dict[str, int]:
        """The ids of the stored messages holding these dedupe keys."""
        wanted = sorted({k for k in keys if k is not None})
        table = messages_table(self.ctx.crm.metadata)
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            rows = self.ctx.connection.execute(
                select(table.c.dedupe_key, table.c.id).where(
                    table.c.dedupe_key.in_(wanted[start : start + CHUNK])
                )
            )
            found.update({str(key): int(i) for key, i in rows})
        return found

    def customers(self, ids: Iterable[int]) -> dict[int, Customer]:
        """The customers by the id asked for (a merged id: the kept customer); NotFoundError."""
        wanted = sorted(set(ids))
        connection, cipher = self.ctx.connection, self.ctx.crm.cipher
        rows = {int(r.id): r for r in _customer_rows(connection, wanted)}
        kept = {i: merged_into(connection, i) for i in wanted if i not in rows}
        missing = [i for i, k in kept.items() if k is None]
        if missing:
            raise NotFoundError(f"customer {missing[0]} does not exist")
        more = sorted({k for k in kept.values() if k is not None} - set(rows))
        rows.update({int(r.id): r for r in _customer_rows(connection, more)})
        tags: dict[int, list[str]] = {}
        query = (
            select(customer_tags.c.customer_id, customer_tags.c.tag)
            .where(customer_tags.c.customer_id.in_(sorted(rows)))
            .order_by(customer_tags.c.customer_id, customer_tags.c.tag)
        )
        for customer_id, tag in connection.execute(query):
            tags.setdefault(int(customer_id), []).append(str(tag))
        built = {i: customer_from_row(row, tags.get(i, []), cipher) for i, row in rows.items()}
        return {i: built[kept.get(i) or i] for i in wanted}

    def render(self, **arguments: Any) -> Rendered:
        """Render a template (:func:`crmcore_messaging.rendering.render_message`)."""
        from crmcore_messaging.rendering import render_message  # Jinja2: only when needed

        return render_message(self.ctx, **arguments)

    def decide(
        self,
        request: Mapping[str, Any],
        customer: Customer,
        erased: set[int],
        counter: rules.CapCounter,
    ) -> dict[str, Any]:
        """The row of one checked request: the rules applied, the template rendered."""
        assert customer.id is not None
        ctx, settings = self.ctx, self.settings
        config, purpose, name = request["config"], request["purpose"], request["channel"]
        recipient = rules.address_of(customer, config, request["kind"])
        zone = rules.customer_zone(customer, settings)
        row: dict[str, Any] = {
            "token": secrets.token_hex(16),
            "customer_id": customer.id,
            "recipient": recipient,
            "channel": name,
            "purpose": purpose,
            "template": request["template"],
            "timezone": zone,
            "ref_type": request["ref_type"],
            "ref_id": request["ref_id"],
            "dedupe_key": request["dedupe_key"],
            "not_before": request["not_before"],
            "state": "queued",
        }
        reason = rules.first_refusal(
            customer_id=customer.id,
            erased=erased,
            consents={customer.id: attrs.asdict(customer.consent)},
            channel=config,
            purpose=purpose,
            recipient=recipient,
        )
        if reason is None and request["not_before"] <= ctx.now:
            until = rules.quiet_until(ctx.now, zone, settings)
            if until is not None:
                row.update(state="deferred", not_before=until)
            elif not counter.fits(customer.id, name, purpose):
                reason = "frequency_cap"
        if reason is not None:
            row.update(state="refused", reason=reason)
        if reason is not None or request["template"] is None:
            row.update(subject=request["subject"], body_text=request["text"])
            row.update(body_html=request["html"], locale=request["locale"])
            return row
        rendered = self.render(
            template=request["template"],
            customer=customer,
            locale=request["locale"] or _locale(customer, settings),
            token=row["token"],
            channel=name,
            purpose=purpose,
            variables=request["variables"],
            ref_type=request["ref_type"],
            ref_id=request["ref_id"],
        )
        row.update(
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            template_version=rendered.template_version,
            locale=rendered.locale,
        )
        return row

    def store(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Insert the rows; the new ids by token (a row whose key was taken meanwhile: none)."""
        if not rows:
            return {}
        ctx = self.ctx
        table = messages_table(ctx.crm.metadata)
        stamps = {"attempts": 0, "created_at": ctx.now, "updated_at": ctx.now}
        values = [{**{k: row.get(k) for k in ROW_KEYS}, **stamps} for row in rows]
        dialect = ctx.connection.dialect.name
        if dialect in ("postgresql", "sqlite"):
            make = pg_insert if dialect == "postgresql" else sqlite_insert
            statement: Any = make(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        else:  # another backend: a concurrent duplicate key is a ConflictError
            statement = insert(table)
        found = ctx.connection.execute(statement.returning(table.c.token, table.c.id), values)
        return {str(token): int(i) for token, i in found}


def _customer_rows(connection: Connection, ids: Sequence[int]) -> list[Any]:
    found: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found.extend(connection.execute(select(customers).where(customers.c.id.in_(chunk))))
    return found


def _locale(customer: Customer, settings: Settings) -> str:
    given = customer.attributes.get(settings.locale_attribute)
    return given if isinstance(given, str) and given else settings.default_locale


__all__ = [
    "CHUNK",
    "FIELDS",
    "ROW_KEYS",
    "SUBJECT_LIMIT",
    "TEXT_LIMIT",
    "Batch",
    "optional_text",
    "references",
    "required_text",
]
