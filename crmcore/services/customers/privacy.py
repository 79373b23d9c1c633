"""A customer's 360° view, export and erasure, and the re-encryption of every customer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    select,
)

from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.dry_run import unit_or_dry_run
from crmcore.events import emitters
from crmcore.events.outbox import redact_customer_events
from crmcore.model.serialization import to_dict
from crmcore.services.accounts import export_account_rows
from crmcore.services.erasure import anonymise, check_vacuum_mode, purge_after_erasure
from crmcore.storage.records import interaction_from_row
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.services.key_rotation import RotationProgress
from crmcore.services.customers.reads import CustomerReads

if TYPE_CHECKING:
    from crmcore.services.key_rotation import RotationProgress


class CustomerPrivacy(CustomerReads):
    """The 360° view, export, erasure and re-encryption (part of ``CustomerService``)."""

    def rotate_encryption(
        self,
        *,
        actor: str | None = None,
        batch_size: int = 1000,
        on_batch: Callable[[RotationProgress], None] | None = None,
        unreadable: str | None = None,
    ) -> int:
        """Re-seal every customer with the current key and recompute the blind indexes.

        Rows sealed with an old key (listed in ``CRM_ENCRYPTION_OLD_KEYS``),
        rows stored in plaintext before encryption was enabled and identity
        keys in an older index form are all brought to the current key and
        scheme, one transaction per ``batch_size`` customers; rows already
        current are left alone, so running it again after a kill resumes.
        Then storage is compacted. Returns the number of customers rewritten.
        See :func:`crmcore.services.key_rotation.rotate_keys` for ``on_batch``,
        ``unreadable`` and the ConflictError naming customers that would
        share a key.
        """
        from crmcore.services.key_rotation import rotate_keys

        result = rotate_keys(
            self._crm,
            actor=actor,
            batch_size=batch_size,
            on_batch=on_batch,
            unreadable=unreadable,
        )
        return result.rewritten

    def profile(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """The 360° view: customer, recent interactions, lifecycle and every plugin's section."""
        customer = self.get(customer_id, ctx=ctx)
        timeline = self._crm.interactions.timeline(customer_id, limit=20, ctx=ctx)
        sections = self._crm.collect("crm_customer_profile", crm=self._crm, customer=customer)
        return {
            "customer": to_dict(customer),
            "recent_interactions": [to_dict(i) for i in timeline.items],
            "interaction_count": timeline.total,
            "lifecycle": [to_dict(e) for e in self._crm.lifecycle.history(customer_id, ctx=ctx)],
            "plugins": sections,
        }

    def export(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """Everything held on one customer, from core and every plugin, JSON-safe."""
        from crmcore.storage.tables import interactions

        with self._crm.reading(ctx) as uow:
            customer = self._get(uow.connection, customer_id)
            self._crm.access.check(Action.EXPORT, customer, ctx=uow)
            rows = uow.connection.execute(
                select(interactions)
                .where(interactions.c.customer_id == customer_id)
                .order_by(interactions.c.occurred_at)
            ).all()

            data = {
                "customer": to_dict(customer),
                "interactions": [to_dict(interaction_from_row(r)) for r in rows],
                "lifecycle": [
                    to_dict(e) for e in self._crm.lifecycle.history(customer_id, ctx=uow)
                ],
                "relationships": export_account_rows(uow, customer_id),
                "external_ids": self._crm.customers.external_ids(customer_id, ctx=uow),
                "plugins": self._crm.collect(
                    "crm_export_customer", ctx=uow, customer_id=customer_id
                ),
            }
        return data

    def erase(
        self,
        customer_id: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        vacuum: str = "auto",
        dry_run: bool = False,
    ) -> None:
        """Right to erasure: every plugin erases its data, then core anonymises the customer.

        The customer row stays (anonymised) so that aggregates such as revenue
        keep adding up; what goes is listed in :func:`crmcore.services.erasure.anonymise`.
        ``vacuum`` says what happens to the old row versions once the erasure
        commits (:func:`crmcore.storage.engine.purge_old_versions`): ``"auto"``
        (vacuum the tables on PostgreSQL, checkpoint the WAL on SQLite),
        ``"full"`` (rewrite every table: VACUUM FULL / VACUUM) or ``"none"``.
        Inside a caller's unit of work (``ctx``) nothing is purged: that
        transaction has not committed yet. ``dry_run=True`` runs the whole
        erasure (access check and plugin hooks included) and rolls it back:
        an unknown or forbidden customer raises as it would, nothing changes.
        """
        check_vacuum_mode(vacuum)
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.ERASE, customer, ctx=uow)
            self._crm.call_hook("crm_erase_customer", ctx=uow, customer_id=customer_id)
            anonymise(uow, customer_id)
            redact_customer_events(uow, customer_id)
            emitters.customers_removed(uow, "customer.erased", [customer_id])
            self._crm.audit.redact_customer(uow, customer_id)
            self._crm.audit.record(
                uow, [AuditEntry("customer.erase", "customer", customer_id, customer_id)]
            )
        if ctx is None and not dry_run:
            purge_after_erasure(self._crm.engine, customer_id, vacuum)
