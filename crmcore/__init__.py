"""crmcore: a plugin-based CRM framework and SDK.

The public API is what this module exports: :class:`CRM`, the entities,
the errors, the access-control names (:class:`Principal`, :class:`Role`,
:class:`Action`), the audit entry, report charts, domain events and the
HTTP mapping of errors. Everything else is reached through a CRM object or,
for plugin authors, through :mod:`crmcore.hooks`.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore.access import AccessDeniedError, Action, Principal, Role
    from crmcore.app import CRM
    from crmcore.audit import AuditEntry
    from crmcore.config import Config, load_config
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
    from crmcore.model.entities import (
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
    from crmcore.model.pagination import Page
    from crmcore.model.serialization import from_dict, to_dict
    from crmcore.model.signals import ChurnSignal, Period
    from crmcore.reporting import ReportChart
    from crmcore.unit_of_work import UnitOfWork

# Names are imported on first use (PEP 562), so that `crm --version` and
# modules such as crmcore.errors load without SQLAlchemy and the services.
_LAZY: dict[str, str] = {
    "AccessDeniedError": "crmcore.access",
    "Action": "crmcore.access",
    "Principal": "crmcore.access",
    "Role": "crmcore.access",
    "CRM": "crmcore.app",
    "AuditEntry": "crmcore.audit",
    "Config": "crmcore.config",
    "load_config": "crmcore.config",
    "Channel": "crmcore.model.entities",
    "Consent": "crmcore.model.entities",
    "Customer": "crmcore.model.entities",
    "CustomerChange": "crmcore.model.entities",
    "CustomerKind": "crmcore.model.entities",
    "Direction": "crmcore.model.entities",
    "Gender": "crmcore.model.entities",
    "Interaction": "crmcore.model.entities",
    "InteractionKind": "crmcore.model.entities",
    "Item": "crmcore.model.entities",
    "LifecycleEvent": "crmcore.model.entities",
    "Stage": "crmcore.model.entities",
    "ConfigError": "crmcore.errors",
    "ConflictError": "crmcore.errors",
    "CRMError": "crmcore.errors",
    "DeliveryError": "crmcore.errors",
    "NotFoundError": "crmcore.errors",
    "PluginError": "crmcore.errors",
    "StorageError": "crmcore.errors",
    "TransitionError": "crmcore.errors",
    "ValidationError": "crmcore.errors",
    "ValidationErrors": "crmcore.errors",
    "Event": "crmcore.events",
    "http_status": "crmcore.http",
    "Page": "crmcore.model.pagination",
    "ReportChart": "crmcore.reporting",
    "from_dict": "crmcore.model.serialization",
    "to_dict": "crmcore.model.serialization",
    "ChurnSignal": "crmcore.model.signals",
    "Period": "crmcore.model.signals",
    "UnitOfWork": "crmcore.unit_of_work",
}


def __getattr__(name: str) -> Any:
    """Import a public name from the module that defines it, on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crmcore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
