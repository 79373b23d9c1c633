"""Which customers are shared with a user who does not own them, as SQL on ``crm_customers``.

Two things share a customer (:mod:`crmcore.access` applies them to agents):

* a **grant** (``crm_customer_grants``): read and write;
* an **account team** (``crm_account_team``, :mod:`crmcore.services.accounts`):
  a member reaches the account and its contacts current on the day, for
  reading, and for writing when their team role is one of the write roles;
  the owner of an organisation reaches its current contacts, for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, and_, exists, or_, select

from crmcore.storage.tables import (
    account_team,
    contact_is_current,
    contacts,
    customer_grants,
    customers,
)


def shared_with(
    user: str, *, writing: bool, write_roles: Sequence[str], day: date
) -> ColumnElement[bool]:
    """The customers shared with ``user`` (see the module docstring), to read or to write.

    A condition on ``crm_customers`` (correlated ``EXISTS`` subqueries):
    use it where that table is in the query's ``FROM``.
    """
    granted = exists(
        select(1).where(
            customer_grants.c.customer_id == customers.c.id, customer_grants.c.user == user
        )
    )
    member = account_team.c.user == user
    if writing:
        member = and_(member, account_team.c.role.in_(write_roles))
    account = customers.alias("team_account")
    contact = and_(contacts.c.person_id == customers.c.id, contact_is_current(day))
    return or_(
        granted,
        exists(select(1).where(account_team.c.customer_id == customers.c.id, member)),
        exists(
            select(1)
            .select_from(
                contacts.join(
                    account_team, account_team.c.customer_id == contacts.c.organisation_id
                )
            )
            .where(contact, member)
        ),
        exists(
            select(1)
            .select_from(contacts.join(account, account.c.id == contacts.c.organisation_id))
            .where(contact, account.c.owner == user)
        ),
    )


__all__ = ["shared_with"]
