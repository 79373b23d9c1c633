"""A customer's accounts rows as a whole: moved by a merge, removed by erasure, exported.

These run inside a unit of work whose caller has checked access
(``crm.customers.merge``, ``erase``, ``export``); they check nothing themselves.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import delete, or_, select, update

from crmcore.model.serialization import to_dict
from crmcore.services.accounts.common import report_changes
from crmcore.services.accounts.contacts import contact_change, contact_from_row
from crmcore.services.accounts.hierarchy import ancestor_ids, lock_hierarchy, parent_change
from crmcore.services.accounts.links import link_change, link_from_row
from crmcore.services.accounts.scores import score_from_row
from crmcore.services.accounts.team import member_from_row, team_change
from crmcore.storage.tables import (
    account_parents,
    account_team,
    contacts,
    customer_links,
    interactions,
    relationship_scores,
)
from crmcore.unit_of_work import UnitOfWork


def _move_contacts(
    uow: UnitOfWork, from_id: int, to_id: int, moved: dict[str, int]
) -> list[dict[str, Any]]:
    connection = uow.connection
    involving = or_(contacts.c.person_id == from_id, contacts.c.organisation_id == from_id)
    rows = [contact_from_row(r) for r in connection.execute(select(contacts).where(involving))]
    kept = connection.execute(
        select(contacts.c.person_id, contacts.c.organisation_id, contacts.c.is_primary).where(
            or_(contacts.c.person_id == to_id, contacts.c.organisation_id == to_id)
        )
    ).all()
    pairs = {(p, o) for p, o, _ in kept}
    with_primary = {o for _, o, primary in kept if primary}
    changes = []
    for contact in sorted(rows, key=lambda c: (not c.primary, c.id or 0)):
        person = to_id if contact.person_id == from_id else contact.person_id
        org = to_id if contact.organisation_id == from_id else contact.organisation_id
        if person == org or (person, org) in pairs:
            connection.execute(delete(contacts).where(contacts.c.id == contact.id))
            changes.append(contact_change("removed", contact))
            continue
        pairs.add((person, org))
        primary = contact.primary and org not in with_primary
        if primary:
            with_primary.add(org)
        column = "person_id" if person != contact.person_id else "organisation_id"
        moved[f"crm_contacts.{column}"] += 1
        changed = [column] + ([] if primary == contact.primary else ["primary"])
        connection.execute(
            update(contacts)
            .where(contacts.c.id == contact.id)
            .values(person_id=person, organisation_id=org, is_primary=primary, updated_at=uow.now)
        )
        after = attrs.evolve(
            contact, person_id=person, organisation_id=org, primary=primary, updated_at=uow.now
        )
        changes.append(contact_change("updated", after, changed))
    return changes


def _move_parents(
    uow: UnitOfWork, from_id: int, to_id: int, moved: dict[str, int]
) -> list[dict[str, Any]]:
    connection = uow.connection
    lock_hierarchy(connection)
    changes = []
    children = connection.execute(
        select(account_parents.c.organisation_id).where(account_parents.c.parent_id == from_id)
    ).scalars()
    for child in list(children):
        if child == to_id:  # the kept organisation was the duplicate's subsidiary
            connection.execute(
                delete(account_parents).where(account_parents.c.organisation_id == child)
            )
            changes.append(parent_change("removed", child, from_id))
            continue
        connection.execute(
            update(account_parents)
            .where(account_parents.c.organisation_id == child)
            .values(parent_id=to_id)
        )
        moved["crm_account_parents.parent_id"] += 1
        changes.append(parent_change("updated", child, to_id, from_id))
    own = connection.execute(
        select(account_parents.c.parent_id).where(account_parents.c.organisation_id == from_id)
    ).scalar()
    if own is not None:
        has_parent = connection.execute(
            select(account_parents.c.parent_id).where(account_parents.c.organisation_id == to_id)
        ).scalar()
        connection.execute(
            delete(account_parents).where(account_parents.c.organisation_id == from_id)
        )
        changes.append(parent_change("removed", from_id, own))
        if has_parent is None and own != to_id:
            connection.execute(
                account_parents.insert(), [{"organisation_id": to_id, "parent_id": own}]
            )
            moved["crm_account_parents.organisation_id"] += 1
            changes.append(parent_change("added", to_id, own))
    if to_id in ancestor_ids(connection, to_id):  # the merge closed a cycle: the kept org's
        parent = connection.execute(  # own parent goes, so the group's top is the kept org
            select(account_parents.c.parent_id).where(account_parents.c.organisation_id == to_id)
        ).scalar_one()
        connection.execute(
            delete(account_parents).where(account_parents.c.organisation_id == to_id)
        )
        changes.append(parent_change("removed", to_id, parent))
    return changes


def _move_links(
    uow: UnitOfWork, from_id: int, to_id: int, moved: dict[str, int]
) -> list[dict[str, Any]]:
    connection = uow.connection
    involving = or_(customer_links.c.from_id == from_id, customer_links.c.to_id == from_id)
    rows = [link_from_row(r) for r in connection.execute(select(customer_links).where(involving))]
    existing = {
        (a, b, t)
        for a, b, t in connection.execute(
            select(customer_links.c.from_id, customer_links.c.to_id, customer_links.c.type).where(
                or_(customer_links.c.from_id == to_id, customer_links.c.to_id == to_id)
            )
        )
    }
    changes = []
    for link in rows:
        source = to_id if link.from_id == from_id else link.from_id
        target = to_id if link.to_id == from_id else link.to_id
        if source == target or (source, target, link.type) in existing:
            connection.execute(delete(customer_links).where(customer_links.c.id == link.id))
            changes.append(link_change("removed", link))
            continue
        existing.add((source, target, link.type))
        connection.execute(
            update(customer_links)
            .where(customer_links.c.id == link.id)
            .values(from_id=source, to_id=target)
        )
        column = "from_id" if source != link.from_id else "to_id"
        moved[f"crm_customer_links.{column}"] += 1
        changes.append(link_change("updated", attrs.evolve(link, from_id=source, to_id=target)))
    return changes


def _move_team(
    uow: UnitOfWork, from_id: int, to_id: int, moved: dict[str, int]
) -> list[dict[str, Any]]:
    connection = uow.connection
    rows = [
        member_from_row(r)
        for r in connection.execute(
            select(account_team).where(account_team.c.customer_id == from_id)
        )
    ]
    users = set(
        connection.execute(
            select(account_team.c.user).where(account_team.c.customer_id == to_id)
        ).scalars()
    )
    changes = []
    for member in rows:
        where = (account_team.c.customer_id == from_id, account_team.c.user == member.user)
        if member.user in users:  # already on the kept account's team: their role there stays
            connection.execute(delete(account_team).where(*where))
            changes.append(team_change("removed", member))
            continue
        connection.execute(update(account_team).where(*where).values(customer_id=to_id))
        moved["crm_account_team.customer_id"] += 1
        changes.append(team_change("added", attrs.evolve(member, account_id=to_id)))
    return changes


def move_account_rows(uow: UnitOfWork, from_id: int, to_id: int) -> dict[str, int]:
    """Re-point every accounts row of customer ``from_id`` to ``to_id`` (a merge), inside ``uow``.

    Contacts, hierarchy, typed links, account team and relationship scores
    move; a row that would become a duplicate of one ``to_id`` has (the same
    person and organisation, the same link, the same team member, a second
    parent) or a self-reference (a contact of itself, a link to itself, its
    own parent) is dropped instead, and ``to_id``'s own rows win. A moved
    primary contact stays primary only when ``to_id`` has none. When the
    move closes a cycle in the hierarchy, ``to_id``'s own parent row goes.
    Reports every change through ``crm_relationships_changed`` (moved rows
    as ``updated``, or as ``added`` for ``to_id``'s new parent and team
    members; dropped rows as ``removed``). ``crm_interactions.contact_id``
    is not touched (the merge moves it). Returns the rows moved per
    ``table.column``. The caller checks access.
    """
    moved = dict.fromkeys(
        (
            "crm_contacts.person_id",
            "crm_contacts.organisation_id",
            "crm_account_parents.organisation_id",
            "crm_account_parents.parent_id",
            "crm_customer_links.from_id",
            "crm_customer_links.to_id",
            "crm_account_team.customer_id",
            "crm_relationship_scores.account_id",
            "crm_relationship_scores.contact_id",
        ),
        0,
    )
    if from_id == to_id:
        return moved
    changes = [
        *_move_contacts(uow, from_id, to_id, moved),
        *_move_parents(uow, from_id, to_id, moved),
        *_move_links(uow, from_id, to_id, moved),
        *_move_team(uow, from_id, to_id, moved),
    ]
    for column in ("account_id", "contact_id"):
        result = uow.connection.execute(
            update(relationship_scores)
            .where(relationship_scores.c[column] == from_id)
            .values({column: to_id})
        )
        moved[f"crm_relationship_scores.{column}"] = result.rowcount or 0
    report_changes(uow, changes)
    return moved


def erase_account_rows(uow: UnitOfWork, customer_id: int) -> None:
    """Remove every accounts row that involves the customer, in any role (part of erasure).

    A person loses their contact rows, links and scores (and is no longer
    named as the contact of any interaction); an organisation loses its
    contacts (the persons stay), its place in the hierarchy (its
    subsidiaries lose their parent), its links, team and scores. Reported
    through ``crm_relationships_changed`` as removals.
    """
    connection = uow.connection
    changes: list[dict[str, Any]] = []
    involving = or_(contacts.c.person_id == customer_id, contacts.c.organisation_id == customer_id)
    for row in connection.execute(select(contacts).where(involving)).all():
        changes.append(contact_change("removed", contact_from_row(row)))
    connection.execute(delete(contacts).where(involving))
    in_tree = or_(
        account_parents.c.organisation_id == customer_id, account_parents.c.parent_id == customer_id
    )
    for child, parent in connection.execute(select(account_parents).where(in_tree)).all():
        changes.append(parent_change("removed", child, parent))
    connection.execute(delete(account_parents).where(in_tree))
    linked = or_(customer_links.c.from_id == customer_id, customer_links.c.to_id == customer_id)
    for row in connection.execute(select(customer_links).where(linked)).all():
        changes.append(link_change("removed", link_from_row(row)))
    connection.execute(delete(customer_links).where(linked))
    on_team = account_team.c.customer_id == customer_id
    for row in connection.execute(select(account_team).where(on_team)).all():
        changes.append(team_change("removed", member_from_row(row)))
    connection.execute(delete(account_team).where(on_team))
    connection.execute(
        delete(relationship_scores).where(
            or_(
                relationship_scores.c.account_id == customer_id,
                relationship_scores.c.contact_id == customer_id,
            )
        )
    )
    connection.execute(
        update(interactions).where(interactions.c.contact_id == customer_id).values(contact_id=None)
    )
    report_changes(uow, changes)


def export_account_rows(uow: UnitOfWork, customer_id: int) -> dict[str, Any]:
    """Every accounts row that involves the customer, JSON-safe (part of the export)."""
    connection = uow.connection
    own_contacts = connection.execute(
        select(contacts)
        .where(or_(contacts.c.person_id == customer_id, contacts.c.organisation_id == customer_id))
        .order_by(contacts.c.id)
    ).all()
    parent = connection.execute(
        select(account_parents.c.parent_id).where(account_parents.c.organisation_id == customer_id)
    ).scalar()
    subsidiaries = connection.execute(
        select(account_parents.c.organisation_id)
        .where(account_parents.c.parent_id == customer_id)
        .order_by(account_parents.c.organisation_id)
    ).scalars()
    links = connection.execute(
        select(customer_links)
        .where(or_(customer_links.c.from_id == customer_id, customer_links.c.to_id == customer_id))
        .order_by(customer_links.c.id)
    ).all()
    team = connection.execute(
        select(account_team)
        .where(account_team.c.customer_id == customer_id)
        .order_by(account_team.c.user)
    ).all()
    scores = connection.execute(
        select(relationship_scores)
        .where(
            or_(
                relationship_scores.c.account_id == customer_id,
                relationship_scores.c.contact_id == customer_id,
            )
        )
        .order_by(relationship_scores.c.measured_at, relationship_scores.c.id)
    ).all()
    named = connection.execute(
        select(interactions.c.id)
        .where(interactions.c.contact_id == customer_id)
        .order_by(interactions.c.id)
    ).scalars()
    return {
        "contacts": [to_dict(contact_from_row(r)) for r in own_contacts],
        "parent_id": parent,
        "subsidiary_ids": list(subsidiaries),
        "links": [to_dict(link_from_row(r)) for r in links],
        "team": [to_dict(member_from_row(r)) for r in team],
        "relationship_scores": [to_dict(score_from_row(r)) for r in scores],
        "contact_in_interactions": list(named),
    }


__all__ = ["erase_account_rows", "export_account_rows", "move_account_rows"]
