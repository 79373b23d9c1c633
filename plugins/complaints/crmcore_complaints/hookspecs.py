"""Hooks the complaints plugin publishes for other plugins (added through ``crm_add_hookspecs``).

Payloads are batches of plain mappings, so that implementing plugins need not
import this one. Implement them with ``@hookimpl(optionalhook=True)`` so that
your plugin still loads when the complaints plugin is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def complaints_compensation_issued(
    ctx: UnitOfWork, compensations: Sequence[Mapping[str, Any]]
) -> None:
    """Compensation was granted to customers for their complaints.

    Called inside the unit of work that resolved the complaint, once per
    resolution with every compensation it grants. Each mapping holds
    ``complaint_id``, ``customer_id``, ``kind`` (``"points"``, ``"refund"``,
    ``"voucher"``, ``"gift"`` or ``"other"``), ``points`` (int or ``None``),
    ``amount`` (Decimal or ``None``), ``currency`` (str or ``None``),
    ``reason`` (str) and ``idempotency_key`` (str, unique per compensation:
    ``"complaints:compensation:<id>"``). The loyalty plugin turns points into
    ledger entries. Write through ``ctx.connection``; raising rolls the
    resolution back.
    """


@hookspec
def complaints_sla_breached(ctx: UnitOfWork, breaches: Sequence[Mapping[str, Any]]) -> None:
    """Complaints breached an SLA target: escalate them.

    Called inside the unit of work of the sweep (``crm complaints sweep``),
    once per sweep that found new breaches, with each breach exactly once in
    the life of a complaint: a later sweep never reports it again. Each
    mapping holds ``complaint_id``, ``customer_id``, ``severity``, ``target``
    (``"first_response"`` or ``"resolution"``), ``due_at`` (aware datetime:
    the last instant the target was still met) and ``detected_at`` (the
    sweep's time). Raising rolls the sweep back (nothing is marked).
    """


@hookspec
def complaints_progress(ctx: UnitOfWork, updates: Sequence[Mapping[str, Any]]) -> None:
    """Tell the customer how their complaint progresses (a messaging plugin notifies them).

    Called inside the unit of work that moved the complaint, when it reaches
    ``acknowledged`` or ``resolved``, with one mapping per complaint moved:
    ``complaint_id``, ``customer_id``, ``state`` (``"acknowledged"`` or
    ``"resolved"``), ``reference`` (the product or order it is about, or
    ``None``), ``category``, ``severity`` and ``at`` (aware datetime of the
    move). The resolution text is not included (it may hold staff notes).
    Raising rolls the move back.
    """
