"""Market-basket analysis: association rules over purchase items, counted in the database.

A **basket** is one purchase before ``as_of`` (and at or after ``since``) with at least
one item: a counted purchase (:mod:`.purchases`) or a zero-value one (a free order's
items were still taken together; a purchase refunded in full is no basket); its
**items** are the distinct ``sku`` (or ``category``) values of the purchase's item lines
(``crm_interactions.items``, lines without the key are ignored). With ``N`` baskets and
``n(S)`` the baskets holding every item of the set ``S``:

* ``support(S) = n(S) / N``; an itemset is **frequent** when ``support >= min_support``;
* a rule ``A -> C`` (``A``, ``C`` disjoint, ``A u C`` frequent) has
  ``confidence = n(A u C) / n(A)`` and ``lift = confidence / support(C)``;
  rules are kept when ``confidence >= min_confidence`` and ``lift >= min_lift``.

Counting is apriori in SQL: the (basket, item) pairs go to a temporary table with an index,
single items are counted with ``GROUP BY``, pairs with a self-join on the basket restricted
to frequent items, triples (``max_length = 3``) with a three-way join restricted to items of
frequent pairs. Every subset of a frequent itemset is frequent, so the rules (every split of
each frequent itemset, as mlxtend's ``association_rules`` makes them) are derived in Python
from the counts alone.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from fractions import Fraction
from typing import Any

from attrs import frozen
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.rfm import resolve_as_of
from crmcore_segmentation.settings import settings_of

LEVELS = ("sku", "category")
ITEM_LENGTH = 200


@frozen
class Thresholds:
    """Minimum support, confidence and lift, and the largest itemset counted (2 or 3)."""

    min_support: float = 0.01
    min_confidence: float = 0.1
    min_lift: float = 1.0
    max_length: int = 3


def check_thresholds(
    min_support: Any, min_confidence: Any, min_lift: Any, max_length: Any
) -> Thresholds:
    """:class:`Thresholds` from arguments; ValidationError naming the bad one."""
    for name, value, low, high in (
        ("min_support", min_support, 0.0, 1.0),
        ("min_confidence", min_confidence, 0.0, 1.0),
        ("min_lift", min_lift, 0.0, 1e9),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{name}: must be a number, got {value!r}", field=name)
        support = name == "min_support"
        if not low < value <= high if support else not low <= value <= high:
            bounds = "(0, 1]" if support else f"[{low:g}, {high:g}]"
            raise ValidationError(
                f"{name}: {value} is outside {bounds}",
                field=name,
                value=value,
            )
    if max_length not in (2, 3) or isinstance(max_length, bool):
        raise ValidationError(
            f"max_length: must be 2 or 3, got {max_length!r}", field="max_length", value=max_length
        )
    return Thresholds(float(min_support), float(min_confidence), float(min_lift), max_length)


def check_level(level: Any) -> str:
    """``sku`` or ``category``; ValidationError naming ``level`` otherwise."""
    if level not in LEVELS:
        raise ValidationError(
            f"level: {level!r} is not one of: {', '.join(LEVELS)}", field="level", value=level
        )
    return str(level)


def item_key(connection: Connection, element: ColumnElement[Any], key: str) -> ColumnElement[Any]:
    """The text of ``element``'s JSON key ``key`` (SQLite ``json_extract``, PostgreSQL ``->>``)."""
    if connection.dialect.name == "postgresql":
        return element.op("->>")(literal(key))
    return func.json_extract(element, f"$.{key}")


