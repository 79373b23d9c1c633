"""Access control: roles, ownership and grants, enforced in the service layer.

A CRM opened with :meth:`CRM.open <crmcore.app.CRM.open>` acts as the trusted
system: everything is allowed. ``crm.as_user(Principal("alice", Role.AGENT))``
returns a view of the same CRM whose every service call is checked:

============  ===========================================================
role          may
============  ===========================================================
``admin``     everything
``manager``   read, write, delete, export and import any customer; read
              reports and the audit log; grant access. Not erase.
``agent``     read and write the customers they own (``owner``) or were
              granted; create customers they own. Nothing else.
============  ===========================================================

The account team (:mod:`crmcore.services.accounts`) extends an agent's
reach like a grant does: a member of an organisation's team reads the
organisation and its current contacts, and writes them too when their team
role is one of ``[accounts] team_write_roles`` (default ``account_manager``);
the organisation's owner reads and writes its current contacts.

The ``crm_authorize`` hook lets the embedding application decide instead
(first non-``None`` answer wins); it is asked before the default policy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
)

from crmcore.errors import CRMError, NotFoundError, ValidationError
from crmcore.storage.records import load_customer
from crmcore.storage.sharing import shared_with
from crmcore.storage.tables import customer_grants, customers

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.model.entities import Customer
    from crmcore.unit_of_work import UnitOfWork


class Role(enum.StrEnum):
    """What a user may do, broadly (see the module docstring)."""

    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"


class Action(enum.StrEnum):
    """Operations checked by the policy."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ERASE = "erase"
    EXPORT = "export"
    IMPORT = "import"
    REPORT = "report"
    AUDIT = "audit"
    GRANT = "grant"
    ADMINISTER = "administer"


