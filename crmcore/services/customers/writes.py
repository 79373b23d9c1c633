"""Writing customers: create (one or many, streamed), update and delete."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import (
    delete,
    insert,
    update,
)

from crmcore.access import Action
from crmcore.audit import AuditEntry, acting_user, redact
from crmcore.dry_run import unit_or_dry_run
from crmcore.errors import (
    ConflictError,
    CRMError,
    ValidationError,
    ValidationErrors,
)
from crmcore.events import emitters
from crmcore.model.entities import (
    Customer,
    CustomerChange,
    LifecycleEvent,
    stamped,
)
from crmcore.model.serialization import to_dict
from crmcore.security.stored_keys import IdentityKeys
from crmcore.storage.batches import numbered_batches
from crmcore.storage.bulk import insert_rows
from crmcore.storage.ids import allocate_ids
from crmcore.storage.tables import customer_tags, customers
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    pass
from crmcore.errors import RejectHandler
from crmcore.services.customers.base import CustomerServiceBase
from crmcore.services.customers.bulk_updates import apply_changes, changed_fields, check_changes
from crmcore.services.customers.external_ids import PendingExternalIds, split_external_ids
from crmcore.services.customers.keys import KEY_LABELS, duplicate_error, find_existing
from crmcore.services.customers.validation import coerce_customer, validate_customer
from crmcore.services.lifecycle import record_lifecycle_events
from crmcore.storage.records import customer_to_row

if TYPE_CHECKING:
    pass


class CustomerWrites(CustomerServiceBase):
    """Writing customers (part of ``CustomerService``)."""

    def create(
        self,
        customer: Customer | Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Customer:
        """Validate and store one customer; return it with its id and timestamps.

        Raises ValidationError (naming the field), or ConflictError naming the
        existing customer when the email, phone or organisation name is taken.
        """
        try:
            created = self.create_many([customer], actor=actor, ctx=ctx)
        except (ValidationError, ConflictError) as exc:
            message = str(exc)
            if message.startswith("customers[0]: "):
                exc.args = (message.removeprefix("customers[0]: "),)
            raise
        return created[0]

    def create_many(
        self,
        items: Iterable[Customer | Mapping[str, Any]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        batch_size: int = 500,
        on_reject: RejectHandler | None = None,
        keep: bool = True,
    ) -> list[Customer]:
        """Store many customers in one transaction, streamed in batches.

        The input is consumed lazily; hooks run once per batch. By default the
        first invalid or duplicate customer aborts everything (nothing is
        stored). With ``on_reject`` each bad customer is handed to it with its
        position and the error, and the rest are stored. ``keep=False``
        returns an empty list instead of collecting what was stored (for
        imports too large to hold in memory).
        """
        batches = numbered_batches(items, batch_size)
        stored: list[Customer] = []
        with self._crm.unit_of_work(actor, ctx) as uow:
            for batch in batches:
                created = self._create_batch(uow, batch, on_reject)
                if keep:
                    stored.extend(created)
        return stored

    def _create_batch(
        self, uow: UnitOfWork, batch: Sequence[tuple[int, Any]], on_reject: RejectHandler | None
    ) -> list[Customer]:
        validator = self._crm.attributes_validator
        limits = self._crm.config.json_limits
        region = self._crm.config.default_region
        good: list[tuple[int, Any, Customer, IdentityKeys]] = []
        seen: dict[tuple[str, str], int] = {}
        external = PendingExternalIds(self._crm)
        for position, item in batch:
            try:
                data, external_ids = split_external_ids(item)
                customer = self._owned_by_agent(coerce_customer(data))
                keys, errors = validate_customer(customer, uow.now, validator, limits, region)
                if errors:
                    raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
                assert keys is not None
                keys = keys.blinded(self._crm.cipher)
                self._crm.access.check(Action.WRITE, customer, ctx=uow)
                for pair in keys.pairs():
                    if pair in seen:
                        raise ConflictError(
                            f"{KEY_LABELS[pair[0]]} {keys.shown(*pair)!r} is also used by "
                            f"customers[{seen[pair]}] "
                            "in the same batch"
                        )
                external.keep(position, external_ids)
                for pair in keys.pairs():
                    seen[pair] = position
            except CRMError as exc:
                self._reject(on_reject, position, item, exc)
                continue
            good.append((position, item, customer, keys))

        existing = find_existing(uow.connection, [k for *_, k in good])
        external_taken = external.refused(uow)
        kept: list[tuple[int, Any, Customer, IdentityKeys]] = []
        for position, item, customer, keys in good:
            clash = next(((col, v) for col, v in keys.pairs() if (col, v) in existing), None)
            if clash is not None:
                holder = existing[clash]
                shown = self._crm.access.may_see(holder, ctx=uow)
                error = duplicate_error(clash, holder, keys, visible=shown)
                self._reject(on_reject, position, item, error)
                continue
            if position in external_taken:
                self._reject(on_reject, position, item, external_taken[position])
                continue
            kept.append((position, item, customer, keys))
        kept = self._run_plugin_validation(uow, kept, on_reject)
        if not kept:
            return []

        ids = allocate_ids(uow.connection, customers, len(kept))
        if self._crm.config.pool.assignment != "none":  # [pool] assignment: an owner by turn
            kept = [
                (
                    p,
                    item,
                    c if c.owner else attrs.evolve(c, owner=self._crm.pool.assigned_owner(i)),
                    k,
                )
                for i, (p, item, c, k) in zip(ids, kept, strict=True)
            ]
        cipher = self._crm.cipher
        rows = [
            customer_to_row(c, k, uow.now, cipher, new_id)
            for new_id, (_, _, c, k) in zip(ids, kept, strict=True)
        ]
        insert_rows(uow.connection, customers, rows)
        created: list[Customer] = []
        tag_rows: list[dict[str, Any]] = []
        events: list[LifecycleEvent] = []
        for new_id, row, (_, item, customer, _) in zip(ids, rows, kept, strict=True):
            stored = stamped(
                customer,
                customer is not item,
                id=new_id,
                name=row["name"],
                email=customer.email.strip() if customer.email else None,
                phone=customer.phone.strip() if customer.phone else None,
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            created.append(stored)
            tag_rows.extend({"customer_id": new_id, "tag": t} for t in customer.tags)
            events.append(
                LifecycleEvent(
                    customer_id=new_id,
                    to_stage=customer.stage,
                    at=row["created_at"],
                    reason="created",
                    actor=acting_user(uow),
                )
            )
        if tag_rows:
            insert_rows(uow.connection, customer_tags, tag_rows)
        external.store(uow, ((p, cid) for cid, (p, *_) in zip(ids, kept, strict=True)))
        emitters.customers_created(uow, created)
        record_lifecycle_events(uow, events)
        self._crm.audit.record_batch(
            uow,
            "customer.create",
            "customer",
            [(c.id, c.id, {"stage": c.stage.value}) for c in created],
        )
        self._crm.call_hook("crm_customers_created", ctx=uow, customers=created)
        self._crm.call_hook("crm_lifecycle_changed", ctx=uow, events=events)
        return created

    def update(
        self,
        customer_id: int,
        changes: Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> CustomerChange:
        """Change some fields of a customer; return before, after and the changed field names.

        ``changes`` maps field names to new values (JSON-style values are
        accepted: ISO dates, decimal strings). ``consent`` and ``attributes``
        are merged into the stored ones; an attribute set to ``None`` is
        removed. ``stage`` cannot be changed here: use ``crm.lifecycle.move``.
        """
        changes = check_changes(changes)
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.WRITE, before, ctx=uow)
            after = apply_changes(before, changes, uow.now.isoformat())
            self._crm.access.check(Action.WRITE, after, ctx=uow)
            keys, errors = validate_customer(
                after,
                uow.now,
                self._crm.attributes_validator,
                self._crm.config.json_limits,
                self._crm.config.default_region,
            )
            if errors:
                raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
            assert keys is not None
            keys = keys.blinded(self._crm.cipher)
            changed = changed_fields(before, after)
            if not changed:
                return CustomerChange(before=before, after=before, changed=())
            existing = find_existing(uow.connection, [keys], exclude_id=customer_id)
            for pair in keys.pairs():
                if pair in existing:
                    raise duplicate_error(pair, existing[pair], keys)
            self._validate_with_plugins(uow, after)
            row = customer_to_row(after, keys, uow.now, self._crm.cipher, customer_id)
            row.pop("created_at")
            row.pop("id")
            uow.connection.execute(
                update(customers).where(customers.c.id == customer_id).values(row)
            )
            if "tags" in changed:
                uow.connection.execute(
                    delete(customer_tags).where(customer_tags.c.customer_id == customer_id)
                )
                if after.tags:
                    uow.connection.execute(
                        insert(customer_tags),
                        [{"customer_id": customer_id, "tag": t} for t in after.tags],
                    )
            after = self._get(uow.connection, customer_id)
            change = CustomerChange(before=before, after=after, changed=changed)
            old_values, new_values = to_dict(before), to_dict(after)
            diff = {
                name: {"from": redact(name, old_values[name]), "to": redact(name, new_values[name])}
                for name in changed
            }
            self._crm.audit.record(
                uow,
                [
                    AuditEntry(
                        "customer.update", "customer", customer_id, customer_id, {"changed": diff}
                    )
                ],
            )
            emitters.customers_updated(uow, [change])
            self._crm.call_hook("crm_customers_updated", ctx=uow, changes=[change])
        return change

    def delete(
        self,
        customer_id: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        dry_run: bool = False,
    ) -> Customer:
        """Delete a customer with its interactions and history; return what was deleted.

        Plugins are told first (``crm_customers_deleted``) so they can remove
        their rows in the same transaction. ``dry_run=True`` does all of it
        (checks and hooks included), rolls it back and returns the customer
        that would go (:mod:`crmcore.dry_run`).
        """
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.DELETE, customer, ctx=uow)
            emitters.customers_removed(uow, "customer.deleted", [customer_id])
            self._crm.call_hook("crm_customers_deleted", ctx=uow, customers=[customer])
            uow.connection.execute(delete(customers).where(customers.c.id == customer_id))
            self._crm.audit.record(
                uow, [AuditEntry("customer.delete", "customer", customer_id, customer_id)]
            )
        return customer
