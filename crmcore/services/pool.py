"""The customer pool: customers without an owner, which agents may see in part and claim.

``crm.pool`` offers:

* :meth:`PoolService.list`: the unowned customers, each with only the fields
  ``[pool] visible_fields`` names (and ``id``), to every principal;
* :meth:`PoolService.claim`: take one. Atomic: of several users claiming the
  same customer at once, exactly one becomes its owner and the others get a
  ConflictError (a conditional ``UPDATE ... WHERE owner IS NULL``);
* :meth:`PoolService.release`: put one back (managers);
* :meth:`PoolService.reassign`: hand every customer of one owner to another
  (a leaving employee), in one audited transaction;
* :meth:`PoolService.recycle`: an idempotent sweep that puts back into the
  pool every owned customer with no interaction in the last N days.

New customers without an owner get one by ``[pool] assignment``
(:meth:`PoolService.assigned_owner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen
from sqlalchemy import exists, func, select, update

from crmcore.access import AccessDeniedError, Action, Role
from crmcore.dry_run import unit_or_dry_run
from crmcore.errors import ConflictError, ValidationError
from crmcore.events import emitters
from crmcore.model.entities import Customer, CustomerChange
from crmcore.model.pagination import Page, check_page
from crmcore.model.pool import PoolSettings
from crmcore.model.serialization import to_dict
from crmcore.model.storable import text_problem
from crmcore.security.encryption import UnreadableError
from crmcore.storage.records import customer_from_row, load_customer
from crmcore.storage.tables import customer_tags, customers, interactions
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

_CHUNK = 400
_MAX_USER = 200


@frozen
class Handover:
    """The customers a reassignment or a recycling sweep moved (or would move, in a dry run)."""

    customer_ids: tuple[int, ...]
    from_owner: str | None
    to_owner: str | None
    dry_run: bool = False

    @property
    def count(self) -> int:
        """How many customers changed hands."""
        return len(self.customer_ids)


def _check_user(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name}: give a user name", field=name, value=value)
    found = text_problem(value, name)
    if found is not None:
        raise ValidationError(f"{found[0]}: {found[1]}", field=name, value=value)
    if len(value) > _MAX_USER:
        raise ValidationError(f"{name}: at most {_MAX_USER} characters", field=name, value=value)
    return value.strip()


class PoolService:
    """Unowned customers, claims and hand-overs. Get it as ``crm.pool``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def settings(self) -> PoolSettings:
        """The ``[pool]`` section in force."""
        return self._crm.config.pool

    # --- assignment of new customers -------------------------------------------

    def assigned_owner(self, customer_id: int) -> str | None:
        """The owner ``[pool] assignment`` gives the new customer ``customer_id`` (None: pool).

        The turn is the customer's id in the assignment cycle
        (:meth:`PoolSettings.sequence`): ids are handed out in creation order,
        so successive customers go to successive members with no shared
        counter to lock. An id skipped by a rolled-back transaction makes its
        member miss that turn.
        """
        sequence = self.settings.sequence()
        return sequence[customer_id % len(sequence)] if sequence else None

    # --- the pool ----------------------------------------------------------------

    def list(
        self, *, limit: int = 50, offset: int = 0, ctx: UnitOfWork | None = None
    ) -> Page[dict[str, Any]]:
        """The customers without an owner, oldest first, each as ``id`` + ``visible_fields``.

        Open to every principal, agents included: this is how an agent finds
        customers to claim. Nothing beyond the configured fields is shown;
        a customer whose sealed fields cannot be opened is left out.
        """
        check_page(limit, offset)
        shown = ("id", *self.settings.visible_fields)
        where = customers.c.owner.is_(None)
        with self._crm.reading(ctx) as uow:
            total = uow.connection.execute(
                select(func.count()).select_from(customers).where(where)
            ).scalar_one()
            rows = uow.connection.execute(
                select(customers)
                .where(where)
                .order_by(customers.c.created_at, customers.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            tags: dict[int, list[str]] = {}
            if "tags" in shown and rows:
                query = select(customer_tags.c.customer_id, customer_tags.c.tag).where(
                    customer_tags.c.customer_id.in_([r.id for r in rows])
                )
                for cid, tag in uow.connection.execute(query.order_by(customer_tags.c.tag)):
                    tags.setdefault(cid, []).append(tag)
        items = []
        for row in rows:
            try:
                data = to_dict(customer_from_row(row, tags.get(row.id, ()), self._crm.cipher))
            except UnreadableError:
                continue
            items.append({name: data.get(name) for name in shown})
        return Page(
            items=items, total=total, limit=limit, offset=offset, skipped=len(rows) - len(items)
        )

    def claim(
        self,
        customer_id: int,
        *,
        user: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Customer:
        """Make ``user`` (default: the acting user) the owner of a pool customer; return it.

        An agent claims for themself only. ConflictError when the customer
        has an owner, including one who claimed it an instant earlier.
        """
        principal = self._crm.principal
        if user is not None:
            user = _check_user(user, "user")
        if principal is not None:
            if principal.role is Role.AGENT and user not in (None, principal.user):
                raise AccessDeniedError(
                    f"{principal.user} (agent) may claim customers for themself only"
                )
            user = user or principal.user
        if user is None:
            raise ValidationError("user: name who claims the customer", field="user")
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = load_customer(uow.connection, customer_id, self._crm.cipher, lock=True)
            if before.owner is not None:
                raise ConflictError(f"customer {customer_id} is not in the pool: it has an owner")
            self._crm.access.check(Action.WRITE, attrs.evolve(before, owner=user), ctx=uow)
            won = uow.connection.execute(
                update(customers)
                .where(customers.c.id == customer_id, customers.c.owner.is_(None))
                .values(owner=user, updated_at=uow.now)
            ).rowcount
            if won != 1:
                raise ConflictError(
                    f"customer {customer_id} was claimed by someone else a moment ago"
                )
            after = self._owner_changed(uow, [before], "customer.claim")[0]
        return after

    def release(
        self, customer_id: int, *, actor: str | None = None, ctx: UnitOfWork | None = None
    ) -> Customer:
        """Put an owned customer back into the pool; return it.

        For a manager or an administrator (``Action.GRANT``), like every
        hand-over: an agent giving a customer away would lose access to it
        inside the transaction in which plugins, acting for that agent, react
        to the change.
        """
        self._crm.access.require(Action.GRANT)
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = load_customer(uow.connection, customer_id, self._crm.cipher, lock=True)
            if before.owner is None:
                raise ConflictError(f"customer {customer_id} is already in the pool")
            uow.connection.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(owner=None, updated_at=uow.now)
            )
            return self._owner_changed(uow, [before], "customer.release")[0]

    # --- hand-overs ---------------------------------------------------------------

    def reassign(
        self,
        from_owner: str,
        to_owner: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        dry_run: bool = False,
    ) -> Handover:
        """Give every customer of ``from_owner`` to ``to_owner`` in one transaction.

        For a manager or an administrator (``Action.GRANT``). Audited as one
        batch entry listing every id; each customer's change reaches
        ``crm_customers_updated`` and the outbox. ``dry_run=True`` returns who
        would move and changes nothing.
        """
        source = _check_user(from_owner, "from_owner")
        target = _check_user(to_owner, "to_owner")
        if source == target:
            raise ValidationError("to_owner: must differ from from_owner", field="to_owner")
        self._crm.access.require(Action.GRANT)
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            ids = (
                uow.connection.execute(
                    select(customers.c.id)
                    .where(customers.c.owner == source)
                    .order_by(customers.c.id)
                )
                .scalars()
                .all()
            )
            self._set_owner(uow, list(ids), target, "customer.reassign")
        return Handover(tuple(ids), source, target, dry_run)

    def recycle(
        self,
        days: int | None = None,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        dry_run: bool = False,
    ) -> Handover:
        """Put back into the pool every owned customer with no interaction in the last ``days``.

        ``days`` defaults to ``[pool] recycle_after_days``. A customer counts
        as uncontacted when it was created more than ``days`` ago and has no
        interaction (of any kind or direction) that occurred since. Running
        it again moves nothing new: recycled customers have no owner. For a
        manager or an administrator (``Action.GRANT``).
        """
        days = self.settings.recycle_after_days if days is None else days
        if days is None:
            raise ValidationError(
                "days: give --days or set [pool] recycle_after_days", field="days"
            )
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36_500:
            raise ValidationError(f"days: must be 1 to 36500, got {days!r}", field="days")
        self._crm.access.require(Action.GRANT)
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            cutoff = uow.now - timedelta(days=days)
            recent = exists().where(
                interactions.c.customer_id == customers.c.id,
                interactions.c.occurred_at >= cutoff,
            )
            ids = (
                uow.connection.execute(
                    select(customers.c.id)
                    .where(customers.c.owner.is_not(None), customers.c.created_at < cutoff, ~recent)
                    .order_by(customers.c.id)
                )
                .scalars()
                .all()
            )
            self._set_owner(uow, list(ids), None, "customer.recycle")
        return Handover(tuple(ids), None, None, dry_run)

    # --- shared -----------------------------------------------------------------

    def _set_owner(
        self, uow: UnitOfWork, ids: Sequence[int], owner: str | None, action: str
    ) -> None:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            before = [load_customer(uow.connection, cid, self._crm.cipher) for cid in chunk]
            uow.connection.execute(
                update(customers)
                .where(customers.c.id.in_(chunk))
                .values(owner=owner, updated_at=uow.now)
            )
            self._owner_changed(uow, before, action)

    def _owner_changed(
        self, uow: UnitOfWork, before: Sequence[Customer], action: str
    ) -> tuple[Customer, ...]:
        """Audit, emit and tell plugins of owner changes already written; return the after."""
        changes = []
        for old in before:
            assert old.id is not None
            new = load_customer(uow.connection, old.id, self._crm.cipher)
            changes.append(CustomerChange(before=old, after=new, changed=("owner",)))
        if not changes:
            return ()
        self._crm.audit.record_batch(
            uow,
            action,
            "customer",
            [
                (c.after.id, c.after.id, {"from": c.before.owner, "to": c.after.owner})
                for c in changes
            ],
        )
        emitters.customers_updated(uow, changes)
        self._crm.call_hook("crm_customers_updated", ctx=uow, changes=changes)
        return tuple(c.after for c in changes)


__all__ = ["Handover", "PoolService"]
