"""Customer value: lifetime figures, profitability, value tiers, the Pareto set and CLV.

The functions live in modules named for what they hold; this module gathers
them under one name (``from crmcore_segmentation import value``):

* :mod:`.lifetime`: lifetime revenue (historic CLV), profit and its costs,
  predictive CLV (:func:`customer_values`, :func:`iter_customer_values`, :func:`set_costs`);
* :mod:`.tiers`: value tiers (:func:`tiers`, :func:`tier_members`, :func:`iter_tier_members`);
* :mod:`.pareto`: the Pareto set (:func:`pareto`, :func:`pareto_summary`,
  :func:`iter_pareto_members`).

Each module's docstring writes out its definitions (also in docs/plugins/segmentation.md).
"""

from __future__ import annotations

from crmcore_segmentation.lifetime import (
    CustomerValue,
    annuity_factor,
    customer_values,
    iter_customer_values,
    lifetime_query,
    predictive_clv,
    set_costs,
)
from crmcore_segmentation.pareto import (
    ParetoSet,
    ParetoSummary,
    iter_pareto_members,
    pareto,
    pareto_query,
    pareto_summary,
)
from crmcore_segmentation.tiers import (
    BASES,
    TIERS,
    TierSummary,
    iter_tier_members,
    measure_of,
    tier_members,
    tier_query,
    tiers,
    value_query,
)

__all__ = [
    "BASES",
    "TIERS",
    "CustomerValue",
    "ParetoSet",
    "ParetoSummary",
    "TierSummary",
    "annuity_factor",
    "customer_values",
    "iter_customer_values",
    "iter_pareto_members",
    "iter_tier_members",
    "lifetime_query",
    "measure_of",
    "pareto",
    "pareto_query",
    "pareto_summary",
    "predictive_clv",
    "set_costs",
    "tier_members",
    "tier_query",
    "tiers",
    "value_query",
]
