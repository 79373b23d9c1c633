"""crmcore-surveys: satisfaction surveys, scoring and closing the loop for crmcore.

The hook implementations are in :mod:`crmcore_surveys.plugin`; the work is in
:mod:`crmcore_surveys.catalog` (definitions and versions),
:mod:`crmcore_surveys.distribution` (invitations and samples),
:mod:`crmcore_surveys.responses` (recording answers) and
:mod:`crmcore_surveys.scoring` (NPS, CSAT, CES, dimensions, index, gaps, drivers).
"""

__version__ = "0.1.0"
