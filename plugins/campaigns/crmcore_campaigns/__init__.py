"""crmcore-campaigns: audiences, variants, control groups, reminders, budgets and uplift.

Service functions live in :mod:`crmcore_campaigns.campaigns` (create, show, list,
launch, stop, reminders), :mod:`crmcore_campaigns.results` (delivered, clicked,
converted, uplift, ROI) and :mod:`crmcore_campaigns.views` (KPIs, the 360° view).
The statistics are pure functions in :mod:`crmcore_campaigns.statistics`; the
random assignment in :mod:`crmcore_campaigns.assignment`. Hook implementations
are in :mod:`crmcore_campaigns.plugin`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
