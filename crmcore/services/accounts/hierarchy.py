"""The organisation hierarchy: parents, subsidiaries and group trees, without cycles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, literal, select, text, update

from crmcore.access import Action
from crmcore.errors import ValidationError
from crmcore.model.accounts import AccountNode
from crmcore.model.entities import CustomerKind
from crmcore.services.accounts.common import AccountsBase, names_of, report_changes, visible
from crmcore.storage.filters import among
from crmcore.storage.tables import account_parents, customers
from crmcore.unit_of_work import UnitOfWork

ORG = CustomerKind.ORGANIZATION

#: How deep a hierarchy may go (a bound on the recursive queries, never reached in practice).
MAX_DEPTH = 100
#: The PostgreSQL advisory lock that serialises hierarchy changes (no two may close a cycle).
_HIERARCHY_LOCK = 0x43524D48  # "CRMH"


def lock_hierarchy(connection: Connection) -> None:
    """Serialise hierarchy changes on PostgreSQL until the transaction ends (SQLite: no-op).

    Two transactions each adding one half of a cycle would both pass the
    cycle check; holding this lock while checking and writing prevents it.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _HIERARCHY_LOCK})


def ancestor_ids(connection: Connection, organisation_id: int) -> list[int]:
    """The organisation's parent, its parent's parent ... up to the top of the group, in order."""
    up = (
        select(account_parents.c.parent_id.label("id"), literal(1).label("depth"))
        .where(account_parents.c.organisation_id == organisation_id)
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(account_parents.c.parent_id, up.c.depth + 1)
        .join(up, account_parents.c.organisation_id == up.c.id)
        .where(up.c.depth < MAX_DEPTH)
    )
    rows = connection.execute(select(up.c.id, up.c.depth).order_by(up.c.depth)).all()
    seen: list[int] = []
    for ancestor, _ in rows:
        if ancestor in seen:  # a cycle a merge closed: stop where it repeats
            break
        seen.append(ancestor)
    return seen


def subsidiary_pairs(connection: Connection, organisation_id: int) -> list[tuple[int, int]]:
    """``(subsidiary, its parent)`` for every organisation below this one, recursively."""
    below = (
        select(account_parents.c.organisation_id, account_parents.c.parent_id)
        .where(account_parents.c.parent_id == organisation_id)
        .cte("below", recursive=True)
    )
    below = below.union(
        select(account_parents.c.organisation_id, account_parents.c.parent_id).join(
            below, account_parents.c.parent_id == below.c.organisation_id
        )
    )
    query = select(below.c.organisation_id, below.c.parent_id).order_by(below.c.organisation_id)
    return [(child, parent) for child, parent in connection.execute(query)]


def parent_change(
    action: str, organisation_id: int, parent_id: int, previous: int | None = None
) -> dict[str, Any]:
    """The ``crm_relationships_changed`` mapping of a hierarchy change."""
    change: dict[str, Any] = {
        "kind": "parent",
        "action": action,
        "organisation_id": organisation_id,
        "parent_id": parent_id,
    }
    if action == "updated":
        change["previous_parent_id"] = previous
    return change


