"""crmcore-complaints: complaint handling with workflow, SLA clocks, compensation and analytics.

The public API: :class:`ComplaintService` (``ComplaintService(crm)``), the
:class:`Complaint` and :class:`HistoryEntry` values, the workflow's
:class:`State` and :class:`Severity`, and :mod:`crmcore_complaints.analytics`.
Hook implementations are in :mod:`crmcore_complaints.plugin`.

The names load on first use (PEP 562): ``crm --help`` imports the plugin
module, which must not pull in the service and SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from crmcore_complaints.entities import Complaint, HistoryEntry
    from crmcore_complaints.service import ComplaintService
    from crmcore_complaints.workflow import TRANSITIONS, Severity, State

_WHERE = {
    "Complaint": "crmcore_complaints.entities",
    "HistoryEntry": "crmcore_complaints.entities",
    "ComplaintService": "crmcore_complaints.service",
    "TRANSITIONS": "crmcore_complaints.workflow",
    "Severity": "crmcore_complaints.workflow",
    "State": "crmcore_complaints.workflow",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'crmcore_complaints' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "TRANSITIONS",
    "Complaint",
    "ComplaintService",
    "HistoryEntry",
    "Severity",
    "State",
    "__version__",
]
