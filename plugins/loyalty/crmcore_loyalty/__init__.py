"""crmcore-loyalty: membership, an append-only points ledger, tiers, redemption and expiry.

Hook implementations live in :mod:`crmcore_loyalty.plugin`; the Python API
is :mod:`crmcore_loyalty.service`. See ``docs/plugins/loyalty.md``.
"""

__version__ = "0.1.0"
