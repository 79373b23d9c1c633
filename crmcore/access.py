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

The ``crm_authorize`` hook lets the embedding application decide instead
(first non-``None`` answer wins); it is asked before the default policy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

from attrs import field, frozen
from sqlalchemy import ColumnElement, delete, exists, insert, or_, select

from crmcore.errors import CRMError, NotFoundError, ValidationError
from crmcore.storage.tables import customer_grants, customers

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.entities import Customer
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


class AccessControl:
    """Checks and grants. Get it as ``crm.access``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def principal(self) -> Principal | None:
        """The user this CRM view acts for; ``None`` for the trusted system."""
        return self._crm.principal

    def _granted(self, ctx: UnitOfWork | None, customer_id: int | None) -> bool:
        principal = self.principal
        if principal is None or customer_id is None:
            return False
        query = select(customer_grants.c.customer_id).where(
            customer_grants.c.customer_id == customer_id, customer_grants.c.user == principal.user
        )
        with self._crm.reading(ctx) as uow:
            return uow.connection.execute(query).first() is not None

    def allowed(
        self, action: Action, customer: Customer | None = None, *, ctx: UnitOfWork | None = None
    ) -> bool:
        """Whether the acting user may do ``action`` (on ``customer``, when given)."""
        principal = self.principal
        if principal is None:
            return True
        answer = self._crm.pm.hook.crm_authorize(
            crm=self._crm, principal=principal, action=action.value, customer=customer
        )
        if answer is not None:
            return bool(answer)
        granted = customer is not None and self._granted(ctx, customer.id)
        return _default_allows(principal, action, customer, granted)

    def check(
        self, action: Action, customer: Customer | None = None, *, ctx: UnitOfWork | None = None
    ) -> None:
        """Raise AccessDeniedError unless :meth:`allowed`."""
        if self.allowed(action, customer, ctx=ctx):
            return
        principal = self.principal
        assert principal is not None
        what = f"customer {customer.id}" if customer is not None and customer.id else "this"
        why = ""
        if principal.role is Role.AGENT and customer is not None and action in _AGENT_ACTIONS:
            why = ": an agent works only on customers they own or were granted"
        raise AccessDeniedError(
            f"{principal.user} ({principal.role.value}) may not {action.value} {what}{why}"
        )

    def check_ids(self, action: Action, customer_ids: Iterable[int], *, ctx: UnitOfWork) -> None:
        """:meth:`check` for many customers (batch paths); a no-op for the trusted system.

        Admins and managers are decided without loading the customers unless
        a plugin implements ``crm_authorize``.
        """
        principal = self.principal
        if principal is None:
            return
        hooked = bool(self._crm.pm.hook.crm_authorize.get_hookimpls())
        if principal.role is not Role.AGENT and not hooked:
            self.check(action, ctx=ctx)
            return
        for customer_id in sorted(set(customer_ids)):
            self.check(action, self._crm.customers.get(customer_id, ctx=ctx), ctx=ctx)

    def visible_condition(self) -> ColumnElement[bool] | None:
        """SQL restricting customer listings to what the acting user may read (None: all)."""
        principal = self.principal
        if principal is None or principal.role is not Role.AGENT:
            return None
        answer = self._crm.pm.hook.crm_authorize(
            crm=self._crm, principal=principal, action=Action.READ.value, customer=None
        )
        if answer:
            return None
        granted = exists(
            select(1).where(
                customer_grants.c.customer_id == customers.c.id,
                customer_grants.c.user == principal.user,
            )
        )
        return or_(customers.c.owner == principal.user, granted)

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
