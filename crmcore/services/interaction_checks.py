"""Core's checks on one interaction before it is stored (not whether its customer exists)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crmcore.errors import ValidationError
from crmcore.model.entities import MONETARY_KINDS, Interaction, Item
from crmcore.model.limits import (
    INT64_MAX,
    INT64_MIN,
    JsonLimits,
    int_problem,
    json_problem,
    timestamp_problem,
)
from crmcore.model.serialization import to_dict
from crmcore.model.storable import text_problem
from crmcore.storage.types import money_problem

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DEFAULT_LIMITS = JsonLimits()


def _items_problem(items: Sequence[Item], limits: JsonLimits) -> str | None:
    """Why the stored ``items`` document would exceed ``limits`` (exact only when it might)."""
    if not items:
        return None
    bound = 0
    for item in items:
        for text in (item.sku, item.name, item.category):
            bound += 6 * len(text) + 2 if isinstance(text, str) else 8
        bound += 160  # keys, punctuation and the two decimals
    if bound <= limits.max_bytes:
        return None
    return json_problem([to_dict(item) for item in items], limits)


def validate_interaction(
    interaction: Interaction, limits: JsonLimits | None = None
) -> list[ValidationError]:
    """Core's checks on one interaction (not including whether the customer exists).

    ``limits`` bounds the ``payload`` and ``items`` documents (default
    :class:`~crmcore.model.limits.JsonLimits`); they are checked first, so no later
    check walks a document nested too deeply.
    """
    errors: list[ValidationError] = []

    def bad(name: str, message: str, value: Any = None) -> None:
        errors.append(ValidationError(f"{name}: {message}", field=name, value=value))

    limits = limits or _DEFAULT_LIMITS
    too_big = json_problem(interaction.payload, limits)
    if too_big:
        bad("payload", too_big)
    if isinstance(interaction.items, tuple) and (
        too_big := _items_problem(interaction.items, limits)
    ):
        bad("items", too_big)
    if errors:
        return errors
    for name in ("text", "handled_by", "currency", "payload"):
        unstorable = text_problem(getattr(interaction, name), name)
        if unstorable:
            bad(*unstorable)
    if interaction.source is not None or interaction.external_id is not None:
        for name in ("source", "external_id"):
            unstorable = text_problem(getattr(interaction, name), name)
            if unstorable:
                bad(*unstorable)
    for index, item in enumerate(interaction.items):
        for name in ("sku", "name", "category"):
            unstorable = text_problem(getattr(item, name), f"items.{index}.{name}")
            if unstorable:
                bad(*unstorable)
    if errors:
        return errors
    if isinstance(interaction.customer_id, bool) or not isinstance(interaction.customer_id, int):
        bad("customer_id", f"expected an integer, got {interaction.customer_id!r}")
    elif problem := int_problem(interaction.customer_id, INT64_MIN, INT64_MAX):
        bad("customer_id", problem, interaction.customer_id)
    contact = interaction.contact_id
    if contact is not None and (isinstance(contact, bool) or not isinstance(contact, int)):
        bad("contact_id", f"expected an integer, got {contact!r}")
    elif contact is not None and (problem := int_problem(contact, INT64_MIN, INT64_MAX)):
        bad("contact_id", problem, contact)
    if not isinstance(interaction.occurred_at, datetime) or interaction.occurred_at.tzinfo is None:
        bad("occurred_at", "must be a timezone-aware datetime", interaction.occurred_at)
    elif problem := timestamp_problem(interaction.occurred_at):
        bad("occurred_at", problem, interaction.occurred_at)
    if interaction.amount is not None:
        problem = money_problem(interaction.amount)
        if problem is None and interaction.amount < 0:
            problem = f"must not be negative, got {interaction.amount} (record a refund instead)"
        if problem:
            bad("amount", problem, interaction.amount)
        if interaction.currency is None:
            bad("currency", "required when an amount is given")
    elif interaction.kind in MONETARY_KINDS:
        bad("amount", f"required for a {interaction.kind.value}")
    if interaction.currency is not None and not _CURRENCY.match(interaction.currency):
        bad(
            "currency", f"must be a 3-letter upper-case ISO 4217 code, got {interaction.currency!r}"
        )
    if interaction.response_seconds is not None and not 0 <= interaction.response_seconds < 1e9:
        bad("response_seconds", f"must be between 0 and 1e9, got {interaction.response_seconds}")
    if interaction.text is not None and len(interaction.text) > 100_000:
        bad("text", f"longer than 100000 characters ({len(interaction.text)})")
    if interaction.handled_by is not None and len(interaction.handled_by) > 200:
        bad("handled_by", "longer than 200 characters")
    if interaction.source is not None or interaction.external_id is not None:
        for name, limit in (("source", 100), ("external_id", 200)):
            value = getattr(interaction, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                bad(name, f"must be a non-empty string, got {value!r}", value)
            elif value is not None and len(value) > limit:
                bad(name, f"longer than {limit} characters ({len(value)})", value)
    for index, item in enumerate(interaction.items):
        if item.quantity <= 0:
            bad(f"items.{index}.quantity", f"must be positive, got {item.quantity}")
        if item.unit_price is not None and money_problem(item.unit_price):
            bad(f"items.{index}.unit_price", str(money_problem(item.unit_price)))
    if not isinstance(interaction.payload, dict):
        bad("payload", "must be an object")
    return errors


__all__ = ["validate_interaction"]
