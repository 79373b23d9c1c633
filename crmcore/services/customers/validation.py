"""Core's checks on one customer before it is stored, and the identity keys they yield."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmcore.errors import (
    ValidationError,
)
from crmcore.model.entities import (
    Customer,
    CustomerKind,
)
from crmcore.model.identity import (
    DEFAULT_REGION,
    normalise_email,
    normalise_org_name,
    normalise_phone,
)
from crmcore.model.limits import (
    INT32_MAX,
    JsonLimits,
    int_problem,
    json_problem,
    timestamp_problem,
)
from crmcore.model.serialization import from_dict
from crmcore.model.storable import text_problem
from crmcore.security.stored_keys import IdentityKeys
from crmcore.storage.attributes import attribute_keys_problem
from crmcore.storage.types import money_problem

if TYPE_CHECKING:
    pass


_DEFAULT_LIMITS = JsonLimits()


def _check_length(errors: list[ValidationError], name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        errors.append(
            ValidationError(f"{name}: longer than {limit} characters ({len(value)})", field=name)
        )


def _check_integer(
    errors: list[ValidationError], name: str, value: int | None, low: int, high: int
) -> None:
    if value is None:
        return
    if low == 0 and isinstance(value, int) and value < 0:
        errors.append(
            ValidationError(f"{name}: must not be negative, got {value}", field=name, value=value)
        )
        return
    problem = int_problem(value, low, high)
    if problem:
        errors.append(ValidationError(f"{name}: {problem}", field=name, value=value))


def _check_money(errors: list[ValidationError], name: str, value: Decimal | None) -> None:
    if value is None:
        return
    problem = money_problem(value) or (f"must not be negative, got {value}" if value < 0 else None)
    if problem:
        errors.append(ValidationError(f"{name}: {problem}", field=name, value=value))


_TEXT_FIELDS = (
    "name", "email", "phone", "address", "company_name", "industry", "owner", "tags", "attributes",
)  # fmt: skip


def validate_customer(
    customer: Customer,
    now: datetime,
    attributes_validator: Any,
    limits: JsonLimits | None = None,
    region: str = DEFAULT_REGION,
) -> tuple[IdentityKeys | None, list[ValidationError]]:
    """Core's checks on one customer; returns its identity keys and every problem found.

    ``region`` is the region national phone numbers are read in (``[customers]
    default_region``): the phone key is E.164.

    ``limits`` bounds the ``attributes`` document (default :class:`JsonLimits`);
    it is checked first, so no later check walks a document nested too deeply.
    """
    errors: list[ValidationError] = []
    too_big = json_problem(customer.attributes, limits or _DEFAULT_LIMITS)
    if too_big:
        return None, [ValidationError(f"attributes: {too_big}", field="attributes")]
    for name in _TEXT_FIELDS:
        problem = text_problem(getattr(customer, name), name)
        if problem:
            errors.append(ValidationError(f"{problem[0]}: {problem[1]}", field=problem[0]))
    if errors:
        return None, errors
    if not isinstance(customer.name, str) or not customer.name.strip():
        errors.append(ValidationError("name: must not be empty", field="name", value=customer.name))
    _check_length(errors, "name", customer.name, 300)
    for name, limit in (
        ("address", 2000),
        ("company_name", 300),
        ("industry", 200),
        ("owner", 200),
    ):
        _check_length(errors, name, getattr(customer, name), limit)
    email = phone = org = None
    if customer.email is not None:
        _check_length(errors, "email", customer.email, 320)
        try:
            email = normalise_email(customer.email)
        except ValueError as exc:
            errors.append(ValidationError(f"email: {exc}", field="email", value=customer.email))
    if customer.phone is not None:
        try:
            phone = normalise_phone(customer.phone, region)
        except ValueError as exc:
            errors.append(ValidationError(f"phone: {exc}", field="phone", value=customer.phone))
    if customer.kind is CustomerKind.ORGANIZATION:
        org = normalise_org_name(customer.company_name or customer.name) or None
    if customer.birth_date is not None and customer.birth_date > now.date():
        errors.append(
            ValidationError(
                f"birth_date: {customer.birth_date} is in the future", field="birth_date"
            )
        )
    _check_integer(errors, "size", customer.size, 0, INT32_MAX)
    _check_money(errors, "registered_capital", customer.registered_capital)
    for tag in customer.tags:
        if len(tag) > 100:
            errors.append(
                ValidationError(
                    f"tags: tag longer than 100 characters: {tag[:20]!r}...", field="tags"
                )
            )
    for stamp in ("created_at", "updated_at"):
        value = getattr(customer, stamp)
        if value is not None and value.tzinfo is None:
            errors.append(
                ValidationError(f"{stamp}: must be timezone-aware", field=stamp, value=value)
            )
        elif timestamp_problem(value):
            errors.append(
                ValidationError(f"{stamp}: {timestamp_problem(value)}", field=stamp, value=value)
            )
    if not isinstance(customer.attributes, dict):
        errors.append(ValidationError("attributes: must be an object", field="attributes"))
    elif customer.attributes and (bad_key := attribute_keys_problem(customer.attributes)):
        errors.append(ValidationError(f"attributes: {bad_key}", field="attributes"))
    elif attributes_validator is not None:
        for err in sorted(
            attributes_validator.iter_errors(customer.attributes),
            key=lambda e: list(e.absolute_path),
        ):
            path = ".".join(["attributes", *(str(p) for p in err.absolute_path)])
            errors.append(ValidationError(f"{path}: {err.message}", field=path))
    if errors:
        return None, errors
    return IdentityKeys(email, phone, org, phone_input=customer.phone), errors


def coerce_customer(item: Customer | Mapping[str, Any]) -> Customer:
    """``item`` as a Customer: entities pass through, mappings are structured (cattrs)."""
    if isinstance(item, Customer):
        return item
    if isinstance(item, Mapping):
        return from_dict(dict(item), Customer)
    raise ValidationError(f"expected a Customer or a mapping, got {type(item).__name__}")
