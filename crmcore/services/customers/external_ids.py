"""External ids: the id a customer has in another system (an ERP, a shop), unique per system.

A customer may hold any number of ``(system, external_id)`` pairs (table
``crm_customer_external_ids``, primary key ``(system, external_id)``): one
pair belongs to at most one customer. ``crm.customers.get_by_external_id``
finds the customer by it; imports match on it (``--match external_id``).

``create`` and ``create_many`` accept the pairs of a new customer under the
key ``"external_ids"`` of the customer *mapping* (``{"name": ..., "external_ids":
{"erp": "C-1001"}}``; a value may also be a list of ids). It is not a field of
:class:`~crmcore.model.entities.Customer`: the pairs live in their own table,
and are read and changed with :meth:`CustomerExternalIds.external_ids`,
:meth:`~CustomerExternalIds.add_external_id` and
:meth:`~CustomerExternalIds.remove_external_id`.

A system name is 1 to 100 letters, digits, ``_``, ``.``, ``:`` or ``-``
(case-sensitive); an external id is 1 to 200 characters of text (blanks
around it are stripped, case is kept). Adding and removing are audited
(``customer.external_id.add`` / ``.remove``) and emit
``customer.external_id_added`` / ``customer.external_id_removed`` events
(data: ``system``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, select

from crmcore.access import Action
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.model.entities import Customer
from crmcore.model.storable import text_problem
from crmcore.services.customers.base import IN_CHUNK, CustomerServiceBase
from crmcore.storage.bulk import insert_rows
from crmcore.storage.tables import customer_external_ids
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

#: The key of a customer mapping that holds its external ids on create.
EXTERNAL_IDS_KEY = "external_ids"
_SYSTEM = re.compile(r"^[\w][\w.:-]{0,99}$")
_ID_LIMIT = 200

#: One external id: (system, id in that system).
ExternalId = tuple[str, str]


def check_system(value: object, field: str = "system") -> str:
    """``value`` as a system name (stripped); ValidationError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{field}: expected a string, got {type(value).__name__}", field=field, value=value
        )
    name = value.strip()
    if not _SYSTEM.match(name) or not name.isprintable():
        raise ValidationError(
            f"{field}: {value!r} is not a system name (1 to 100 letters, digits, _ . : -)",
            field=field,
            value=value,
        )
    return name


def check_external_id(value: object, field: str = "external_id") -> str:
    """``value`` as an external id (stripped); ValidationError naming ``field`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationError(
            f"{field}: expected a string, got {type(value).__name__}", field=field, value=value
        )
    text = value.strip()
    problem = text_problem(text, field)
    if problem is not None:
        raise ValidationError(f"{problem[0]}: {problem[1]}", field=field)
    if not text:
        raise ValidationError(f"{field}: must not be empty", field=field, value=value)
    if len(text) > _ID_LIMIT or not text.isprintable():
        raise ValidationError(
            f"{field}: must be at most {_ID_LIMIT} printable characters", field=field, value=value
        )
    return text


def parse_external_ids(value: object, field: str = EXTERNAL_IDS_KEY) -> list[ExternalId]:
    """The pairs of an ``external_ids`` value: ``{system: id}`` or ``{system: [id, ...]}``."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{field}: expected an object of system -> id, got {type(value).__name__}",
            field=field,
        )
    pairs: list[ExternalId] = []
    for raw_system, ids in value.items():
        system = check_system(raw_system, f"{field} key")
        for one in ids if isinstance(ids, list | tuple) else [ids]:
            pair = (system, check_external_id(one, f"{field}.{system}"))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def split_external_ids(item: Any) -> tuple[Any, list[ExternalId]]:
    """A create item without its ``external_ids`` key, and the pairs that key held."""
    if not isinstance(item, Mapping) or EXTERNAL_IDS_KEY not in item:
        return item, []
    rest = {k: v for k, v in item.items() if k != EXTERNAL_IDS_KEY}
    return rest, parse_external_ids(item[EXTERNAL_IDS_KEY])


