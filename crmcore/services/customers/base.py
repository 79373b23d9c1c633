"""What the customer service's parts share: the CRM, row loading, rejects and plugin checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import (
    Connection,
    Row,
    select,
)

from crmcore.access import Role
from crmcore.errors import (
    CRMError,
    ValidationError,
    ValidationErrors,
)
from crmcore.model.entities import (
    Customer,
)
from crmcore.security.encryption import UnreadableError
from crmcore.security.stored_keys import IdentityKeys
from crmcore.security.unreadable import UnreadableRows, check_policy
from crmcore.storage.tables import customer_tags
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM
from crmcore.errors import RejectHandler, with_location
from crmcore.storage.records import customer_from_row, load_customer

if TYPE_CHECKING:
    from crmcore.app import CRM


#: Ids per ``IN (...)`` list (keeps every backend's bound-parameter limit far away).
IN_CHUNK = 400


class CustomerServiceBase:
    """State and helpers shared by the customer service's reading, writing and privacy parts."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        #: Customers that listings skipped because their sealed fields cannot be opened.
        self.unreadable = UnreadableRows()

    def _reject(
        self, on_reject: RejectHandler | None, position: int, item: Any, exc: CRMError
    ) -> None:
        if on_reject is None:
            raise with_location(exc, f"customers[{position}]") from None
        on_reject(position, item, exc)

    def _run_plugin_validation(
        self,
        uow: UnitOfWork,
        kept: list[tuple[int, Any, Customer, IdentityKeys]],
        on_reject: RejectHandler | None,
    ) -> list[tuple[int, Any, Customer, IdentityKeys]]:
        if not kept:
            return kept
        problems: dict[int, list[str]] = {}
        for answer in self._crm.call_hook(
            "crm_validate_customers", ctx=uow, customers=[c for _, _, c, _ in kept]
        ):
            for index, message in answer or ():
                problems.setdefault(index, []).append(message)
        if not problems:
            return kept
        result = []
        for index, entry in enumerate(kept):
            if index in problems:
                errors = [ValidationError(m) for m in problems[index]]
                exc = errors[0] if len(errors) == 1 else ValidationErrors(errors)
                self._reject(on_reject, entry[0], entry[1], exc)
            else:
                result.append(entry)
        return result

    def _validate_with_plugins(self, uow: UnitOfWork, customer: Customer) -> None:
        messages = [
            message
            for answer in self._crm.call_hook(
                "crm_validate_customers", ctx=uow, customers=[customer]
            )
            for _, message in (answer or ())
        ]
        if messages:
            errors = [ValidationError(m) for m in messages]
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)

    def _get(self, connection: Connection, customer_id: int, *, lock: bool = False) -> Customer:
        return load_customer(connection, customer_id, self._crm.cipher, lock=lock)

    def _owned_by_agent(self, customer: Customer) -> Customer:
        """An agent's new customer without an owner becomes theirs."""
        principal = self._crm.principal
        if principal is not None and principal.role is Role.AGENT and customer.owner is None:
            return attrs.evolve(customer, owner=principal.user)
        return customer

    def _rows_to_customers(
        self, connection: Connection, rows: Sequence[Row[Any]], unreadable: str | None = None
    ) -> list[Customer]:
        """The customers of ``rows``, without those whose sealed fields cannot be opened.

        Such a row is skipped (logged, counted in :attr:`unreadable`) or raises,
        by ``unreadable`` or the config.
        """
        ids = [r.id for r in rows]
        tags: dict[int, list[str]] = {}
        for start in range(0, len(ids), IN_CHUNK):
            query = (
                select(customer_tags.c.customer_id, customer_tags.c.tag)
                .where(customer_tags.c.customer_id.in_(ids[start : start + IN_CHUNK]))
                .order_by(customer_tags.c.tag)
            )
            for cid, tag in connection.execute(query):
                tags.setdefault(cid, []).append(tag)
        cipher = self._crm.cipher
        policy = check_policy(unreadable or self._crm.config.unreadable)
        result: list[Customer] = []
        for r in rows:
            try:
                result.append(customer_from_row(r, tags.get(r.id, ()), cipher))
            except UnreadableError as exc:
                self.unreadable.handle(exc, policy)
        return result
