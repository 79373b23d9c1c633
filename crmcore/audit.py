"""The audit log: who changed what, and when, for every write through the API or CLI.

Core writes an entry per entity touched (customer created, updated, deleted or
erased; interaction recorded; lifecycle move) inside the operation's unit of
work, so an entry exists exactly when the change committed. Plugins record
their own writes with :meth:`AuditLog.record` (one entry) or
:meth:`AuditLog.record_batch` (bulk writes).

The ``actor`` of an entry is the acting principal on a user's view
(``crm.as_user``); a name the application passes as ``actor=`` is kept as
``on_behalf_of`` and cannot replace it. Only the trusted system view (the CRM
from ``CRM.open``) names its actor freely.

Values of sensitive fields are never written to the log, and erasing a
customer redacts their entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from sqlalchemy import ColumnElement, and_, func, or_, select, text, update

from crmcore.access import Action
from crmcore.errors import ValidationError
from crmcore.model.pagination import Page, check_page
from crmcore.storage.bulk import insert_rows
from crmcore.storage.tables import audit_log
from crmcore.unit_of_work import UnitOfWork, acting_user

if TYPE_CHECKING:
    from crmcore.app import CRM

#: Customer fields whose values the audit log never stores (only that they changed).
REDACTED_FIELDS = frozenset({"email", "phone", "address", "birth_date", "gender", "attributes"})


@frozen
class AuditEntry:
    """One audited change. ``customer_id`` is set whenever the change concerns a customer."""

    action: str
    entity: str
    entity_id: int | None = None
    customer_id: int | None = None
    details: Mapping[str, Any] = field(factory=dict)
    actor: str | None = None
    at: datetime | None = None
    id: int | None = None
    #: Whom the application said the actor acted for (recorded, never trusted as the actor).
    on_behalf_of: str | None = None


def redact(field_name: str, value: Any) -> Any:
    """The value as the audit log may keep it: sensitive fields become ``"[redacted]"``."""
    return "[redacted]" if field_name in REDACTED_FIELDS and value is not None else value


def _runs(ids: Sequence[int]) -> list[list[int]]:
    """Sorted ids as ``[first, last]`` runs of consecutive values."""
    runs: list[list[int]] = []
    for value in sorted(ids):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return runs


_REDACTED = {"redacted": "customer erased"}
_BATCH_KEYS = ("count", "ids", "customer_ids")


def _in_batch(crm: CRM, customer_id: int) -> ColumnElement[bool]:
    """A batch entry (see :meth:`AuditLog.record_batch`) lists ``customer_id``."""
    batch = and_(audit_log.c.customer_id.is_(None), audit_log.c.entity_id.is_(None))
    if crm.engine.dialect.name == "postgresql":
        listed = text("(crm_audit_log.details -> 'customer_ids') @> to_jsonb(:audit_cid)")
    else:
        listed = text(
            "EXISTS (SELECT 1 FROM json_each(crm_audit_log.details, '$.customer_ids') "
            "WHERE value = :audit_cid)"
        )
    return and_(batch, listed.bindparams(audit_cid=customer_id))


class AuditLog:
    """Recording and querying audit entries. Get it as ``crm.audit``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def _who(self, ctx: UnitOfWork, entry: AuditEntry) -> tuple[str | None, str | None]:
        """(actor, on_behalf_of) as recorded: the actor is the principal whenever there is one.

        A name claimed by the caller (``entry.actor``, or the unit of work's
        ``actor`` given as ``actor=`` to a service) is kept as
        ``on_behalf_of`` when it differs. Only the trusted system view, which
        has no principal, names the actor itself.
        """
        principal = self._crm.principal or ctx.crm.principal
        claimed = entry.actor if entry.actor is not None else ctx.actor
        if principal is None:
            return claimed, entry.on_behalf_of
        if entry.on_behalf_of is not None:
            return principal.user, entry.on_behalf_of
        return principal.user, None if claimed in (None, principal.user) else claimed

    def record(self, ctx: UnitOfWork, entries: Iterable[AuditEntry]) -> int:
        """Write entries inside ``ctx`` (actor and time default to the unit of work's).

        On a user's view the actor is always the principal (see :meth:`_who`).
        """
        rows: list[dict[str, Any]] = []
        for entry in entries:
            actor, on_behalf_of = self._who(ctx, entry)
            rows.append(
                {
                    "at": entry.at or ctx.now,
                    "actor": actor,
                    "on_behalf_of": on_behalf_of,
                    "action": entry.action,
                    "entity": entry.entity,
                    "entity_id": entry.entity_id,
                    "customer_id": entry.customer_id,
                    "details": dict(entry.details),
                }
            )
        for row in rows:
            if row["on_behalf_of"] is not None and (
                not isinstance(row["on_behalf_of"], str) or len(row["on_behalf_of"]) > 200
            ):
                raise ValidationError(
                    "on_behalf_of: must be text of at most 200 characters", field="on_behalf_of"
                )
        for row in rows:
            if not isinstance(row["action"], str) or not 0 < len(row["action"]) <= 60:
                raise ValidationError(
                    f"action: must be 1 to 60 characters, got {row['action']!r}", field="action"
                )
        if rows:
            insert_rows(ctx.connection, audit_log, rows)
        return len(rows)

    def record_batch(
        self,
        ctx: UnitOfWork,
        action: str,
        entity: str,
        subjects: Sequence[tuple[int | None, int | None, Mapping[str, Any]]],
    ) -> int:
        """Audit one action applied to many entities in one operation.

        ``subjects`` holds (entity id, customer id, details) per entity. One
        entity gets an ordinary entry. Several get one *batch entry* per group
        of identical details, with ``entity_id`` and ``customer_id`` empty and
        the details extended by ``count``, ``ids`` (runs of entity ids as
        ``[first, last]`` pairs) and ``customer_ids`` (sorted, distinct).
        :meth:`query` finds a batch entry by any of its customers. Returns
        the number of entries written.
        """
        if len(subjects) == 1:
            entity_id, customer_id, details = subjects[0]
            return self.record(ctx, [AuditEntry(action, entity, entity_id, customer_id, details)])
        groups: dict[Any, tuple[Mapping[str, Any], list[int], set[int]]] = {}
        for entity_id, customer_id, details in subjects:
            try:
                # Insertion order: equal details built by one code path share a key.
                key: Any = tuple(details.items())
                hash(key)
            except TypeError:
                key = json.dumps(details, sort_keys=True, default=str)
            group = groups.get(key)
            if group is None:
                group = groups[key] = (details, [], set())
            if entity_id is not None:
                group[1].append(entity_id)
            if customer_id is not None:
                group[2].add(customer_id)
        return self.record(
            ctx,
            [
                AuditEntry(
                    action,
                    entity,
                    details={
                        **details,
                        "count": max(len(ids), len(customer_ids)),
                        "ids": _runs(ids),
                        "customer_ids": sorted(customer_ids),
                    },
                )
                for details, ids, customer_ids in groups.values()
            ],
        )

    def redact_customer(self, ctx: UnitOfWork, customer_id: int) -> None:
        """Blank the details of every entry about a customer (part of erasure).

        Batch entries listing the customer keep only ``count``, ``ids`` and
        ``customer_ids``: their other details (a shared reason, say) may name
        the erased customer, so they go for every customer of the batch.
        """
        ctx.connection.execute(
            update(audit_log)
            .where(audit_log.c.customer_id == customer_id)
            .values(details=dict(_REDACTED))
        )
        batches = ctx.connection.execute(
            select(audit_log.c.id, audit_log.c.details).where(_in_batch(self._crm, customer_id))
        ).all()
        for entry_id, details in batches:
            kept = {
                k: details[k] for k in _BATCH_KEYS if isinstance(details, dict) and k in details
            }
            if kept | _REDACTED != details:
                ctx.connection.execute(
                    update(audit_log)
                    .where(audit_log.c.id == entry_id)
                    .values(details=kept | _REDACTED)
                )

    def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        entity: str | None = None,
        customer_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        ctx: UnitOfWork | None = None,
    ) -> Page[AuditEntry]:
        """Entries matching every filter given, newest first (``action`` may end with ``*``).

        With ``ctx``, reads inside that unit of work (its own entries included).
        """
        self._crm.access.check(Action.AUDIT)
        check_page(limit, offset)
        conditions: list[ColumnElement[bool]] = []
        if actor is not None:
            conditions.append(audit_log.c.actor == actor)
        if action:
            conditions.append(
                audit_log.c.action.startswith(action[:-1], autoescape=True)
                if action.endswith("*")
                else audit_log.c.action == action
            )
        if entity:
            conditions.append(audit_log.c.entity == entity)
        if customer_id is not None:
            conditions.append(
                or_(audit_log.c.customer_id == customer_id, _in_batch(self._crm, customer_id))
            )
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(f"{name}: must be timezone-aware", field=name)
        if since is not None:
            conditions.append(audit_log.c.at >= since)
        if until is not None:
            conditions.append(audit_log.c.at < until)
        where = and_(True, *conditions)
        with self._crm.reading(ctx) as uow:
            total = uow.connection.execute(
                select(func.count()).select_from(audit_log).where(where)
            ).scalar_one()
            rows = uow.connection.execute(
                select(audit_log)
                .where(where)
                .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        items = [AuditEntry(**dict(r._mapping)) for r in rows]
        return Page(items=items, total=total, limit=limit, offset=offset)


__all__ = ["REDACTED_FIELDS", "AuditEntry", "AuditLog", "acting_user", "redact"]