def external_id_holders(
    connection: Connection, pairs: Iterable[ExternalId]
) -> dict[ExternalId, int]:
    """Which customer holds each of ``pairs`` (no access check: callers check what they show)."""
    by_system: dict[str, list[str]] = {}
    for system, external_id in set(pairs):
        by_system.setdefault(system, []).append(external_id)
    table = customer_external_ids
    found: dict[ExternalId, int] = {}
    for system, ids in sorted(by_system.items()):
        ids.sort()
        for start in range(0, len(ids), IN_CHUNK):
            query = select(table.c.external_id, table.c.customer_id).where(
                table.c.system == system, table.c.external_id.in_(ids[start : start + IN_CHUNK])
            )
            found.update(((system, e), cid) for e, cid in connection.execute(query))
    return found


def taken_error(pair: ExternalId, holder: int, *, visible: bool) -> ConflictError:
    """The refusal of an external id held by another customer (named only if visible)."""
    system, external_id = pair
    who = f"customer {holder}" if visible else "a customer you may not see"
    return ConflictError(
        f"external_id: {system} {external_id!r} already belongs to {who}",
        existing_id=holder if visible else None,
    )


def store_external_ids(
    crm: CRM, uow: UnitOfWork, entries: Sequence[tuple[int, Sequence[ExternalId]]]
) -> int:
    """Store the pairs of each (customer id, pairs) entry, audited, with their events.

    The caller has checked the principal and that no pair is held by another
    customer. Returns the number of pairs stored.
    """
    flat = [(cid, s, e) for cid, pairs in entries for s, e in pairs]
    if not flat:
        return 0
    rows = [
        {"system": s, "external_id": e, "customer_id": cid, "created_at": uow.now}
        for cid, s, e in flat
    ]
    insert_rows(uow.connection, customer_external_ids, rows)
    crm.audit.record_batch(
        uow,
        "customer.external_id.add",
        "customer",
        # One entry per pair when there is one; else one per system (ids in the table).
        [
            (cid, cid, {"system": s, "external_id": e} if len(flat) == 1 else {"system": s})
            for cid, s, e in flat
        ],
    )
    uow.emit_many(
        "customer.external_id_added", [{"customer_id": cid, "system": s} for cid, s, _ in flat]
    )
    return len(rows)


