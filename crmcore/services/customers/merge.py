"""Merging a duplicate customer into the one kept: every row moves, the duplicate's id resolves.

``crm.customers.merge(keep_id, duplicate_id)`` does, in one transaction:

1. checks: two different, existing, not erased customers; the acting
   principal may write the kept customer and delete the duplicate;
2. decides the kept customer's fields (:func:`merged_fields`);
3. moves core's rows from the duplicate to the kept customer
   (:data:`MOVED_TABLES`): interactions (and the contact person named on
   interactions), lifecycle history, grants (union), external ids,
   older tombstones, and the accounts rows (contacts, hierarchy, links,
   account team, relationship scores) through
   :func:`crmcore.services.accounts.move_account_rows`;
4. calls ``crm_customers_merged(ctx, kept, merged)`` so that every plugin moves
   or combines its rows;
5. deletes the duplicate's row (its remaining rows go by cascade) and writes
   a tombstone (``crm_customer_merges``): ``get(duplicate_id)`` and lookups
   by its external ids then find the kept customer;
6. updates the kept customer like :meth:`update` does (validation, unique
   keys, audit, ``crm_customers_updated``), then records a
   ``customer.merge`` audit entry and a ``customer.merged`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen
from sqlalchemy import delete, exists, insert, select, update

from crmcore.access import Action
from crmcore.audit import AuditEntry, acting_user
from crmcore.dry_run import unit_or_dry_run
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.model.entities import UPDATABLE_FIELDS, Consent, Customer
from crmcore.model.serialization import to_dict
from crmcore.services.accounts import move_account_rows
from crmcore.services.customers.writes import CustomerWrites
from crmcore.storage.records import merged_into
from crmcore.storage.tables import (
    audit_log,
    customer_external_ids,
    customer_grants,
    customer_merges,
    customers,
    interactions,
    lifecycle_events,
)
from crmcore.unit_of_work import UnitOfWork

#: The core tables whose rows move from the duplicate to the kept customer, by column.
MOVED_TABLES = (
    ("crm_interactions", "customer_id"),
    ("crm_interactions", "contact_id"),
    ("crm_lifecycle_events", "customer_id"),
    ("crm_customer_grants", "customer_id"),
    ("crm_customer_external_ids", "customer_id"),
    ("crm_customer_merges", "kept_id"),
)

_CHOICES = ("keep", "duplicate")


@frozen
class MergeResult:
    """What a merge did: the kept customer as stored, the merged id and the rows core moved."""

    kept: Customer
    merged_id: int
    #: Rows moved per ``table.column`` (grants: rows added to the kept customer). Tags
    #: are a field (:func:`merged_fields`).
    moved: Mapping[str, int]
    #: Fields whose value came from the duplicate.
    taken_from_duplicate: tuple[str, ...]


def check_choose(choose: object) -> dict[str, str]:
    """``choose`` validated: field name -> ``"keep"`` or ``"duplicate"``."""
    if choose is None:
        return {}
    if not isinstance(choose, Mapping):
        raise ValidationError(
            f"choose: expected a mapping of field to 'keep' or 'duplicate', got {choose!r}",
            field="choose",
        )
    checked: dict[str, str] = {}
    for name, side in choose.items():
        if name not in UPDATABLE_FIELDS:
            raise ValidationError(
                f"choose.{name}: not a field a merge can choose "
                f"(one of: {', '.join(UPDATABLE_FIELDS)})",
                field=f"choose.{name}",
            )
        if side not in _CHOICES:
            raise ValidationError(
                f"choose.{name}: {side!r} is not 'keep' or 'duplicate'", field=f"choose.{name}"
            )
        checked[str(name)] = str(side)
    return checked


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def merged_fields(
    keep: Customer, duplicate: Customer, choose: Mapping[str, str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The kept customer's new field values, and which fields came from the duplicate.

    A field named in ``choose`` takes the chosen side's value. Otherwise:
    ``tags`` are the union; ``attributes`` are merged, the kept customer's
    value winning on a shared key; ``consent`` flags are granted only when
    both customers granted them (a withdrawal on either record stands); every
    other field keeps the kept customer's value, or the duplicate's when the
    kept one is empty. ``stage`` is never changed by a merge.
    """
    kept_data, dup_data = to_dict(keep), to_dict(duplicate)
    changes: dict[str, Any] = {}
    taken: list[str] = []
    for name in UPDATABLE_FIELDS:
        side = choose.get(name)
        mine, theirs = kept_data[name], dup_data[name]
        if side == "duplicate":
            value = theirs
        elif side == "keep":
            value = mine
        elif name == "tags":
            value = sorted(set(mine) | set(theirs))
        elif name == "attributes":
            value = {**theirs, **mine}
        elif name == "consent":
            value = {f: bool(mine[f] and theirs[f]) for f in mine}
        else:
            value = theirs if _empty(mine) and not _empty(theirs) else mine
        if value != mine:
            changes[name] = value
            if value == theirs:
                taken.append(name)
    return changes, tuple(taken)


def _was_erased(uow: UnitOfWork, customer_id: int) -> bool:
    query = select(
        exists().where(
            audit_log.c.action == "customer.erase", audit_log.c.customer_id == customer_id
        )
    )
    return bool(uow.connection.execute(query).scalar())


