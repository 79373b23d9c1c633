"""Customers: validation, identity keys, reading, writing and privacy, composed as one service.

``crm.customers`` is a :class:`CustomerService`.
"""

from crmcore.errors import RejectHandler
from crmcore.security.stored_keys import IdentityKeys
from crmcore.services.customers.service import CustomerService
from crmcore.services.customers.validation import validate_customer

__all__ = ["CustomerService", "IdentityKeys", "RejectHandler", "validate_customer"]
