"""crmcore-example: a complete, small crmcore plugin that counts touches per customer.

Every hook of crmcore is implemented in :mod:`crmcore_example.plugin`; the
work is done in :mod:`crmcore_example.service`. Read ``docs/plugins.md`` of
crmcore for the walk-through.
"""

__version__ = "0.1.0"
