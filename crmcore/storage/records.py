"""Rows of the core tables as entities, and back: what every service reads and writes.

Customers are stored with their secret fields sealed when a cipher is
configured (:mod:`crmcore.security.encryption`); these functions seal and open
them, so no service handles sealed rows itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import Connection, Row, select

from crmcore.errors import NotFoundError, ValidationError
from crmcore.model.entities import Consent, Customer, Interaction
from crmcore.model.identity import normalise_name
from crmcore.model.limits import INT64_MAX
from crmcore.model.serialization import from_dict
from crmcore.security.encryption import FieldCipher, UnreadableError
from crmcore.security.stored_keys import IdentityKeys
from crmcore.storage.tables import customer_merges, customer_tags, customers

#: The consent flags, each stored in its own ``consent_<name>`` column.
CONSENT_FIELDS = tuple(f.name for f in attrs.fields(Consent))


def customer_to_row(
    customer: Customer,
    keys: IdentityKeys,
    now: datetime,
    cipher: FieldCipher | None = None,
    customer_id: int | None = None,
) -> dict[str, Any]:
    """The ``crm_customers`` row of ``customer``; with a cipher, its secret fields are sealed."""
    created = customer.created_at or now
    row: dict[str, Any] = {
        "id": customer_id,
        "kind": customer.kind.value,
        "name": customer.name.strip(),
        "name_norm": normalise_name(customer.name),
        "email": customer.email.strip() if customer.email else None,
        "email_norm": keys.email,
        "phone": customer.phone.strip() if customer.phone else None,
        "phone_norm": keys.phone,
        "address": customer.address,
        "gender": customer.gender.value if customer.gender else None,
        "birth_date": customer.birth_date,
        "company_name": customer.company_name,
        "org_norm": keys.org,
        "industry": customer.industry,
        "size": customer.size,
        "registered_capital": customer.registered_capital,
        "founding_date": customer.founding_date,
        "owner": customer.owner,
        "stage": customer.stage.value,
        "source_channel": customer.source_channel.value if customer.source_channel else None,
        "attributes": customer.attributes,
        "created_at": created,
        "updated_at": customer.updated_at or created,
    }
    for name in CONSENT_FIELDS:
        row[f"consent_{name}"] = getattr(customer.consent, name)
    row["sealed"] = None
    if cipher is not None:
        assert customer_id is not None
        secret = {f: row[f] for f in cipher.fields}
        if secret.get("birth_date") is not None:
            secret["birth_date"] = secret["birth_date"].isoformat()
        row.update(dict.fromkeys(cipher.fields))
        row["sealed"] = cipher.seal(customer_id, secret)
    return row


def customer_from_row(
    row: Row[Any] | Mapping[str, Any], tags: Sequence[str], cipher: FieldCipher | None = None
) -> Customer:
    """The Customer of a ``crm_customers`` row and its tags; sealed fields opened with ``cipher``.

    UnreadableError when the row is sealed and ``cipher`` cannot open it.
    """
    m = row._mapping if isinstance(row, Row) else row
    data: dict[str, Any] = {
        name: m[name]
        for name in (
            "id",
            "kind",
            "name",
            "email",
            "phone",
            "address",
            "gender",
            "birth_date",
            "company_name",
            "industry",
            "size",
            "registered_capital",
            "founding_date",
            "owner",
            "stage",
            "source_channel",
            "attributes",
            "created_at",
            "updated_at",
        )
    }
    if m["sealed"] is not None:
        if cipher is None:
            raise UnreadableError(
                f"customer {m['id']} has encrypted fields: set CRM_ENCRYPTION_KEY to read them",
                customer_id=m["id"],
            )
        data.update(cipher.open(m["id"], m["sealed"]))
    data["tags"] = list(tags)
    data["consent"] = {name: bool(m[f"consent_{name}"]) for name in CONSENT_FIELDS}
    return from_dict({k: v for k, v in data.items() if v is not None}, Customer)


def load_customer(
    connection: Connection, customer_id: int, cipher: FieldCipher | None, *, lock: bool = False
) -> Customer:
    """The stored customer with this id, without any access check (callers check).

    ValidationError for an id that is not an integer, NotFoundError when no
    customer has it. ``lock=True`` takes a key-share row lock on PostgreSQL
    (the row is about to change).
    """
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise ValidationError(f"customer id: expected an integer, got {customer_id!r}", field="id")
    if not 0 < customer_id <= INT64_MAX:  # no stored id; the drivers would overflow
        raise NotFoundError(f"customer {customer_id} does not exist")
    query = select(customers).where(customers.c.id == customer_id)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    row = connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"customer {customer_id} does not exist")
    tags = (
        connection.execute(
            select(customer_tags.c.tag)
            .where(customer_tags.c.customer_id == customer_id)
            .order_by(customer_tags.c.tag)
        )
        .scalars()
        .all()
    )
    return customer_from_row(row, tags, cipher)


def interaction_from_row(row: Row[Any]) -> Interaction:
    """Build an Interaction from a ``crm_interactions`` row."""
    data = {k: v for k, v in row._mapping.items() if v is not None}
    return from_dict(data, Interaction)


def merged_into(connection: Connection, customer_id: int) -> int | None:
    """The id of the customer that ``customer_id`` was merged into, or None (never merged)."""
    if not 0 < customer_id <= INT64_MAX:  # never an id: the drivers would overflow
        return None
    query = select(customer_merges.c.kept_id).where(customer_merges.c.merged_id == customer_id)
    kept = connection.execute(query).scalar()
    return None if kept is None else int(kept)
