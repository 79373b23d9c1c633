"""crmcore: a plugin-based CRM framework and SDK.

The public API is what this module exports: :class:`CRM`, the entities,
the errors, the access-control names (:class:`Principal`, :class:`Role`,
:class:`Action`), the audit entry, report charts, domain events and the
HTTP mapping of errors. Everything else is reached through a CRM object or,
for plugin authors, through :mod:`crmcore.hooks`.
"""

from crmcore.access import AccessDeniedError, Action, Principal, Role
from crmcore.app import CRM
from crmcore.audit import AuditEntry
from crmcore.config import Config, load_config
from crmcore.entities import (
    Channel,
    Consent,
    Customer,
    CustomerChange,
    CustomerKind,
    Direction,
    Gender,
    Interaction,
    InteractionKind,
    Item,
    LifecycleEvent,
    Stage,
)
from crmcore.errors import (
    ConfigError,
    ConflictError,
    CRMError,
    DeliveryError,
    NotFoundError,
    PluginError,
    StorageError,
    TransitionError,
    ValidationError,
    ValidationErrors,
)
from crmcore.events import Event
from crmcore.http import http_status
from crmcore.pagination import Page
from crmcore.reporting import ReportChart
from crmcore.serialization import from_dict, to_dict
from crmcore.signals import ChurnSignal, Period
from crmcore.unit_of_work import UnitOfWork

__version__ = "0.1.0"

__all__ = [
    "CRM",
    "AccessDeniedError",
    "Action",
    "AuditEntry",
    "CRMError",
    "Channel",
    "ChurnSignal",
    "Config",
    "ConfigError",
    "ConflictError",
    "Consent",
    "Customer",
    "CustomerChange",
    "CustomerKind",
    "DeliveryError",
    "Direction",
    "Event",
    "Gender",
    "Interaction",
    "InteractionKind",
    "Item",
    "LifecycleEvent",
    "NotFoundError",
    "Page",
    "Period",
    "PluginError",
    "Principal",
    "ReportChart",
    "Role",
    "Stage",
    "StorageError",
    "TransitionError",
    "UnitOfWork",
    "ValidationError",
    "ValidationErrors",
    "__version__",
    "from_dict",
    "http_status",
    "load_config",
    "to_dict",
]
