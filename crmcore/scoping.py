"""Declaring what a plugin's service function needs: ``@requires``.

A plugin's public service functions take the CRM (or a unit of work) first.
Decorate each with what it needs, and core checks it before the body runs::

    from crmcore.access import Action
    from crmcore.scoping import requires

    @requires(Action.WRITE, customer="customer_id")
    def earn(crm, customer_id, points, *, actor=None, ctx=None): ...

    @requires(Action.READ, customer="customer_ids")     # many ids: one query
    def balances(crm, customer_ids): ...

    @requires(Action.WRITE, customer=complaint_customer)  # an id found from another
    def resolve(crm, complaint_id, ...): ...

    @requires(Action.REPORT)                             # an aggregate over everyone
    def programme_kpis(crm): ...

    @requires(Action.READ, scoped=True)                  # a listing that scopes its query
    def members(crm): ...                                # with crm.access.where(...)

A function without a declaration is what :func:`undeclared` lists, and the
conformance kit (:mod:`crmcore.testing`) fails a plugin that has one; calling
one through a user's view is refused by :func:`enforce_declared`.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import frozen

from crmcore.access import AccessDeniedError, Action
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.unit_of_work import UnitOfWork

F = TypeVar("F", bound=Callable[..., Any])

#: Finds the customer ids a call concerns: (crm, ctx or None, bound arguments) -> ids,
#: or ``None`` when the thing named does not exist (refused for a restricted principal).
CustomerResolver = Callable[
    ["CRM", "UnitOfWork | None", Mapping[str, Any]], "Iterable[int] | int | None"
]

_ATTRIBUTE = "__crm_requires__"


@frozen
class Requirement:
    """What one service function needs (see :func:`requires`)."""

    action: Action
    customer: str | CustomerResolver | None = None
    scoped: bool = False
    #: False for a function :func:`enforce_declared` made system-only (nothing was declared).
    declared: bool = True

    def describe(self) -> str:
        """A short text for reports: ``write customer_id``, ``report``, ``read (scoped)``."""
        if not self.declared:
            return "undeclared: trusted system view only"
        if self.scoped:
            return f"{self.action.value} (scoped listing)"
        if self.customer is None:
            return f"{self.action.value} (everything)"
        target = self.customer if isinstance(self.customer, str) else self.customer.__name__
        return f"{self.action.value} {target}"


def _crm_and_ctx(arguments: Mapping[str, Any]) -> tuple[CRM, UnitOfWork | None]:
    from crmcore.app import CRM
    from crmcore.unit_of_work import UnitOfWork

    first = next(iter(arguments.values()), None)
    ctx = arguments.get("ctx")
    if isinstance(first, UnitOfWork):
        return first.crm, first
    if isinstance(first, CRM):
        return first, ctx if isinstance(ctx, UnitOfWork) else None
    raise ValidationError(
        "crm: a service function declared with @requires takes the CRM or a unit of work first"
    )


def _check(requirement: Requirement, arguments: Mapping[str, Any]) -> None:
    crm, ctx = _crm_and_ctx(arguments)
    if crm.principal is None or requirement.scoped:
        return
    if requirement.customer is None:
        crm.access.require(requirement.action)
        return
    if isinstance(requirement.customer, str):
        ids: Iterable[int] | int | None = arguments.get(requirement.customer)
    else:
        ids = requirement.customer(crm, ctx, arguments)
    if ids is None:
        principal = crm.principal
        raise AccessDeniedError(
            f"{principal.user} ({principal.role.value}) may not {requirement.action.value} this"
        )
    crm.access.guard(ctx, ids, requirement.action)


def requires(
    action: Action, *, customer: str | CustomerResolver | None = None, scoped: bool = False
) -> Callable[[F], F]:
    """Declare what a service function needs; core checks it before each call.

    ``customer`` names the parameter holding the customer id (or ids), or is
    a :data:`CustomerResolver`; every id goes through
    :meth:`~crmcore.access.AccessControl.guard` in one query. Without
    ``customer`` the action must be allowed on everything
    (:meth:`~crmcore.access.AccessControl.require`). ``scoped=True``
    declares a listing whose query the function restricts itself with
    ``crm.access.where``/``visible_customers`` (nothing is checked before).
    The trusted system view passes every check.
    """
    requirement = Requirement(Action(action), customer, scoped)

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        if isinstance(customer, str) and customer not in signature.parameters:
            raise ValidationError(
                f"customer: {function.__qualname__} has no parameter {customer!r}"
            )

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            _check(requirement, bound.arguments)
            return function(*args, **kwargs)

        setattr(checked, _ATTRIBUTE, requirement)
        return checked  # type: ignore[return-value]

    return decorate


def requirement_of(function: Callable[..., Any]) -> Requirement | None:
    """The declaration of a function decorated with :func:`requires`, else ``None``."""
    found = getattr(function, _ATTRIBUTE, None)
    return found if isinstance(found, Requirement) else None


def service_functions(*modules: ModuleType) -> dict[str, Callable[..., Any]]:
    """Public functions defined in these modules taking ``crm``, ``ctx`` or ``uow`` first.

    These are a plugin's service functions: each must carry a declaration.
    """
    found: dict[str, Callable[..., Any]] = {}
    for module in modules:
        for name, value in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            if inspect.unwrap(value).__module__ != module.__name__:
                continue
            parameters = list(inspect.signature(value).parameters)
            if parameters and parameters[0] in ("crm", "ctx", "uow"):
                found[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = value
    return found


def undeclared(*modules: ModuleType) -> list[str]:
    """Service functions of these modules without a :func:`requires` declaration.

    Functions :func:`enforce_declared` made system-only are listed too.
    """
    found = []
    for name, function in service_functions(*modules).items():
        requirement = requirement_of(function)
        if requirement is None or not requirement.declared:
            found.append(name)
    return sorted(found)


def enforce_declared(*modules: ModuleType | str) -> None:
    """Make every undeclared service function of these modules refuse a user's view.

    Call it as the last line of a service module (``enforce_declared(__name__)``):
    a function someone forgot to declare then works for the trusted system
    view only, and a user's call is an AccessDeniedError instead of a leak.
    Modules are given as objects or by their import name.
    """
    for given in modules:
        module = sys.modules[given] if isinstance(given, str) else given
        for qualified, function in service_functions(module).items():
            if requirement_of(function) is not None:
                continue
            name = qualified.rsplit(".", 1)[-1]
            setattr(module, name, _system_only(function))


def _system_only(function: F) -> F:
    signature = inspect.signature(function)

    @functools.wraps(function)
    def refused(*args: Any, **kwargs: Any) -> Any:
        crm, _ = _crm_and_ctx(signature.bind(*args, **kwargs).arguments)
        if crm.principal is not None:
            raise AccessDeniedError(
                f"{function.__qualname__} declares no access requirement: "
                "only the trusted system view may call it"
            )
        return function(*args, **kwargs)

    setattr(refused, _ATTRIBUTE, Requirement(Action.ADMINISTER, declared=False))
    return refused  # type: ignore[return-value]


__all__ = [
    "CustomerResolver",
    "Requirement",
    "enforce_declared",
    "requirement_of",
    "requires",
    "service_functions",
    "undeclared",
]
