"""What the accounts service's parts share: loading checked customers, values, change reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, select, true

from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.errors import ValidationError
from crmcore.model.accounts import AccountSettings
from crmcore.model.entities import Customer, CustomerKind
from crmcore.model.limits import INT64_MAX, int_problem
from crmcore.model.storable import text_problem
from crmcore.storage.filters import among
from crmcore.storage.records import load_customer
from crmcore.storage.tables import customers
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

#: The event each relationship change is published as (after commit, through the outbox).
RELATIONSHIP_EVENT = "account.relationship_changed"

#: Per change kind: the key naming the customer the change is about (the event's customer).
_SUBJECT = {
    "contact": "organisation_id",
    "parent": "organisation_id",
    "link": "from_id",
    "team": "account_id",
}
#: Per change kind: every key naming a customer it concerns (one audit entry each).
_CONCERNED = {
    "contact": ("organisation_id", "person_id"),
    "parent": ("organisation_id", "parent_id"),
    "link": ("from_id", "to_id"),
    "team": ("account_id",),
}
_ENTITY_ID = {"contact": "contact_id", "link": "link_id"}

_KIND_NAMES = {CustomerKind.PERSON: "a person", CustomerKind.ORGANIZATION: "an organisation"}


def check_id(value: Any, name: str) -> int:
    """``value`` if it is a positive 64-bit id; ValidationError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"{name}: expected a customer id, got {value!r}", field=name, value=value
        )
    if problem := int_problem(value, 1, INT64_MAX):
        raise ValidationError(f"{name}: {problem}", field=name, value=value)
    return value


def check_text(value: Any, name: str, limit: int = 200) -> str | None:
    """Optional text of at most ``limit`` characters, stripped (blank: ``None``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(
            f"{name}: expected text, got {type(value).__name__}", field=name, value=value
        )
    if problem := text_problem(value, name):
        raise ValidationError(f"{problem[0]}: {problem[1]}", field=name)
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"{name}: longer than {limit} characters ({len(value)})", field=name)
    return value or None


def check_code(value: Any, name: str, allowed: Sequence[str], setting: str) -> str:
    """``value`` if it is one of ``allowed`` (a configured list: ``[accounts] <setting>``)."""
    if isinstance(value, str) and value in allowed:
        return value
    raise ValidationError(
        f"{name}: {value!r} is not one of: {', '.join(allowed)} ([accounts] {setting})",
        field=name,
        value=value,
    )


def check_day(value: Any, name: str) -> date | None:
    """A calendar day: a ``date`` or an ISO 8601 date string (``None`` stays ``None``)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(
        f"{name}: expected a date (YYYY-MM-DD), got {value!r}", field=name, value=value
    )


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware ``moment``."""
    return moment.astimezone(UTC).date()


def today(uow: UnitOfWork) -> date:
    """The unit of work's day, in UTC (what *current* means for contacts)."""
    return utc_day(uow.now)


def report_changes(uow: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """Audit, publish and announce relationship changes, inside ``uow``.

    One audit entry per change and customer concerned (action
    ``account.<kind>.<action>``), one ``account.relationship_changed`` event
    per change (written to the outbox, delivered after commit), then one
    ``crm_relationships_changed`` call with every change. Nothing when
    ``changes`` is empty.
    """
    if not changes:
        return
    batch = [dict(change) for change in changes]
    entries = []
    for change in batch:
        kind = change["kind"]
        details = {k: v for k, v in change.items() if k not in ("kind", "action")}
        entity_id = change.get(_ENTITY_ID.get(kind, ""))
        for key in _CONCERNED[kind]:
            if change.get(key) is not None:
                entries.append(
                    AuditEntry(
                        f"account.{kind}.{change['action']}", kind, entity_id, change[key], details
                    )
                )
    uow.crm.audit.record(uow, entries)
    uow.emit_many(
        RELATIONSHIP_EVENT,
        [{"customer_id": change[_SUBJECT[change["kind"]]], **change} for change in batch],
    )
    uow.crm.call_hook("crm_relationships_changed", ctx=uow, changes=batch)


def names_of(connection: Connection, ids: Iterable[int]) -> dict[int, str]:
    """Each customer's name (never a sealed field), by id; unknown ids are left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(customers.c.id, customers.c.name).where(
        among(connection, customers.c.id, wanted)
    )
    return {cid: name for cid, name in connection.execute(query)}


class AccountsBase:
    """The CRM and the helpers every part of ``crm.accounts`` uses."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def settings(self) -> AccountSettings:
        """The ``[accounts]`` section of the configuration."""
        return self._crm.config.accounts

    def _load(
        self,
        uow: UnitOfWork,
        customer_id: Any,
        action: Action,
        name: str,
        kind: CustomerKind | None = None,
        *,
        lock: bool = False,
    ) -> Customer:
        """The customer, after the access check for ``action``; ValidationError if not ``kind``.

        The kind is checked after access, so a refused user learns nothing of it.
        """
        customer = load_customer(
            uow.connection, check_id(customer_id, name), self._crm.cipher, lock=lock
        )
        self._crm.access.check(action, customer, ctx=uow)
        if kind is not None and customer.kind is not kind:
            raise ValidationError(
                f"{name}: customer {customer.id} is {_KIND_NAMES[customer.kind]}, "
                f"not {_KIND_NAMES[kind]}",
                field=name,
                value=customer_id,
            )
        return customer

    def _seen(self, uow: UnitOfWork) -> ColumnElement[bool] | None:
        """The customers the acting user may read, as SQL (``None``: all); once per call."""
        return self._crm.access.visible_condition(ctx=uow)


def visible(column: ColumnElement[Any], seen: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """Rows whose customer ``column`` is among ``seen`` (:meth:`AccountsBase._seen`)."""
    return true() if seen is None else column.in_(select(customers.c.id).where(seen))