def basket_items_query(
    connection: Connection,
    crm: CRM,
    level: str,
    *,
    as_of: datetime,
    since: datetime | None = None,
) -> Any:
    """``(basket, customer_id, item)``, distinct, of every counted purchase's item lines."""
    purchases = counted_purchases(
        crm, as_of, since=since, currency=settings_of(crm).currency, include_zero=True
    )
    bought = purchases.subquery("bp")
    lines = crm.metadata.tables["crm_interactions"].alias("bi")
    if connection.dialect.name == "postgresql":
        each = func.jsonb_array_elements(lines.c["items"]).table_valued("value").alias("line")
    else:
        each = func.json_each(lines.c["items"]).table_valued("value").alias("line")
    item = func.substr(item_key(connection, each.c.value, level), 1, ITEM_LENGTH)
    return (
        select(bought.c.id.label("basket"), bought.c.customer_id, item.label("item"))
        .select_from(bought.join(lines, lines.c.id == bought.c.id).join(each, true()))
        .where(item_key(connection, each.c.value, level).is_not(None))
        .distinct()
    )


@contextmanager
def basket_table(
    connection: Connection,
    crm: CRM,
    level: str,
    *,
    as_of: datetime,
    since: datetime | None = None,
    by_customer: bool = False,
) -> Iterator[Table]:
    """A temporary table of :func:`basket_items_query`, dropped afterwards.

    Indexed after it is filled (a bulk load is faster without live indexes) on
    ``(basket, item)`` and ``item``, and on ``(customer_id, item)`` with ``by_customer``.
    """
    name = f"segmentation_basket_{uuid.uuid4().hex[:12]}"
    scratch = Table(
        name,
        MetaData(),
        Column("basket", BigInteger, nullable=False),
        Column("customer_id", BigInteger, nullable=False),
        Column("item", String(ITEM_LENGTH), nullable=False),
        prefixes=["TEMPORARY"],
    )
    scratch.create(connection)  # before the indexes are defined: created after the load
    try:
        query = basket_items_query(connection, crm, level, as_of=as_of, since=since)
        connection.execute(insert(scratch).from_select(["basket", "customer_id", "item"], query))
        Index(f"ix_{name}_basket", scratch.c.basket, scratch.c.item).create(connection)
        Index(f"ix_{name}_item", scratch.c.item).create(connection)
        if by_customer:
            Index(f"ix_{name}_customer", scratch.c.customer_id, scratch.c.item).create(connection)
        yield scratch
    finally:
        scratch.drop(connection)


@frozen
class Rule:
    """An association rule ``antecedent -> consequent`` with its measures."""

    antecedent: tuple[str, ...]
    consequent: tuple[str, ...]
    count: int
    support: float
    confidence: float
    lift: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "antecedent": list(self.antecedent),
            "consequent": list(self.consequent),
            "count": self.count,
            "support": round(self.support, 6),
            "confidence": round(self.confidence, 6),
            "lift": round(self.lift, 6),
        }


@frozen
class BasketAnalysis:
    """Baskets counted, frequent itemsets with their counts, and the rules."""

    level: str
    baskets: int
    itemsets: dict[tuple[str, ...], int]
    rules: tuple[Rule, ...]
    thresholds: Thresholds

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (itemsets as ``{"items": [...], "count": n}``)."""
        return {
            "level": self.level,
            "baskets": self.baskets,
            "itemsets": [
                {"items": list(k), "count": v}
                for k, v in sorted(self.itemsets.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "rules": [r.as_dict() for r in self.rules],
        }


def count_itemsets(
    connection: Connection, baskets: Table, thresholds: Thresholds
) -> tuple[int, dict[tuple[str, ...], int]]:
    """``N`` and the frequent itemsets' counts (apriori, one statement per level)."""
    total = int(
        connection.execute(select(func.count(func.distinct(baskets.c.basket)))).scalar_one()
    )
    if not total:
        return 0, {}
    least = max(1, math.ceil(Fraction(str(thresholds.min_support)) * total))
    counts: dict[tuple[str, ...], int] = {}
    singles = (
        select(baskets.c.item, func.count().label("n"))
        .group_by(baskets.c.item)
        .having(func.count() >= least)
    )
    for row in connection.execute(singles):
        counts[(str(row.item),)] = int(row.n)
    frequent = select(baskets.c.item).group_by(baskets.c.item).having(func.count() >= least)
    a, b = baskets.alias("a"), baskets.alias("b")
    pairs = (
        select(a.c.item.label("i1"), b.c.item.label("i2"), func.count().label("n"))
        .select_from(a.join(b, (a.c.basket == b.c.basket) & (a.c.item < b.c.item)))
        .where(a.c.item.in_(frequent), b.c.item.in_(frequent))
        .group_by(a.c.item, b.c.item)
        .having(func.count() >= least)
    )
    paired: set[str] = set()
    for row in connection.execute(pairs):
        counts[(str(row.i1), str(row.i2))] = int(row.n)
        paired.update((str(row.i1), str(row.i2)))
    if thresholds.max_length >= 3 and len(paired) >= 3:
        c = baskets.alias("c")
        in_pairs = sorted(paired)
        triples = (
            select(a.c.item.label("i1"), b.c.item.label("i2"), c.c.item.label("i3"), func.count())
            .select_from(
                a.join(b, (a.c.basket == b.c.basket) & (a.c.item < b.c.item)).join(
                    c, (c.c.basket == a.c.basket) & (b.c.item < c.c.item)
                )
            )
            .where(a.c.item.in_(in_pairs), b.c.item.in_(in_pairs), c.c.item.in_(in_pairs))
            .group_by(a.c.item, b.c.item, c.c.item)
            .having(func.count() >= least)
        )
        for i1, i2, i3, n in connection.execute(triples):
            key = (str(i1), str(i2), str(i3))
            if all(pair in counts for pair in itertools.combinations(key, 2)):
                counts[key] = int(n)
    return total, counts