class HierarchyPart(AccountsBase):
    """Parents and subsidiaries (part of ``crm.accounts``)."""

    def _visible_ids(
        self, uow: UnitOfWork, ids: Iterable[int], seen: ColumnElement[bool] | None
    ) -> set[int]:
        wanted = sorted(set(ids))
        if not wanted or seen is None:
            return set(wanted)
        query = select(customers.c.id).where(
            among(uow.connection, customers.c.id, wanted), visible(customers.c.id, seen)
        )
        return set(uow.connection.execute(query).scalars())

    def set_parent(
        self,
        organisation_id: int,
        parent_id: int | None,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> int | None:
        """Make ``parent_id`` the parent of an organisation (``None``: none); return the old one.

        Both must be organisations and the acting user must write both.
        Refused (ValidationError) when it would make a cycle: an organisation
        cannot be its own parent or the parent of one of its ancestors.
        """
        with self._crm.unit_of_work(actor, ctx) as uow:
            lock_hierarchy(uow.connection)
            org = self._load(uow, organisation_id, Action.WRITE, "organisation_id", ORG)
            assert org.id is not None
            previous: int | None = uow.connection.execute(
                select(account_parents.c.parent_id).where(
                    account_parents.c.organisation_id == org.id
                )
            ).scalar()
            if parent_id is None:
                if previous is not None:
                    uow.connection.execute(
                        delete(account_parents).where(account_parents.c.organisation_id == org.id)
                    )
                    report_changes(uow, [parent_change("removed", org.id, previous)])
                return previous
            if parent_id == org.id:
                raise ValidationError(
                    f"parent_id: organisation {org.id} cannot be its own parent", field="parent_id"
                )
            parent = self._load(uow, parent_id, Action.WRITE, "parent_id", ORG)
            assert parent.id is not None
            if org.id in ancestor_ids(uow.connection, parent.id):
                raise ValidationError(
                    f"parent_id: organisation {parent.id} is a subsidiary of organisation "
                    f"{org.id}: the hierarchy would have a cycle",
                    field="parent_id",
                )
            if previous == parent.id:
                return previous
            if previous is None:
                uow.connection.execute(
                    insert(account_parents), [{"organisation_id": org.id, "parent_id": parent.id}]
                )
                change = parent_change("added", org.id, parent.id)
            else:
                uow.connection.execute(
                    update(account_parents)
                    .where(account_parents.c.organisation_id == org.id)
                    .values(parent_id=parent.id)
                )
                change = parent_change("updated", org.id, parent.id, previous)
            report_changes(uow, [change])
        return previous

    def parent(self, organisation_id: int, *, ctx: UnitOfWork | None = None) -> AccountNode | None:
        """The organisation's parent (without its subsidiaries), or ``None``.

        ``None`` too when the acting user may not read the parent.
        """
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            return self._parent_node(uow, org.id, self._seen(uow))

    def _parent_node(
        self, uow: UnitOfWork, organisation_id: int, seen: ColumnElement[bool] | None
    ) -> AccountNode | None:
        parent_id = uow.connection.execute(
            select(account_parents.c.parent_id).where(
                account_parents.c.organisation_id == organisation_id
            )
        ).scalar()
        if parent_id is None or not self._visible_ids(uow, [parent_id], seen):
            return None
        return AccountNode(parent_id, names_of(uow.connection, [parent_id])[parent_id])

    def subsidiaries(
        self, organisation_id: int, *, ctx: UnitOfWork | None = None
    ) -> list[AccountNode]:
        """The organisation's subsidiaries, each with its own subsidiaries (a forest).

        A subsidiary the acting user may not read is left out with everything below it.
        """
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            return list(self._tree(uow, org.id, org.name, self._seen(uow)).children)

    def group_tree(self, organisation_id: int, *, ctx: UnitOfWork | None = None) -> AccountNode:
        """The whole group the organisation belongs to, from its top parent down.

        The top is the highest ancestor the acting user may read (the
        organisation itself when it has no readable parent); parts the user
        may not read are left out.
        """
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            seen = self._seen(uow)
            ancestors = ancestor_ids(uow.connection, org.id)
            readable = self._visible_ids(uow, ancestors, seen)
            top = org.id
            for ancestor in ancestors:
                if ancestor not in readable:
                    break
                top = ancestor
            return self._tree(uow, top, names_of(uow.connection, [top])[top], seen)

    def _tree(
        self, uow: UnitOfWork, root: int, name: str, seen: ColumnElement[bool] | None
    ) -> AccountNode:
        pairs = subsidiary_pairs(uow.connection, root)
        readable = self._visible_ids(uow, [child for child, _ in pairs], seen)
        names = names_of(uow.connection, readable)
        children: dict[int, list[int]] = {}
        for child, parent in pairs:
            if child in readable and child != root:
                children.setdefault(parent, []).append(child)

        def node(org_id: int, label: str, depth: int) -> AccountNode:
            below = children.get(org_id, []) if depth < MAX_DEPTH else []
            return AccountNode(
                org_id, label, tuple(node(c, names[c], depth + 1) for c in sorted(below))
            )

        return node(root, name, 0)


__all__ = ["HierarchyPart", "ancestor_ids", "lock_hierarchy", "parent_change", "subsidiary_pairs"]
