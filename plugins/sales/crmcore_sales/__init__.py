"""crmcore-sales: opportunities, pipelines, forecast, targets, contracts and payment collection.

Service functions live in :mod:`crmcore_sales.deals` (opportunities),
:mod:`crmcore_sales.stages` (stage moves, win, lose, reopen),
:mod:`crmcore_sales.contracts` (contracts, schedules, payments),
:mod:`crmcore_sales.receivables` (ageing and the sweep),
:mod:`crmcore_sales.forecast`, :mod:`crmcore_sales.funnel` and
:mod:`crmcore_sales.performance` (aggregates in SQL). Hook implementations are
in :mod:`crmcore_sales.plugin`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
