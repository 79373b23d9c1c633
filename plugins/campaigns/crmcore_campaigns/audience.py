"""Audiences: who a campaign is for, resolved to customer ids at launch, and their strata.

An audience is one of (the stored, normalised form):

* ``{"filter": "stage=at_risk,churned tag=vip"}``: customers matching a filter
  (see :func:`parse_filter`; the empty filter is every customer);
* ``{"segment": "at-risk"}``: the current members of a saved segmentation segment;
* ``{"rfm": ["at_risk", "cant_lose"]}``: customers in these RFM segments now;
* ``{"customers": [1, 2, 3]}``: these customers.

Resolved among the customers the acting principal may read (core's scoping),
in ascending id order. Strata: the value tier (``high``, ``medium``, ``low``,
or ``unvalued`` for customers without a value) from segmentation's
``tiers.tier_query`` when that plugin is enabled and stratification is on,
else the single stratum ``all``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.checks import day
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.attributes import attribute
from crmcore.storage.filters import among
from crmcore.storage.tables import customer_tags, customers

#: Filter keys and what they match (each value may list alternatives: ``stage=new,active``).
FILTER_KEYS = (
    "stage",
    "tag",
    "owner",
    "kind",
    "source",
    "created_before",
    "created_after",
)
AUDIENCE_TYPES = ("filter", "segment", "rfm", "customers")
ALL_STRATA = "all"
UNVALUED = "unvalued"


def parse_filter(text: str) -> dict[str, list[str]]:
    """Parse a filter: space-separated ``key=value`` terms, all of which must match.

    Keys: ``stage``, ``tag``, ``owner``, ``kind``, ``source`` (the source
    channel), ``created_before`` / ``created_after`` (a day, ``YYYY-MM-DD``:
    ``created_at < day 00:00 UTC`` / ``created_at >= day 00:00 UTC``) and
    ``attr.NAME`` (custom attribute ``NAME`` equal to the text value). A value
    may list alternatives separated by commas (any of them matches). A term
    may be quoted (``"attr.city=New York"``); a key given twice is refused.
    """
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise ValidationError(f"audience.filter: {exc}", field="audience.filter") from None
    parsed: dict[str, list[str]] = {}
    for term in terms:
        key, sep, value = term.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise ValidationError(
                f"audience.filter: {term!r} is not key=value", field="audience.filter"
            )
        if key not in FILTER_KEYS and not (key.startswith("attr.") and len(key) > 5):
            raise ValidationError(
                f"audience.filter: unknown key {key!r} (one of: {', '.join(FILTER_KEYS)}, "
                "attr.NAME)",
                field="audience.filter",
            )
        if key in parsed:
            raise ValidationError(
                f"audience.filter: {key!r} is given twice", field="audience.filter"
            )
        values = [v.strip() for v in value.split(",") if v.strip()]
        if key in ("created_before", "created_after"):
            if len(values) != 1:
                raise ValidationError(
                    f"audience.filter: {key} takes one day", field="audience.filter"
                )
            day(f"audience.filter.{key}", values[0])
        parsed[key] = values
    return parsed


def _midnight(text: str, key: str) -> datetime:
    d = day(f"audience.filter.{key}", text)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def filter_condition(terms: Mapping[str, Sequence[str]]) -> ColumnElement[bool]:
    """The SQL condition on ``crm_customers`` of parsed filter terms."""
    conditions: list[ColumnElement[bool]] = []
    columns = {"stage": "stage", "owner": "owner", "kind": "kind", "source": "source_channel"}
    for key, values in terms.items():
        if key in columns:
            conditions.append(customers.c[columns[key]].in_(list(values)))
        elif key == "tag":
            conditions.append(
                exists(
                    select(1).where(
                        customer_tags.c.customer_id == customers.c.id,
                        customer_tags.c.tag.in_(list(values)),
                    )
                )
            )
        elif key == "created_before":
            conditions.append(customers.c.created_at < _midnight(values[0], key))
        elif key == "created_after":
            conditions.append(customers.c.created_at >= _midnight(values[0], key))
        else:
            element = attribute(customers.c.attributes, key.removeprefix("attr."))
            conditions.append(or_(*(element.as_string() == v for v in values)))
    return and_(True, *conditions)


def normalise(audience: Any) -> dict[str, Any]:
    """The stored form of an audience given by a caller; ValidationError when malformed."""
    if not isinstance(audience, Mapping) or len(audience) != 1:
        raise ValidationError(
            f"audience: give exactly one of {', '.join(AUDIENCE_TYPES)}", field="audience"
        )
    kind, value = next(iter(audience.items()))
    if kind == "filter":
        if not isinstance(value, str):
            raise ValidationError("audience.filter: expected text", field="audience.filter")
        parse_filter(value)
        return {"filter": value.strip()}
    if kind == "segment":
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("audience.segment: expected a segment key", field="audience")
        return {"segment": value.strip()}
    if kind == "rfm":
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, list | tuple)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise ValidationError("audience.rfm: expected RFM segment names", field="audience")
        return {"rfm": sorted(set(names))}
    if kind == "customers":
        if not isinstance(value, list | tuple) or not value:
            raise ValidationError("audience.customers: expected customer ids", field="audience")
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(
                    f"audience.customers: {v!r} is not a customer id", field="audience"
                )
        return {"customers": sorted(set(value))}
    raise ValidationError(
        f"audience: {kind!r} is not one of: {', '.join(AUDIENCE_TYPES)}", field="audience"
    )


@requires(Action.READ, scoped=True)  # reads no customer data
def segmentation_enabled(crm: CRM) -> bool:
    """Whether the segmentation plugin is registered on this CRM."""
    return bool(crm.pm.has_plugin("segmentation"))


def _require_segmentation(crm: CRM, kind: str) -> None:
    if not segmentation_enabled(crm):
        raise ValidationError(
            f"audience.{kind}: needs the segmentation plugin (install crmcore-segmentation)",
            field="audience",
        )


@requires(Action.READ, scoped=True)  # every query keeps only customers the principal may read
def resolve(crm: CRM, audience: Mapping[str, Any], *, ctx: UnitOfWork | None = None) -> list[int]:
    """The ids of the audience's customers the principal may read, ascending."""
    with crm.reading(ctx) as uow:
        visible = crm.access.visible_condition(Action.READ, ctx=uow)
        scope = [] if visible is None else [visible]
        if "filter" in audience:
            query = select(customers.c.id).where(
                filter_condition(parse_filter(audience["filter"])), *scope
            )
        elif "customers" in audience:
            query = select(customers.c.id).where(
                among(uow.connection, customers.c.id, audience["customers"]), *scope
            )
        elif "rfm" in audience:
            _require_segmentation(crm, "rfm")
            from crmcore_segmentation.rfm import rfm_query

            scored = rfm_query(crm).subquery("rfm")
            query = (
                select(customers.c.id)
                .join(scored, scored.c.customer_id == customers.c.id)
                .where(scored.c.segment.in_(list(audience["rfm"])), *scope)
            )
        else:
            _require_segmentation(crm, "segment")
            from crmcore_segmentation.segments import iter_segment_members

            return sorted(
                int(m["customer_id"])
                for m in iter_segment_members(crm, audience["segment"], ctx=uow)
            )
        return sorted(int(i) for i in uow.connection.execute(query).scalars())


