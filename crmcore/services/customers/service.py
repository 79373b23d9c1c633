"""The customer service: the Python API behind ``crm customers``, one class built of its parts."""

from __future__ import annotations

from crmcore.services.customers.bulk_updates import CustomerBulkUpdates
from crmcore.services.customers.duplicates import CustomerDuplicates
from crmcore.services.customers.external_ids import CustomerExternalIds
from crmcore.services.customers.merge import CustomerMerge
from crmcore.services.customers.privacy import CustomerPrivacy


class CustomerService(
    CustomerMerge, CustomerBulkUpdates, CustomerExternalIds, CustomerPrivacy, CustomerDuplicates
):
    """Customers: create, read, update, delete, merge, duplicates, search, profile, export, erase.

    Get it as ``crm.customers``. Every method checks the acting principal
    (``crm.as_user(...)``) through :mod:`crmcore.access`; ``ctx=`` joins a
    caller's unit of work. The parts live in :mod:`.writes`, :mod:`.merge`,
    :mod:`.reads`, :mod:`.privacy` and :mod:`.duplicates`; the shared state in :mod:`.base`.
    """


__all__ = ["CustomerService"]
