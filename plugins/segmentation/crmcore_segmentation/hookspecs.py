"""Hooks the segmentation plugin adds for other plugins (via ``crm_add_hookspecs``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, UnitOfWork


@hookspec
def segmentation_membership_changed(ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """Customers joined or left saved segments.

    Called for each refreshed segment that changed, once per batch of at
    most 500 changes (joins first, then leaves, each by customer id), inside
    the refresh's unit of work (``crm segments refresh``, ``define``), after
    the members and their history are written. Each change is a plain mapping:
    ``segment`` (the segment's key), ``customer_id``, ``joined`` (``True``
    joined, ``False`` left) and ``at`` (aware datetime, the refresh time).
    Write through ``ctx.connection``; raising rolls the refresh back.
    """


@hookspec
def segmentation_churn_alerts_raised(ctx: UnitOfWork, alerts: Sequence[Mapping[str, Any]]) -> None:
    """Churn early-warning alerts were raised: customers were moved to ``at_risk``.

    Called by ``apply_churn`` (``crm segments churn --apply``) inside its unit of work,
    once per batch of at most 500 alerts, after the lifecycle moves and the
    ``segmentation_churn_alerts`` rows are written. Each mapping holds
    ``customer_id``, ``score`` (float, 0-1), ``reasons`` (list of text) and
    ``at`` (aware datetime, the run's time). The activities plugin opens a
    retention call for the owner. Write through ``ctx.connection``; raising
    rolls the whole run back.
    """


@hookspec
def segmentation_fact_queries(crm: CRM) -> Mapping[str, Any] | None:
    """Offer per-customer facts that segment rules can test as ``fact.<name>``.

    Return a mapping of fact name (prefix it with your plugin's name:
    ``loyalty.points``) to a SQLAlchemy ``Select`` with exactly two
    columns, ``customer_id`` and ``value`` (at most one row per customer),
    built on ``crm.metadata`` tables. Rules are compiled to one SQL
    statement that outer-joins the facts they use, so facts stay in the
    database. Called outside any transaction when a rule is compiled.
    """


@hookspec(firstresult=True)
def segmentation_recommendations(
    crm: CRM, customer_ids: Sequence[int], limit: int
) -> Mapping[int, Sequence[Mapping[str, Any]]] | None:
    """Ask for the next best offers of customers (the segmentation plugin answers).

    Call it from another plugin as ``crm.call_hook("segmentation_recommendations",
    crm=crm, customer_ids=[...], limit=3)``; with the segmentation plugin installed
    the answer is a mapping of customer id to offers (at most ``limit`` cross-sell
    offers, then the up-sell ones), each a plain mapping: ``item`` (SKU), ``kind``
    (``cross_sell`` or ``up_sell``), ``because`` (the items that justify it),
    ``confidence`` and ``lift`` of the rule (``None`` for up-sell) and ``price``
    (up-sell). Without it the call returns ``None``. Runs its own read
    transaction, outside any unit of work; the acting principal of ``crm`` must
    be allowed to read every customer asked for (AccessDeniedError otherwise).
    """


@hookspec(firstresult=True)
def segmentation_likely_buyers(
    crm: CRM, item: str, limit: int
) -> Sequence[Mapping[str, Any]] | None:
    """Ask for the customers most likely to buy ``item`` (a SKU) who have not bought it.

    Campaigns target "likely to buy X" with it: ``crm.call_hook(
    "segmentation_likely_buyers", crm=crm, item="SKU-1", limit=500)``. The answer
    (segmentation plugin installed) is a list, best first, of mappings:
    ``customer_id``, ``because`` (the rule's antecedent), ``confidence``, ``lift``;
    only customers the principal of ``crm`` may read. ``None`` without the plugin.
    """
