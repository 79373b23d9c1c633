"""Next best offer: cross-sell from association rules, up-sell to the next price tier.

* **Cross-sell** for a customer: every rule ``A -> {c}`` (:mod:`.basket`, one-item
  consequent) whose antecedent the customer has bought (every item of ``A`` in some
  counted purchase) and whose consequent they have not; per product the rule of highest
  confidence (then lift) justifies it; products by that confidence, lift, then name.
* **Up-sell**: the SKUs' price is the mean ``unit_price`` of their item lines; for each
  SKU the customer bought, the SKU of the same ``category`` with the next higher price
  (the lowest price above it; ties by SKU) that the customer has not bought.
* **Likely buyers** of a product (:func:`likely_buyers`, what campaigns target): the
  customers who have not bought it and for whom a rule recommends it, best rule first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import Connection, Float, cast, func, select, true

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.basket import (
    BasketAnalysis,
    Rule,
    analyse,
    basket_table,
    check_level,
    check_thresholds,
    item_key,
)
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.rfm import resolve_as_of
from crmcore_segmentation.settings import settings_of

_IN_CHUNK = 500


@frozen
class Offer:
    """A product to offer a customer, and why (``kind``: ``cross_sell`` or ``up_sell``)."""

    item: str
    kind: str
    because: tuple[str, ...]
    confidence: float | None
    lift: float | None
    price: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "item": self.item,
            "kind": self.kind,
            "because": list(self.because),
            "confidence": None if self.confidence is None else round(self.confidence, 6),
            "lift": None if self.lift is None else round(self.lift, 6),
            "price": self.price,
        }


def check_limit(limit: Any) -> int:
    """Offers per customer, 1..100; ValidationError naming ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValidationError(
            f"limit: must be an integer from 1 to 100, got {limit!r}", field="limit", value=limit
        )
    return limit


def cross_sell(analysis: BasketAnalysis, bought: set[str], limit: int) -> list[Offer]:
    """The cross-sell offers for a customer who bought ``bought`` (module docstring)."""
    best: dict[str, Rule] = {}
    for rule in analysis.rules:  # sorted by confidence, lift: the first per product wins
        if len(rule.consequent) != 1 or rule.consequent[0] in bought:
            continue
        if rule.consequent[0] not in best and set(rule.antecedent) <= bought:
            best[rule.consequent[0]] = rule
    ranked = sorted(best.values(), key=lambda r: (-r.confidence, -r.lift, r.consequent))
    return [
        Offer(r.consequent[0], "cross_sell", r.antecedent, r.confidence, r.lift)
        for r in ranked[:limit]
    ]


def sku_prices(connection: Connection, crm: CRM, as_of: datetime) -> dict[str, tuple[str, float]]:
    """``sku -> (category, mean unit price)`` of item lines with both, in counted purchases."""
    bought = counted_purchases(crm, as_of, currency=settings_of(crm).currency).subquery("up")
    lines = crm.metadata.tables["crm_interactions"].alias("ui")
    if connection.dialect.name == "postgresql":
        each = func.jsonb_array_elements(lines.c["items"]).table_valued("value").alias("uline")
    else:
        each = func.json_each(lines.c["items"]).table_valued("value").alias("uline")
    sku = item_key(connection, each.c.value, "sku")
    category = item_key(connection, each.c.value, "category")
    price = cast(item_key(connection, each.c.value, "unit_price"), Float)
    query = (
        select(sku.label("sku"), func.max(category).label("category"), func.avg(price))
        .select_from(bought.join(lines, lines.c.id == bought.c.id).join(each, true()))
        .where(sku.is_not(None), category.is_not(None), price.is_not(None))
        .group_by(sku)
    )
    return {str(s): (str(c), float(p)) for s, c, p in connection.execute(query)}


def up_sell(prices: Mapping[str, tuple[str, float]], bought: set[str]) -> list[Offer]:
    """The next higher price tier in the same category for each SKU bought."""
    by_category: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for sku, (category, price) in prices.items():
        by_category[category].append((price, sku))
    offers: dict[str, Offer] = {}
    for sku in sorted(bought):
        if sku not in prices:
            continue
        category, price = prices[sku]
        higher = sorted((p, s) for p, s in by_category[category] if p > price and s not in bought)
        if higher and higher[0][1] not in offers:
            offers[higher[0][1]] = Offer(higher[0][1], "up_sell", (sku,), None, None, higher[0][0])
    return list(offers.values())


