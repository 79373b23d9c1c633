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
def segmentation_fact_queries(crm: CRM) -> Mapping[str, Any] | None:
    """Offer per-customer facts that segment rules can test as ``fact.<name>``.

    Return a mapping of fact name (prefix it with your plugin's name:
    ``loyalty.points``) to a SQLAlchemy ``Select`` with exactly two
    columns, ``customer_id`` and ``value`` (at most one row per customer),
    built on ``crm.metadata`` tables. Rules are compiled to one SQL
    statement that outer-joins the facts they use, so facts stay in the
    database. Called outside any transaction when a rule is compiled.
    """