class PendingExternalIds:
    """The external ids of one batch of new customers, from reading the items to storing them."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._by_position: dict[int, list[ExternalId]] = {}
        self._seen: dict[ExternalId, int] = {}

    def keep(self, position: int, pairs: Sequence[ExternalId]) -> None:
        """Hold the pairs of an accepted item; ConflictError if an earlier item holds one."""
        for pair in pairs:
            if pair in self._seen:
                raise ConflictError(
                    f"external_id: {pair[0]} {pair[1]!r} is also used by "
                    f"customers[{self._seen[pair]}] in the same batch"
                )
        for pair in pairs:
            self._seen[pair] = position
        if pairs:
            self._by_position[position] = list(pairs)

    def refused(self, uow: UnitOfWork) -> dict[int, ConflictError]:
        """Position -> the refusal of each item with a pair another stored customer holds."""
        if not self._seen:
            return {}
        holders = external_id_holders(uow.connection, self._seen)
        refused: dict[int, ConflictError] = {}
        for pair, holder in holders.items():
            position = self._seen[pair]
            if position not in refused:
                visible = self._crm.access.may_see(holder, ctx=uow)
                refused[position] = taken_error(pair, holder, visible=visible)
        return refused

    def store(self, uow: UnitOfWork, created: Iterable[tuple[int, int]]) -> None:
        """Store the pairs of the items created, given as (position, new customer id)."""
        if self._by_position:
            entries = [(cid, self._by_position.get(p, ())) for p, cid in created]
            store_external_ids(self._crm, uow, entries)


class CustomerExternalIds(CustomerServiceBase):
    """External ids of customers (part of ``CustomerService``)."""

    def get_by_external_id(
        self, system: str, external_id: str, *, ctx: UnitOfWork | None = None
    ) -> Customer:
        """The customer holding ``external_id`` in ``system``.

        NotFoundError when no customer holds it, or the acting user may not
        read the one who does (the answer reveals nothing of a hidden customer).
        """
        pair = (check_system(system), check_external_id(external_id))
        with self._crm.reading(ctx) as uow:
            holder = external_id_holders(uow.connection, [pair]).get(pair)
            customer = self._get(uow.connection, holder) if holder is not None else None
            if customer is None or not self._crm.access.allowed(Action.READ, customer, ctx=uow):
                raise NotFoundError(f"no customer has the external id {pair[0]} {pair[1]!r}")
        return customer

    def external_ids(
        self, customer_id: int, *, ctx: UnitOfWork | None = None
    ) -> dict[str, list[str]]:
        """The external ids of a customer: system -> its ids there, sorted.

        NotFoundError for an unknown customer; AccessDeniedError when the
        acting user may not read it.
        """
        with self._crm.reading(ctx) as uow:
            customer = self._get(uow.connection, customer_id)
            self._crm.access.check(Action.READ, customer, ctx=uow)
            table = customer_external_ids
            rows = uow.connection.execute(
                select(table.c.system, table.c.external_id)
                .where(table.c.customer_id == customer_id)
                .order_by(table.c.system, table.c.external_id)
            ).all()
        found: dict[str, list[str]] = {}
        for system, external_id in rows:
            found.setdefault(system, []).append(external_id)
        return found

    def add_external_id(
        self,
        customer_id: int,
        system: str,
        external_id: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> bool:
        """Give a customer the id ``external_id`` in ``system``; False if it held it already.

        ConflictError when another customer holds it (named only to whom may
        see it); AccessDeniedError unless the acting user may write the customer.
        """
        pair = (check_system(system), check_external_id(external_id))
        with self._crm.unit_of_work(actor, ctx) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.WRITE, customer, ctx=uow)
            holder = external_id_holders(uow.connection, [pair]).get(pair)
            if holder == customer_id:
                return False
            if holder is not None:
                visible = self._crm.access.may_see(holder, ctx=uow)
                raise taken_error(pair, holder, visible=visible)
            store_external_ids(self._crm, uow, [(customer_id, [pair])])
        return True

    def remove_external_id(
        self,
        customer_id: int,
        system: str,
        external_id: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> None:
        """Take the id ``external_id`` in ``system`` away from a customer.

        NotFoundError when the customer does not hold it; AccessDeniedError
        unless the acting user may write the customer.
        """
        pair = (check_system(system), check_external_id(external_id))
        table = customer_external_ids
        with self._crm.unit_of_work(actor, ctx) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.WRITE, customer, ctx=uow)
            removed = uow.connection.execute(
                delete(table).where(
                    and_(
                        table.c.system == pair[0],
                        table.c.external_id == pair[1],
                        table.c.customer_id == customer_id,
                    )
                )
            ).rowcount
            if not removed:
                raise NotFoundError(
                    f"customer {customer_id} has no external id {pair[0]} {pair[1]!r}"
                )
            self._crm.audit.record_batch(
                uow,
                "customer.external_id.remove",
                "customer",
                [(customer_id, customer_id, {"system": pair[0], "external_id": pair[1]})],
            )
            uow.emit("customer.external_id_removed", customer_id, {"system": pair[0]})


__all__ = [
    "EXTERNAL_IDS_KEY",
    "CustomerExternalIds",
    "ExternalId",
    "PendingExternalIds",
    "check_external_id",
    "check_system",
    "external_id_holders",
    "parse_external_ids",
    "split_external_ids",
    "store_external_ids",
    "taken_error",
]