def _action(value: Action | str) -> Action:
    try:
        return Action(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise ValidationError(
            f"action: {value!r} is not one of: {allowed}", field="action"
        ) from None


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(f"role: {value!r} is not one of: {allowed}", field="role") from None


@frozen
class Principal:
    """The user on whose behalf services act."""

    user: str
    role: Role = field(default=Role.AGENT, converter=_role)

    def __attrs_post_init__(self) -> None:
        """Refuse an empty user name."""
        if not isinstance(self.user, str) or not self.user.strip():
            raise ValidationError("user: must not be empty", field="user")


class AccessDeniedError(CRMError):
    """The acting user may not do this."""


_MANAGER_ACTIONS = frozenset(Action) - {Action.ERASE, Action.ADMINISTER}
_AGENT_ACTIONS = frozenset({Action.READ, Action.WRITE})


def _default_allows(
    principal: Principal, action: Action, customer: Customer | None, granted: bool
) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.MANAGER:
        return action in _MANAGER_ACTIONS
    if action not in _AGENT_ACTIONS:
        return False
    return customer is not None and (customer.owner == principal.user or granted)


@frozen
class Visibility:
    """Which customers a principal may act on, as the listing paths need it.

    ``condition`` restricts ``crm_customers`` in SQL (``None``: every row).
    ``per_row`` says a ``crm_authorize`` implementation gave no SQL answer
    for the set, so each row must also pass :meth:`AccessControl.allowed`.
    """

    condition: ColumnElement[bool] | None = None
    per_row: bool = False

    @property
    def everything(self) -> bool:
        """Whether no customer is hidden."""
        return self.condition is None and not self.per_row


_EVERYTHING = Visibility()
#: Ids checked per query by :meth:`AccessControl.guard` (bind-parameter limits).
_GUARD_CHUNK = 5000


def _customer_ids(customer_ids: Iterable[int] | int) -> list[int]:
    if isinstance(customer_ids, int):
        customer_ids = [customer_ids]
    ids = sorted(set(customer_ids))
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(
                f"customer id: expected an integer, got {value!r}", field="customer_id"
            )
    return ids


class AccessControl:
    """Checks, grants and the scoped data access plugins use. Get it as ``crm.access``.

    For plugin authors: :meth:`guard` (may the principal act on these
    customers? one query), :meth:`where` and :meth:`visible_ids` (restrict a
    query of your own table to the customers the principal may see),
    :meth:`visible_customers` (the customers themselves, as a selectable to
    join) and :meth:`require` (an action that concerns no single customer).
    Every one of them is a no-op, or the whole table, for the trusted system
    view (``crm.principal is None``).
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def principal(self) -> Principal | None:
        """The user this CRM view acts for; ``None`` for the trusted system."""
        return self._crm.principal

    @property
    def trusted(self) -> bool:
        """Whether this is the trusted system view (everything allowed, nothing scoped)."""
        return self._crm.principal is None

    def _hooked(self) -> bool:
        return bool(self._crm.pm.hook.crm_authorize.get_hookimpls())

    def _ask(self, principal: Principal, action: Action, customer: Customer | None) -> Any:
        return self._crm.pm.hook.crm_authorize(
            crm=self._crm, principal=principal, action=action.value, customer=customer
        )

    def _granted(self, ctx: UnitOfWork | None, customer_id: int | None, action: Action) -> bool:
        """Whether a grant or an account team lets the principal ``action`` this customer."""
        principal = self.principal
        if principal is None or customer_id is None or action not in _AGENT_ACTIONS:
            return False
        with self._crm.reading(ctx) as uow:
            query = select(customers.c.id).where(
                customers.c.id == customer_id, self._shared(principal.user, action, uow.now)
            )
            return uow.connection.execute(query).first() is not None

    def _shared(self, user: str, action: Action, now: datetime) -> ColumnElement[bool]:
        """Customers shared with ``user`` (not owned): a grant, or an account team."""
        return shared_with(
            user,
            writing=action is Action.WRITE,
            write_roles=self._crm.config.accounts.team_write_roles,
            day=now.astimezone(UTC).date(),
        )

    def allowed(
        self, action: Action, customer: Customer | None = None, *, ctx: UnitOfWork | None = None
    ) -> bool:
        """Whether the acting user may do ``action`` (on ``customer``, when given).

        Without a customer the question is whether the action is allowed on
        everything it covers: a ``crm_authorize`` answer that is a SQL
        condition (a restriction to some customers) counts as no.
        """
        principal = self.principal
        if principal is None:
            return True
        answer = self._ask(principal, action, customer)
        if isinstance(answer, ColumnElement):
            return False
        if answer is not None:
            return bool(answer)
        granted = (
            customer is not None
            and principal.role is Role.AGENT
            and customer.owner != principal.user
            and self._granted(ctx, customer.id, action)
        )
        return _default_allows(principal, action, customer, granted)

    def _denied(self, action: Action, what: str) -> AccessDeniedError:
        principal = self.principal
        assert principal is not None
        why = ""
        if principal.role is Role.AGENT and action in _AGENT_ACTIONS and what != "this":
            why = ": an agent works only on customers they own or were granted"
        return AccessDeniedError(
            f"{principal.user} ({principal.role.value}) may not {action.value} {what}{why}"
        )

    def check(
        self, action: Action, customer: Customer | None = None, *, ctx: UnitOfWork | None = None
    ) -> None:
        """Raise AccessDeniedError unless :meth:`allowed`."""
        if self.allowed(action, customer, ctx=ctx):
            return
        what = f"customer {customer.id}" if customer is not None and customer.id else "this"
        raise self._denied(action, what)

    def require(self, action: Action) -> None:
        """Raise AccessDeniedError unless ``action`` is allowed on everything (e.g. REPORT).

        For an analytic over every customer: an agent (or a principal a
        ``crm_authorize`` policy restricts to some customers) is refused.
        """
        self.check(_action(action))

    # --- scoped data access -----------------------------------------------------

    def visibility(self, action: Action = Action.READ) -> Visibility:
        """Which customers the acting user may ``action``, for listings (see :class:`Visibility`).

        Asks ``crm_authorize`` with ``customer=None`` first: ``True`` means
        every customer, ``False`` none, a SQL condition on ``crm_customers``
        exactly those rows. ``None`` leaves it to the default policy; when a
        ``crm_authorize`` implementation exists, each row must then also pass
        the hook (``per_row``), since it may decide customer by customer.
        """
        action = _action(action)
        principal = self.principal
        if principal is None:
            return _EVERYTHING
        answer = self._ask(principal, action, None)
        if isinstance(answer, ColumnElement):
            return Visibility(answer)
        if answer is not None:
            return _EVERYTHING if answer else Visibility(false())
        per_row = self._hooked()
        if principal.role is Role.ADMIN or (
            principal.role is Role.MANAGER and action in _MANAGER_ACTIONS
        ):
            return Visibility(None, per_row)
        if principal.role is Role.AGENT and action in _AGENT_ACTIONS:
            shared = self._shared(principal.user, action, self._crm.clock())
            return Visibility(or_(customers.c.owner == principal.user, shared), per_row)
        return Visibility(false())

    def _passing_rows(self, action: Action, seen: Visibility, ctx: UnitOfWork | None) -> list[int]:
        """Ids of the customers that pass the per-row hook check (the fallback path)."""
        query = select(customers.c.id).order_by(customers.c.id)
        if seen.condition is not None:
            query = query.where(seen.condition)
        passing: list[int] = []
        with self._crm.reading(ctx) as uow:
            ids = uow.connection.execute(query).scalars().all()
            for customer_id in ids:
                customer = load_customer(uow.connection, customer_id, self._crm.cipher)
                if self.allowed(action, customer, ctx=uow):
                    passing.append(customer_id)
        return passing

    def visible_condition(
        self, action: Action = Action.READ, *, ctx: UnitOfWork | None = None
    ) -> ColumnElement[bool] | None:
        """SQL restricting ``crm_customers`` to what the acting user may ``action`` (None: all).

        Honours ``crm_authorize``; when the hook gives no SQL answer for the
        set, the customers are checked one by one here and the condition
        lists their ids (correct, but a scan: give the hook a condition).
        """
        seen = self.visibility(action)
        if not seen.per_row:
            return seen.condition
        passing = self._passing_rows(_action(action), seen, ctx)
        return customers.c.id.in_(passing) if passing else false()

    def visible_ids(
        self, action: Action = Action.READ, *, ctx: UnitOfWork | None = None
    ) -> Select[tuple[int]]:
        """``SELECT id FROM crm_customers`` restricted to what the acting user may ``action``."""
        condition = self.visible_condition(action, ctx=ctx)
        query = select(customers.c.id)
        return query if condition is None else query.where(condition)

    def where(
        self,
        customer_column: ColumnElement[Any],
        action: Action = Action.READ,
        *,
        ctx: UnitOfWork | None = None,
    ) -> ColumnElement[bool]:
        """A condition keeping the rows whose ``customer_column`` the acting user may ``action``.

        ``select(my_table).where(crm.access.where(my_table.c.customer_id))``
        is a plugin query scoped to the principal: ``true()`` for the trusted
        view and principals who see everything, else ``customer_column IN
        (visible ids)``.
        """
        condition = self.visible_condition(action, ctx=ctx)
        if condition is None:
            return true()
        return customer_column.in_(select(customers.c.id).where(condition))

    def visible_customers(
        self, action: Action = Action.READ, *, ctx: UnitOfWork | None = None
    ) -> Subquery:
        """The rows of ``crm_customers`` the acting user may ``action``, as a subquery to join.

        Named ``visible_customers``; same columns as ``crm_customers`` (sealed
        fields stay sealed: read customers through ``crm.customers`` to show them).
        """
        condition = self.visible_condition(action, ctx=ctx)
        query = select(customers)
        if condition is not None:
            query = query.where(condition)
        return query.subquery("visible_customers")

    def guard(
        self, ctx: UnitOfWork | None, customer_ids: Iterable[int] | int, action: Action
    ) -> None:
        """Raise AccessDeniedError unless the acting user may ``action`` all these customers.

        One query per 5,000 ids. A customer that does not exist is refused
        like one the user may not see, and the error does not say which ids
        were refused, so it reveals nothing about customers the user cannot
        see. A no-op for the trusted system view.
        """
        action = _action(action)
        if self.principal is None:  # the trusted view: nothing to check (bulk paths)
            return
        ids = _customer_ids(customer_ids)
        if not ids:
            return
        seen = self.visibility(action)
        with self._crm.reading(ctx) as uow:
            if seen.per_row:
                for customer_id in ids:
                    try:
                        customer = load_customer(uow.connection, customer_id, self._crm.cipher)
                    except NotFoundError:
                        raise self._refused(action, ids) from None
                    if not self.allowed(action, customer, ctx=uow):
                        raise self._refused(action, ids)
                return
            if seen.condition is None:
                return
            found = 0
            for start in range(0, len(ids), _GUARD_CHUNK):
                chunk = ids[start : start + _GUARD_CHUNK]
                found += uow.connection.execute(
                    select(func.count())
                    .select_from(customers)
                    .where(customers.c.id.in_(chunk), seen.condition)
                ).scalar_one()
            if found != len(ids):
                raise self._refused(action, ids)

    def _refused(self, action: Action, ids: Sequence[int]) -> AccessDeniedError:
        what = f"customer {ids[0]}" if len(ids) == 1 else "every one of these customers"
        return self._denied(action, what)

    def check_ids(self, action: Action, customer_ids: Iterable[int], *, ctx: UnitOfWork) -> None:
        """:meth:`guard` with the arguments in the older order (batch paths)."""
        self.guard(ctx, customer_ids, action)

    def may_see(self, customer_id: int | None, *, ctx: UnitOfWork | None = None) -> bool:
        """Whether the acting user may read this customer (False for ``None`` or no such id)."""
        if customer_id is None:
            return False
        try:
            self.guard(ctx, [customer_id], Action.READ)
        except AccessDeniedError:
            return False
        return True

    def grant(self, customer_id: int, user: str, *, ctx: UnitOfWork | None = None) -> None:
        """Let ``user`` read and write a customer they do not own (idempotent)."""
        self.check(Action.GRANT)
        if not user or not user.strip():
            raise ValidationError("user: must not be empty", field="user")
        with self._crm.unit_of_work(ctx=ctx) as uow:
            self._crm.customers.get(customer_id, ctx=uow)
            uow.connection.execute(
                delete(customer_grants).where(
                    customer_grants.c.customer_id == customer_id, customer_grants.c.user == user
                )
            )
            uow.connection.execute(
                insert(customer_grants), [{"customer_id": customer_id, "user": user}]
            )

    def revoke(self, customer_id: int, user: str, *, ctx: UnitOfWork | None = None) -> None:
        """Withdraw a grant; NotFoundError when there was none."""
        self.check(Action.GRANT)
        with self._crm.unit_of_work(ctx=ctx) as uow:
            result = uow.connection.execute(
                delete(customer_grants).where(
                    customer_grants.c.customer_id == customer_id, customer_grants.c.user == user
                )
            )
            if not result.rowcount:
                raise NotFoundError(f"{user} has no grant on customer {customer_id}")
