"""Hooks the loyalty plugin publishes for other plugins (added through ``crm_add_hookspecs``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def loyalty_tier_changed(ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """React to members moving between tiers.

    Called inside the unit of work that changed the tiers (enrolment,
    leaving, ``evaluate_tiers``), once per batch of changes. Each mapping
    holds ``customer_id`` (int), ``from_tier`` and ``to_tier`` (str or
    ``None`` for no tier), ``at`` (aware datetime) and ``reason`` (str).
    Write through ``ctx.connection``; raising rolls the whole operation back.
    """