def _bought(
    connection: Connection, baskets: Any, customer_ids: Sequence[int]
) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    wanted = sorted(set(customer_ids))
    for at in range(0, len(wanted), _IN_CHUNK):
        query = (
            select(baskets.c.customer_id, baskets.c.item)
            .where(baskets.c.customer_id.in_(wanted[at : at + _IN_CHUNK]))
            .distinct()
        )
        for cid, item in connection.execute(query):
            found[int(cid)].add(str(item))
    return found


@requires(Action.READ, customer="customer_ids")
def recommendations(
    crm: CRM,
    customer_ids: Sequence[int],
    *,
    limit: int = 5,
    level: str = "sku",
    min_support: float = 0.01,
    min_confidence: float = 0.1,
    min_lift: float = 1.0,
    as_of: datetime | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[int, list[Offer]]:
    """Per customer id: up to ``limit`` cross-sell offers, then the up-sell offers.

    The rules are computed once for the call over every customer's purchases (the
    aggregate, as the RFM quintiles are); what comes back concerns only the
    customers asked for, each of whom the principal must be allowed to read.
    Up-sell needs ``level="sku"`` (it is empty for categories).
    """
    chosen = check_level(level)
    count = check_limit(limit)
    thresholds = check_thresholds(min_support, min_confidence, min_lift, 3)
    moment = resolve_as_of(crm, as_of)
    with (
        crm.reading(ctx) as uow,
        basket_table(uow.connection, crm, chosen, as_of=moment, by_customer=True) as b,
    ):
        analysis = analyse(uow.connection, b, chosen, thresholds)
        bought = _bought(uow.connection, b, customer_ids)
        prices = sku_prices(uow.connection, crm, moment) if chosen == "sku" else {}
    return {
        cid: cross_sell(analysis, bought.get(cid, set()), count)
        + up_sell(prices, bought.get(cid, set()))
        for cid in customer_ids
    }


@requires(Action.READ, customer="customer_id")
def recommend(
    crm: CRM,
    customer_id: int,
    *,
    limit: int = 5,
    level: str = "sku",
    min_support: float = 0.01,
    min_confidence: float = 0.1,
    min_lift: float = 1.0,
    as_of: datetime | None = None,
    ctx: UnitOfWork | None = None,
) -> list[Offer]:
    """The next best offers for one customer (:func:`recommendations`).

    Raises NotFoundError for an unknown customer.
    """
    crm.customers.get(customer_id, ctx=ctx)
    return recommendations(
        crm,
        [customer_id],
        limit=limit,
        level=level,
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        as_of=as_of,
        ctx=ctx,
    )[customer_id]


@requires(Action.READ, scoped=True)  # only customers the principal may read
def likely_buyers(
    crm: CRM,
    item: str,
    *,
    level: str = "sku",
    limit: int = 100,
    min_support: float = 0.01,
    min_confidence: float = 0.1,
    min_lift: float = 1.0,
    as_of: datetime | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Customers a rule recommends ``item`` to (they have not bought it), best rule first.

    Each: ``customer_id``, ``because`` (the rule's antecedent), ``confidence``, ``lift``;
    at most ``limit`` (1..100000), by confidence, lift, then customer id.
    """
    if not isinstance(item, str) or not item:
        raise ValidationError("item: must be a non-empty string", field="item", value=item)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise ValidationError(
            f"limit: must be an integer from 1 to 100000, got {limit!r}", field="limit"
        )
    chosen = check_level(level)
    thresholds = check_thresholds(min_support, min_confidence, min_lift, 3)
    moment = resolve_as_of(crm, as_of)
    found: dict[int, dict[str, Any]] = {}
    with (
        crm.reading(ctx) as uow,
        basket_table(uow.connection, crm, chosen, as_of=moment, by_customer=True) as b,
    ):
        analysis = analyse(uow.connection, b, chosen, thresholds)
        owners = select(b.c.customer_id).where(b.c.item == item)
        for rule in (r for r in analysis.rules if r.consequent == (item,)):
            query = (
                select(b.c.customer_id)
                .where(
                    b.c.item.in_(rule.antecedent),
                    b.c.customer_id.not_in(owners),
                    crm.access.where(b.c.customer_id, ctx=uow),
                )
                .group_by(b.c.customer_id)
                .having(func.count(func.distinct(b.c.item)) == len(rule.antecedent))
            )
            for (cid,) in uow.connection.execute(query):
                found.setdefault(
                    int(cid),
                    {
                        "customer_id": int(cid),
                        "because": list(rule.antecedent),
                        "confidence": round(rule.confidence, 6),
                        "lift": round(rule.lift, 6),
                    },
                )
    ranked = sorted(found.values(), key=lambda f: (-f["confidence"], -f["lift"], f["customer_id"]))
    return ranked[:limit]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
