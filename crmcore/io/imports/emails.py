"""Interaction imports that name their customer by email: one lookup per batch of records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from crmcore.errors import ValidationError
from crmcore.io.imports.columns import json_type
from crmcore.io.imports.reading import Record
from crmcore.model.identity import normalise_email
from crmcore.security.stored_keys import stored_forms
from crmcore.storage.filters import among
from crmcore.storage.tables import customers as customers_table

if TYPE_CHECKING:
    from crmcore.app import CRM

_EMAIL_QUERY_CHUNK = 1000


def resolve_customer_emails(
    crm: CRM, records: Iterator[Record], connection: Connection, size: int
) -> Iterator[Record]:
    """Replace ``customer_email`` by ``customer_id``, with one query per batch of records."""
    while chunk := list(islice(records, size)):
        wanted: dict[str, list[Record]] = {}
        for record in chunk:
            email = _customer_email(record)
            if email is not None:
                wanted.setdefault(email, []).append(record)
        found = _customer_ids_by_email(crm, connection, sorted(wanted))
        for email, waiting in wanted.items():
            for record in waiting:
                assert record.data is not None
                del record.data["customer_email"]
                if email in found:
                    record.data["customer_id"] = found[email]
                else:
                    record.error = ValidationError(
                        f"customer_email: no customer has the email address {email!r}",
                        field="customer_email",
                        value=email,
                    )
        yield from chunk


def _customer_email(record: Record) -> str | None:
    """Return the normalised ``customer_email`` of a record; set ``record.error`` if bad."""
    if record.data is None or "customer_email" not in record.data:
        return None
    value = record.data["customer_email"]
    try:
        if "customer_id" in record.data:
            raise ValueError("give customer_id or customer_email, not both")
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {json_type(value)}")
        return normalise_email(value)
    except ValueError as exc:
        record.error = ValidationError(
            f"customer_email: {exc}", field="customer_email", value=value
        )
        return None


def _customer_ids_by_email(
    crm: CRM, connection: Connection, emails: Sequence[str]
) -> dict[str, int]:
    """Normalised email -> customer id, matching every stored form of the key.

    With encryption on, a stored key is a blind index (under the current or an
    old key) or, for rows stored before encryption was enabled, the plaintext.
    """
    found: dict[str, int] = {}
    for start in range(0, len(emails), _EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + _EMAIL_QUERY_CHUNK]
        forms = {f: email for email in chunk for f in stored_forms(crm.cipher, "email", email)}
        column = customers_table.c.email_norm
        query = select(column, customers_table.c.id).where(among(connection, column, list(forms)))
        found.update((forms[value], cid) for value, cid in connection.execute(query))
    return found
