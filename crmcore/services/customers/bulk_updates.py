"""Updating many customers in one transaction, in batches: what ``update`` does, per batch.

``crm.customers.update_many([(customer_id, changes), ...])`` applies each
change exactly as :meth:`~crmcore.services.customers.writes.CustomerWrites.update`
would (same merge of ``consent`` and ``attributes``, same validation, access
checks before and after, unique keys, plugin checks, one ``customer.update``
audit entry with the changed fields per customer, ``customer.updated``
events and ``crm_customers_updated``), with a few queries per batch instead
of a dozen per customer. Imports with ``update_existing`` use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import bindparam, delete, select, update

from crmcore.access import Action
from crmcore.audit import AuditEntry, redact
from crmcore.errors import (
    ConflictError,
    CRMError,
    NotFoundError,
    RejectHandler,
    ValidationError,
    ValidationErrors,
    with_location,
)
from crmcore.events import emitters
from crmcore.model.entities import UPDATABLE_FIELDS, Customer, CustomerChange
from crmcore.model.limits import INT64_MAX
from crmcore.model.serialization import from_dict, to_dict
from crmcore.security.encryption import UnreadableError
from crmcore.security.stored_keys import IdentityKeys
from crmcore.services.customers.base import IN_CHUNK, CustomerServiceBase
from crmcore.services.customers.keys import KEY_LABELS, duplicate_error, find_existing
from crmcore.services.customers.validation import validate_customer
from crmcore.storage.batches import numbered_batches
from crmcore.storage.bulk import insert_rows
from crmcore.storage.records import customer_from_row, customer_to_row
from crmcore.storage.tables import customer_tags, customers
from crmcore.unit_of_work import UnitOfWork

#: The fields whose change moves each identity key.
_MOVED_BY = {
    "email_norm": frozenset({"email"}),
    "phone_norm": frozenset({"phone"}),
    "org_norm": frozenset({"company_name", "name", "kind"}),
}
#: One planned change: (position, item, before, after, keys, changed field names).
_Plan = tuple[int, Any, Customer, Customer, IdentityKeys, tuple[str, ...]]


def check_changes(changes: object) -> Mapping[str, Any]:
    """``changes`` as ``update`` accepts them; ValidationError naming the bad field."""
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError("changes: give at least one field to change", field="changes")
    unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
    if "stage" in unknown:
        raise ValidationError(
            "stage: change it with crm.lifecycle.move (or `crm lifecycle move`), not update",
            field="stage",
        )
    if unknown:
        raise ValidationError(f"{unknown[0]}: not a field that can be updated", field=unknown[0])
    return changes


def apply_changes(before: Customer, changes: Mapping[str, Any], now: str) -> Customer:
    """``before`` with ``changes``: ``consent`` and ``attributes`` merged (``None`` removes)."""
    data = to_dict(before)
    for name, value in changes.items():
        new_value = value
        if attrs.has(type(value)):
            new_value = to_dict(value)
        elif isinstance(value, tuple | set | frozenset):
            new_value = list(value)
        if name == "consent" and isinstance(new_value, Mapping):
            new_value = {**data["consent"], **new_value}
        elif name == "attributes" and isinstance(new_value, Mapping):
            merged = {**data["attributes"], **new_value}
            new_value = {k: v for k, v in merged.items() if v is not None}
        data[name] = new_value
    data["updated_at"] = now
    return from_dict(data, Customer)


def changed_fields(before: Customer, after: Customer) -> tuple[str, ...]:
    """The fields that differ, ``updated_at`` left out."""
    return tuple(
        f.name
        for f in attrs.fields(Customer)
        if f.name != "updated_at" and getattr(before, f.name) != getattr(after, f.name)
    )


class CustomerBulkUpdates(CustomerServiceBase):
    """Updating many customers (part of ``CustomerService``)."""

    def update_many(
        self,
        changes: Iterable[tuple[int, Mapping[str, Any]]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        batch_size: int = 500,
        on_reject: RejectHandler | None = None,
    ) -> list[CustomerChange]:
        """Apply ``(customer_id, changes)`` pairs in one transaction, as ``update`` would.

        Returns one CustomerChange per pair not rejected, in input order
        (``changed`` empty when nothing changed: nothing is written for it).
        By default the first bad pair aborts everything; with ``on_reject``
        each bad pair is handed to it with its position and the error
        (``updates[3]: ...`` without it) and the others are applied. A
        customer may appear once per batch. Errors are those of ``update``;
        a duplicate key names its holder only to whom may see it.
        """
        batches = numbered_batches(changes, batch_size)
        result: list[CustomerChange] = []
        with self._crm.unit_of_work(actor, ctx) as uow:
            for batch in batches:
                result.extend(self._update_batch(uow, batch, on_reject))
        return result

    def _refuse(
        self, on_reject: RejectHandler | None, position: int, item: Any, exc: CRMError
    ) -> None:
        if on_reject is None:
            raise with_location(exc, f"updates[{position}]") from None
        on_reject(position, item, exc)

    def _update_batch(
        self, uow: UnitOfWork, batch: Sequence[tuple[int, Any]], on_reject: RejectHandler | None
    ) -> list[CustomerChange]:
        wanted: list[tuple[int, Any, int, Mapping[str, Any]]] = []
        for position, item in batch:
            try:
                if not isinstance(item, tuple | list) or len(item) != 2:
                    raise ValidationError("expected a (customer id, changes) pair")
                customer_id, changes = item
                if isinstance(customer_id, bool) or not isinstance(customer_id, int):
                    raise ValidationError(
                        f"customer id: expected an integer, got {customer_id!r}", field="id"
                    )
                wanted.append((position, item, customer_id, check_changes(changes)))
            except CRMError as exc:
                self._refuse(on_reject, position, item, exc)
        stored = self._load_locked(uow, sorted({cid for _, _, cid, _ in wanted}))
        plans: list[_Plan] = []
        unchanged: dict[int, CustomerChange] = {}
        seen_ids: dict[int, int] = {}
        seen_keys: dict[tuple[str, str], int] = {}
        now = uow.now.isoformat()
        for position, item, customer_id, changes in wanted:
            try:
                before = stored.get(customer_id)
                if before is None:
                    raise NotFoundError(f"customer {customer_id} does not exist")
                if isinstance(before, CRMError):
                    raise before
                self._crm.access.check(Action.WRITE, before, ctx=uow)
                if customer_id in seen_ids:
                    earlier = seen_ids[customer_id]
                    raise ConflictError(
                        f"customer {customer_id} is also changed by updates[{earlier}] "
                        "in the same batch"
                    )
                after = apply_changes(before, changes, now)
                self._crm.access.check(Action.WRITE, after, ctx=uow)
                keys, errors = validate_customer(
                    after, uow.now, self._crm.attributes_validator, self._crm.config.json_limits
                )
                if errors:
                    raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
                assert keys is not None
                keys = keys.blinded(self._crm.cipher)
                changed = changed_fields(before, after)
                seen_ids[customer_id] = position
                if not changed:
                    unchanged[position] = CustomerChange(before=before, after=before, changed=())
                    continue
                moving = [pair for pair in keys.pairs() if _MOVED_BY[pair[0]] & set(changed)]
                for pair in moving:
                    if pair in seen_keys:
                        raise ConflictError(
                            f"{KEY_LABELS[pair[0]]} {keys.shown(*pair)!r} is also used by "
                            f"updates[{seen_keys[pair]}] in the same batch"
                        )
                seen_keys.update(dict.fromkeys(moving, position))
            except CRMError as exc:
                self._refuse(on_reject, position, item, exc)
                continue
            plans.append((position, item, before, after, keys, changed))
        plans = self._free_keys(uow, plans, on_reject)
        kept = self._run_plugin_validation(
            uow, [(p, i, after, k) for p, i, _, after, k, _ in plans], on_reject
        )
        accepted = {p for p, *_ in kept}
        done = self._write(uow, [plan for plan in plans if plan[0] in accepted])
        by_position = {**unchanged, **done}
        return [by_position[p] for p, *_ in batch if p in by_position]

    def _load_locked(self, uow: UnitOfWork, ids: list[int]) -> dict[int, Customer | CRMError]:
        """The stored customers of ``ids``, row-locked on PostgreSQL; unreadable ones as errors."""
        found: dict[int, Customer | CRMError] = {}
        ids = [i for i in ids if 0 < i <= INT64_MAX]
        for start in range(0, len(ids), IN_CHUNK):
            part = ids[start : start + IN_CHUNK]
            query = select(customers).where(customers.c.id.in_(part))
            if uow.connection.dialect.name == "postgresql":
                query = query.with_for_update(key_share=True)
            rows = uow.connection.execute(query).all()
            tags: dict[int, list[str]] = {}
            tag_query = (
                select(customer_tags.c.customer_id, customer_tags.c.tag)
                .where(customer_tags.c.customer_id.in_(part))
                .order_by(customer_tags.c.tag)
            )
            for cid, tag in uow.connection.execute(tag_query):
                tags.setdefault(cid, []).append(tag)
            for r in rows:
                try:
                    found[r.id] = customer_from_row(r, tags.get(r.id, ()), self._crm.cipher)
                except UnreadableError as exc:
                    found[r.id] = CRMError(str(exc))
        return found

    def _free_keys(
        self, uow: UnitOfWork, plans: list[_Plan], on_reject: RejectHandler | None
    ) -> list[_Plan]:
        """The plans whose identity keys no other stored customer holds."""
        existing = find_existing(uow.connection, [plan[4] for plan in plans])
        kept: list[_Plan] = []
        for plan in plans:
            position, item, before, _, keys, _ = plan
            clash = next(
                (pair for pair in keys.pairs() if existing.get(pair, before.id) != before.id), None
            )
            if clash is not None:
                holder = existing[clash]
                visible = self._crm.access.may_see(holder, ctx=uow)
                self._refuse(
                    on_reject, position, item, duplicate_error(clash, holder, keys, visible=visible)
                )
                continue
            kept.append(plan)
        return kept

    def _write(self, uow: UnitOfWork, plans: list[_Plan]) -> dict[int, CustomerChange]:
        """Store the planned changes; position -> the change as stored."""
        if not plans:
            return {}
        cipher = self._crm.cipher
        rows = []
        for _, _, before, after, keys, _ in plans:
            row = customer_to_row(after, keys, uow.now, cipher, before.id)
            row.pop("created_at")
            rows.append({f"v_{k}": v for k, v in row.items()})
        names = [k.removeprefix("v_") for k in rows[0] if k != "v_id"]
        statement = (
            update(customers)
            .where(customers.c.id == bindparam("v_id"))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
        uow.connection.execute(statement, rows)
        retagged = [before.id for _, _, before, _, _, changed in plans if "tags" in changed]
        for start in range(0, len(retagged), IN_CHUNK):
            part = retagged[start : start + IN_CHUNK]
            uow.connection.execute(
                delete(customer_tags).where(customer_tags.c.customer_id.in_(part))
            )
        insert_rows(
            uow.connection,
            customer_tags,
            [
                {"customer_id": before.id, "tag": tag}
                for _, _, before, after, _, changed in plans
                if "tags" in changed
                for tag in after.tags
            ],
        )
        stored = self._load_locked(uow, [before.id for _, _, before, *_ in plans if before.id])
        done: dict[int, CustomerChange] = {}
        entries: list[AuditEntry] = []
        for position, _, before, _, _, changed in plans:
            assert before.id is not None
            now_stored = stored[before.id]
            assert isinstance(now_stored, Customer)
            done[position] = CustomerChange(before=before, after=now_stored, changed=changed)
            old, new = to_dict(before), to_dict(now_stored)
            diff = {n: {"from": redact(n, old[n]), "to": redact(n, new[n])} for n in changed}
            entries.append(
                AuditEntry("customer.update", "customer", before.id, before.id, {"changed": diff})
            )
        self._crm.audit.record(uow, entries)
        changes = list(done.values())
        emitters.customers_updated(uow, changes)
        self._crm.call_hook("crm_customers_updated", ctx=uow, changes=changes)
        return done


__all__ = ["CustomerBulkUpdates", "apply_changes", "changed_fields", "check_changes"]
