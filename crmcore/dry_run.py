"""Dry runs: do the whole operation in a transaction, then roll it back.

A dry run goes through the same code as the real operation (validation,
plugin hooks, the writes themselves), so what it reports is what the real
run would do; nothing of it is kept: the transaction is rolled back, and no
``crm_events_committed`` runs. Service functions take ``dry_run=True`` and
use :func:`rolled_back` in place of :meth:`crmcore.app.CRM.unit_of_work`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM


class _RolledBack(Exception):
    """Raised at the end of a dry run's body so that the unit of work rolls back."""


@contextmanager
def rolled_back(
    crm: CRM, actor: str | None = None, ctx: UnitOfWork | None = None
) -> Iterator[UnitOfWork]:
    """A unit of work whose writes are rolled back when the block ends, however it ends.

    Without ``ctx`` it is a transaction of its own; inside a caller's unit of
    work (``ctx``) it is a savepoint of that transaction, rolled back to.
    Errors raised in the block propagate as from
    :meth:`~crmcore.app.CRM.unit_of_work` (translated the same way).
    """
    if ctx is not None:
        events, rows = len(ctx.pending_events), len(ctx.outbox_rows)
        savepoint = ctx.connection.begin_nested()
        try:
            yield ctx
        finally:
            savepoint.rollback()
            del ctx.pending_events[events:]  # the dry run's events go with its writes
            del ctx.outbox_rows[rows:]
        return
    try:
        with crm.unit_of_work(actor) as uow:
            yield uow
            raise _RolledBack
    except _RolledBack:
        pass


def unit_or_dry_run(
    crm: CRM, actor: str | None, ctx: UnitOfWork | None, dry_run: bool
) -> AbstractContextManager[UnitOfWork]:
    """``crm.unit_of_work(actor, ctx)``, or :func:`rolled_back` when ``dry_run``."""
    if dry_run:
        return rolled_back(crm, actor, ctx)
    return crm.unit_of_work(actor, ctx)


__all__ = ["rolled_back", "unit_or_dry_run"]