_MOVABLE = {
    t.name: t for t in (interactions, lifecycle_events, customer_external_ids, customer_merges)
}


def _move(uow: UnitOfWork, table_name: str, column: str, keep_id: int, dup_id: int) -> int:
    table = _MOVABLE[table_name]
    result = uow.connection.execute(
        update(table).where(table.c[column] == dup_id).values({column: keep_id})
    )
    return result.rowcount or 0


def _union(uow: UnitOfWork, table: Any, key: str, keep_id: int, dup_id: int) -> int:
    """Copy the duplicate's ``key`` values (granted users) the kept customer lacks."""
    connection = uow.connection
    mine = set(
        connection.execute(select(table.c[key]).where(table.c.customer_id == keep_id)).scalars()
    )
    theirs = set(
        connection.execute(select(table.c[key]).where(table.c.customer_id == dup_id)).scalars()
    )
    missing = sorted(theirs - mine)
    if missing:
        connection.execute(insert(table), [{"customer_id": keep_id, key: v} for v in missing])
    return len(missing)


class CustomerMerge(CustomerWrites):
    """Merging duplicates (part of ``CustomerService``)."""

    def merge(
        self,
        keep_id: int,
        duplicate_id: int,
        *,
        choose: Mapping[str, str] | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        dry_run: bool = False,
    ) -> MergeResult:
        """Merge customer ``duplicate_id`` into ``keep_id``; return what was done.

        ``choose`` maps a field to ``"keep"`` or ``"duplicate"``; fields not
        named follow :func:`merged_fields`. Everything happens in one
        transaction (the module documentation lists the steps); any failure,
        a plugin's included, leaves both customers untouched. Refused with
        ValidationError when both ids are the same, NotFoundError when one
        does not exist (naming the customer a merged id now resolves to),
        ConflictError when one was erased, AccessDeniedError unless the
        acting user may write the kept customer and delete the duplicate.
        ``dry_run=True`` does it all and rolls back.
        """
        picked = check_choose(choose)
        for name, value in (("keep_id", keep_id), ("duplicate_id", duplicate_id)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{name}: expected a customer id, got {value!r}", field=name)
        if keep_id == duplicate_id:
            raise ValidationError(
                f"duplicate_id: cannot merge customer {keep_id} into itself", field="duplicate_id"
            )
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            keep = self._load_for_merge(uow, keep_id)
            duplicate = self._load_for_merge(uow, duplicate_id)
            self._crm.access.check(Action.WRITE, keep, ctx=uow)
            self._crm.access.check(Action.DELETE, duplicate, ctx=uow)
            changes, taken = merged_fields(keep, duplicate, picked)
            moved = self._move_rows(uow, keep_id, duplicate_id)
            expected = attrs.evolve(keep, **{k: v for k, v in changes.items() if k != "consent"})
            if "consent" in changes:
                expected = attrs.evolve(expected, consent=Consent(**changes["consent"]))
            self._crm.call_hook("crm_customers_merged", ctx=uow, kept=expected, merged=duplicate)
            uow.connection.execute(delete(customers).where(customers.c.id == duplicate_id))
            uow.connection.execute(
                insert(customer_merges).values(
                    merged_id=duplicate_id,
                    kept_id=keep_id,
                    merged_at=uow.now,
                    actor=acting_user(uow),
                )
            )
            stored = self.update(keep_id, changes, ctx=uow).after if changes else keep
            self._crm.audit.record(
                uow,
                [
                    AuditEntry(
                        "customer.merge",
                        "customer",
                        keep_id,
                        keep_id,
                        {"merged_id": duplicate_id, "from_duplicate": list(taken), "moved": moved},
                    )
                ],
            )
            uow.emit("customer.merged", keep_id, {"merged_id": duplicate_id})
        return MergeResult(
            kept=stored, merged_id=duplicate_id, moved=moved, taken_from_duplicate=taken
        )

    def _load_for_merge(self, uow: UnitOfWork, customer_id: int) -> Customer:
        try:
            customer = self._get(uow.connection, customer_id, lock=True)
        except NotFoundError:
            kept = merged_into(uow.connection, customer_id)
            if kept is not None:
                raise NotFoundError(
                    f"customer {customer_id} was already merged into customer {kept}"
                ) from None
            raise
        if _was_erased(uow, customer_id):
            raise ConflictError(
                f"customer {customer_id} was erased: an erased customer cannot be merged"
            )
        return customer

    def _move_rows(self, uow: UnitOfWork, keep_id: int, dup_id: int) -> dict[str, int]:
        moved: dict[str, int] = {}
        for table_name, column in MOVED_TABLES:
            key = f"{table_name}.{column}"
            if table_name == "crm_customer_grants":
                moved[key] = _union(uow, customer_grants, "user", keep_id, dup_id)
            else:
                moved[key] = _move(uow, table_name, column, keep_id, dup_id)
        moved.update(move_account_rows(uow, dup_id, keep_id))
        return moved


__all__ = ["MOVED_TABLES", "CustomerMerge", "MergeResult", "check_choose", "merged_fields"]