@requires(Action.READ, scoped=True)  # only ids the principal may read
def strata(
    crm: CRM, customer_ids: Sequence[int], *, stratify: bool, ctx: UnitOfWork | None = None
) -> dict[int, str]:
    """``customer id -> stratum`` of the ids the principal may read (others are left out).

    The stratum is the value tier (or ``unvalued``), or ``all`` without
    segmentation or stratification.
    """
    with crm.reading(ctx) as uow:
        visible = uow.connection.execute(
            select(customers.c.id).where(
                among(uow.connection, customers.c.id, list(customer_ids)),
                crm.access.where(customers.c.id, ctx=uow),
            )
        ).scalars()
        ids = sorted(int(i) for i in visible)
        if not stratify or not segmentation_enabled(crm):
            return dict.fromkeys(ids, ALL_STRATA)
        from crmcore_segmentation.tiers import tier_query

        tiered = tier_query(crm).subquery("tiers")
        query = select(tiered.c.customer_id, tiered.c.tier).where(
            among(uow.connection, tiered.c.customer_id, ids)
        )
        found = {int(cid): str(tier) for cid, tier in uow.connection.execute(query)}
    return {cid: found.get(cid, UNVALUED) for cid in ids}


@requires(Action.READ, scoped=True)  # counts only among ids the caller gives
def not_writable(crm: CRM, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None) -> int:
    """How many of ``customer_ids`` the principal may not write (or that do not exist)."""
    if not customer_ids:
        return 0
    with crm.reading(ctx) as uow:
        condition = crm.access.visible_condition(Action.WRITE, ctx=uow)
        query = select(customers.c.id).where(
            among(uow.connection, customers.c.id, list(customer_ids))
        )
        if condition is not None:
            query = query.where(condition)
        writable = len(uow.connection.execute(query).all())
    return len(set(customer_ids)) - writable


enforce_declared(__name__)

__all__ = [
    "ALL_STRATA",
    "AUDIENCE_TYPES",
    "FILTER_KEYS",
    "UNVALUED",
    "filter_condition",
    "normalise",
    "not_writable",
    "parse_filter",
    "resolve",
    "segmentation_enabled",
    "strata",
]
