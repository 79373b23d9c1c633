"""Customer fields that surveys filter, stratify and break down by, as SQL expressions.

Core's ``crm_customers`` table is read-only for plugins; these expressions only read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, select

from crmcore import ValidationError
from crmcore.storage.attributes import attribute

#: Columns of ``crm_customers`` usable as filters, strata and breakdowns.
CUSTOMER_FIELDS = (
    "kind",
    "stage",
    "gender",
    "industry",
    "size",
    "owner",
    "source_channel",
    "company_name",
)


def field_expression(customers: Table, name: str, where: str = "by") -> ColumnElement[Any]:
    """The SQL expression of customer field ``name``: a column or ``attributes.<key>``.

    Raises ValidationError (field ``where``) for an unknown field.
    """
    if name in CUSTOMER_FIELDS:
        return customers.c[name]
    if name.startswith("attributes.") and len(name) > len("attributes."):
        element: ColumnElement[Any] = attribute(
            customers.c.attributes, name.removeprefix("attributes.")
        ).as_string()
        return element
    allowed = ", ".join((*CUSTOMER_FIELDS, "attributes.<key>"))
    raise ValidationError(f"{where}: {name!r} is not one of: {allowed}", field=where)


def filter_conditions(
    customers: Table, tags: Table, filters: Mapping[str, Any] | None
) -> list[ColumnElement[bool]]:
    """Conditions for ``filters``: ``{"stage": "active", "tag": "vip", "attributes.tier": "gold"}``.

    Every entry must match (equality; ``tag`` means the customer has the tag).
    Raises ValidationError naming ``filters.<field>`` for an unknown field.
    """
    conditions: list[ColumnElement[bool]] = []
    for name, value in (filters or {}).items():
        if name == "tag":
            conditions.append(
                exists(
                    select(1).where(tags.c.customer_id == customers.c.id, tags.c.tag == str(value))
                )
            )
            continue
        if name.startswith("attributes.") and len(name) > len("attributes."):
            element = attribute(customers.c.attributes, name.removeprefix("attributes."))
            if isinstance(value, bool):
                conditions.append(element.as_boolean() == value)
            elif isinstance(value, int):
                conditions.append(element.as_integer() == value)
            elif isinstance(value, float):
                conditions.append(element.as_float() == value)
            else:
                conditions.append(element.as_string() == str(value))
            continue
        column = field_expression(customers, name, f"filters.{name}")
        conditions.append(column == value)
    return [and_(True, *conditions)] if conditions else []
