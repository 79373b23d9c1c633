"""The 360° view of an organisation: contacts, team, group, roll-ups, scores, plugin sections.

Roll-ups cover the *members* of the account: the organisation, every
subsidiary below it (recursively) and the current contacts of all of them,
counting only customers the acting user may read. Over the members'
interactions: ``interaction_count`` (every kind), ``revenue`` (the sum of
purchase amounts per currency; refunds are not subtracted) and
``last_interaction`` (the latest ``occurred_at``). Each plugin adds its
section through ``crm_account_rollup(crm, account_id, member_ids)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select

from crmcore.access import Action
from crmcore.model.accounts import AccountNode, Contact
from crmcore.model.entities import CustomerKind, InteractionKind
from crmcore.model.serialization import to_dict
from crmcore.security.encryption import UnreadableError
from crmcore.services.accounts.common import names_of, today, visible
from crmcore.services.accounts.contacts import ContactsPart
from crmcore.services.accounts.hierarchy import HierarchyPart
from crmcore.services.accounts.scores import ScoresPart, read_trends, signals_of
from crmcore.services.accounts.team import TeamPart
from crmcore.storage.filters import among
from crmcore.storage.records import load_customer
from crmcore.storage.tables import contact_is_current, contacts, interactions
from crmcore.unit_of_work import UnitOfWork

ORG = CustomerKind.ORGANIZATION


def _money(amounts: dict[str, Decimal]) -> dict[str, str]:
    return {currency: str(amount) for currency, amount in sorted(amounts.items())}


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def interaction_rollup(
    uow: UnitOfWork, member_ids: Sequence[int]
) -> dict[int, tuple[int, dict[str, Decimal], datetime | None]]:
    """Per member: (interaction count, purchase amounts per currency, latest ``occurred_at``)."""
    if not member_ids:
        return {}
    connection = uow.connection
    members = among(connection, interactions.c.customer_id, sorted(set(member_ids)))
    found: dict[int, tuple[int, dict[str, Decimal], datetime | None]] = {}
    counts = select(
        interactions.c.customer_id, func.count(), func.max(interactions.c.occurred_at)
    ).where(members)
    for customer_id, count, latest in connection.execute(
        counts.group_by(interactions.c.customer_id)
    ):
        found[customer_id] = (int(count), {}, latest)
    revenue = (
        select(interactions.c.customer_id, interactions.c.currency, func.sum(interactions.c.amount))
        .where(members, interactions.c.kind == InteractionKind.PURCHASE.value)
        .group_by(interactions.c.customer_id, interactions.c.currency)
    )
    for customer_id, currency, amount in connection.execute(revenue):
        if currency is not None and amount is not None:
            found[customer_id][1][currency] = Decimal(amount)
    return found


class ViewPart(ContactsPart, HierarchyPart, TeamPart, ScoresPart):
    """The account view and its roll-ups (part of ``crm.accounts``)."""

    def _person(self, uow: UnitOfWork, contact: Contact, names: dict[int, str]) -> dict[str, Any]:
        shown: dict[str, Any] = {**to_dict(contact), "name": names.get(contact.person_id)}
        try:
            person = load_customer(uow.connection, contact.person_id, self._crm.cipher)
        except UnreadableError:  # sealed fields no configured key opens: the name only
            return shown
        return {**shown, "email": person.email, "phone": person.phone}

    def member_ids(self, organisation_id: int, *, ctx: UnitOfWork | None = None) -> list[int]:
        """The customers an account's roll-ups cover (see the module docstring), sorted."""
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            organisations, people = self._members(uow, org.id, org.name, self._seen(uow))
        return sorted({*organisations.ids(), *people})

    def _members(
        self, uow: UnitOfWork, org_id: int, name: str, seen: ColumnElement[bool] | None
    ) -> tuple[AccountNode, list[int]]:
        tree = self._tree(uow, org_id, name, seen)
        query = (
            select(contacts.c.person_id)
            .where(
                among(uow.connection, contacts.c.organisation_id, tree.ids()),
                contact_is_current(today(uow)),
                visible(contacts.c.person_id, seen),
            )
            .distinct()
        )
        return tree, sorted(uow.connection.execute(query).scalars())

    def view(self, organisation_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """The 360° view of an organisation, JSON-safe.

        ``account`` (the customer), ``parent``, ``subsidiaries`` (the tree
        below), ``contacts`` (current ones, primary first, with name, email
        and phone), ``team`` (``owner`` and ``members``), ``rollup`` (totals
        and ``by_member``: see the module docstring), ``scores`` (the trend of
        each dimension for the account and per decision maker), ``signals``
        (weak or falling scores) and ``plugins`` (each plugin's
        ``crm_account_rollup`` section). The acting user must read the organisation.
        """
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            seen = self._seen(uow)
            current = self._contacts_of(uow, org.id, seen)
            tree, people = self._members(uow, org.id, org.name, seen)
            organisations = tree.ids()
            members = sorted({*organisations, *people})
            names = names_of(uow.connection, members + [c.person_id for c in current])
            rollup = interaction_rollup(uow, members)
            trends = read_trends(uow, [org.id], self._contact_scores_visible(seen))
            parent = self._parent_node(uow, org.id, seen)
            data = {
                "account": to_dict(org),
                "parent": None if parent is None else to_dict(parent),
                "subsidiaries": [to_dict(child) for child in tree.children],
                "contacts": [self._person(uow, c, names) for c in current],
                "team": {
                    "owner": org.owner,
                    "members": [to_dict(m) for m in self._team_of(uow, org.id)],
                },
                "rollup": self._rollup(org.id, organisations, people, names, rollup),
                "scores": {
                    "account": {d: to_dict(t) for d, t in trends.get((org.id, None), {}).items()},
                    "decision_makers": {
                        str(contact_id): {d: to_dict(t) for d, t in dims.items()}
                        for (_, contact_id), dims in sorted(
                            trends.items(), key=lambda kv: kv[0][1] or 0
                        )
                        if contact_id is not None
                    },
                },
                "signals": [
                    to_dict(s)
                    for s in signals_of(
                        trends, self.settings.weak_score, self.settings.falling_drop
                    )
                ],
            }
        data["plugins"] = self._crm.collect(
            "crm_account_rollup", crm=self._crm, account_id=org.id, member_ids=members
        )
        return data

    def _rollup(
        self,
        account_id: int,
        organisations: list[int],
        people: list[int],
        names: dict[int, str],
        found: dict[int, tuple[int, dict[str, Decimal], datetime | None]],
    ) -> dict[str, Any]:
        relation = {pid: "contact" for pid in people}
        relation.update({oid: "subsidiary" for oid in organisations})
        relation[account_id] = "account"
        total = 0
        revenue: dict[str, Decimal] = {}
        latest: datetime | None = None
        by_member = []
        for member in sorted(relation, key=lambda m: (m != account_id, relation[m], m)):
            count, amounts, last = found.get(member, (0, {}, None))
            total += count
            for currency, amount in amounts.items():
                revenue[currency] = revenue.get(currency, Decimal(0)) + amount
            if last is not None and (latest is None or last > latest):
                latest = last
            by_member.append(
                {
                    "customer_id": member,
                    "name": names.get(member),
                    "relation": relation[member],
                    "interaction_count": count,
                    "revenue": _money(amounts),
                    "last_interaction": _when(last),
                }
            )
        return {
            "members": len(relation),
            "organisations": len(organisations),
            "contacts": len(people),
            "interaction_count": total,
            "revenue": _money(revenue),
            "last_interaction": _when(latest),
            "by_member": by_member,
        }


__all__ = ["ViewPart", "interaction_rollup"]