def derive_rules(
    total: int, counts: dict[tuple[str, ...], int], thresholds: Thresholds
) -> list[Rule]:
    """Every rule of the frequent itemsets meeting the thresholds, by confidence, lift, items."""
    rules = []
    for itemset, n in counts.items():
        if len(itemset) < 2:
            continue
        for size in range(1, len(itemset)):
            for antecedent in itertools.combinations(itemset, size):
                consequent = tuple(i for i in itemset if i not in antecedent)
                confidence = n / counts[antecedent]
                lift = confidence / (counts[consequent] / total)
                if (
                    confidence + 1e-12 >= thresholds.min_confidence
                    and lift + 1e-12 >= thresholds.min_lift
                ):
                    rules.append(Rule(antecedent, consequent, n, n / total, confidence, lift))
    rules.sort(key=lambda r: (-r.confidence, -r.lift, r.antecedent, r.consequent))
    return rules


def analyse(
    connection: Connection, baskets: Table, level: str, thresholds: Thresholds
) -> BasketAnalysis:
    """Itemsets and rules of the baskets already in ``baskets``."""
    total, counts = count_itemsets(connection, baskets, thresholds)
    return BasketAnalysis(
        level, total, counts, tuple(derive_rules(total, counts, thresholds)), thresholds
    )


@requires(Action.REPORT)  # an aggregate over every customer's purchases
def association_rules(
    crm: CRM,
    *,
    level: str = "sku",
    min_support: float = 0.01,
    min_confidence: float = 0.1,
    min_lift: float = 1.0,
    max_length: int = 3,
    as_of: datetime | None = None,
    since: datetime | None = None,
    ctx: UnitOfWork | None = None,
) -> BasketAnalysis:
    """Frequent itemsets and association rules over purchase items (module docstring).

    Raises ValidationError for an unknown ``level`` or thresholds out of range.
    """
    chosen = check_level(level)
    thresholds = check_thresholds(min_support, min_confidence, min_lift, max_length)
    moment = resolve_as_of(crm, as_of)
    with (
        crm.reading(ctx) as uow,
        basket_table(uow.connection, crm, chosen, as_of=moment, since=since) as baskets,
    ):
        return analyse(uow.connection, baskets, chosen, thresholds)


def rules_of(analysis: BasketAnalysis, consequent: str) -> Sequence[Rule]:
    """The rules of ``analysis`` whose consequent is the single item ``consequent``."""
    return [r for r in analysis.rules if r.consequent == (consequent,)]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
