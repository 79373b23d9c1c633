"""crmcore-complaints: complaint handling with workflow, SLA clocks, compensation and analytics.

The public API: :class:`ComplaintService` (``ComplaintService(crm)``), the
:class:`Complaint` and :class:`HistoryEntry` values, the workflow's
:class:`State` and :class:`Severity`, and :mod:`crmcore_complaints.analytics`.
Hook implementations are in :mod:`crmcore_complaints.plugin`.
"""

__version__ = "0.1.0"

from crmcore_complaints.entities import Complaint, HistoryEntry
from crmcore_complaints.service import ComplaintService
from crmcore_complaints.workflow import TRANSITIONS, Severity, State

__all__ = [
    "TRANSITIONS",
    "Complaint",
    "ComplaintService",
    "HistoryEntry",
    "Severity",
    "State",
    "__version__",
]
