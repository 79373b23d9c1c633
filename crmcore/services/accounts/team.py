"""The account team: who on our side works on an account, in which role.

Members get access to the account and its current contacts through
:mod:`crmcore.access` (every member reads; members in a role of ``[accounts]
team_write_roles`` also write). Adding and removing members hands out
access, so it needs the GRANT right (managers and admins), like
``crm.access.grant``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from crmcore.access import Action
from crmcore.errors import NotFoundError, ValidationError
from crmcore.model.accounts import TeamMember
from crmcore.model.entities import CustomerKind
from crmcore.services.accounts.common import AccountsBase, check_code, check_text, report_changes
from crmcore.storage.tables import account_team
from crmcore.unit_of_work import UnitOfWork

ORG = CustomerKind.ORGANIZATION


def member_from_row(row: Row[Any]) -> TeamMember:
    """The TeamMember of a ``crm_account_team`` row."""
    return TeamMember(
        account_id=row.customer_id, user=row.user, role=row.role, added_at=row.added_at
    )


def team_change(action: str, member: TeamMember, previous: str | None = None) -> dict[str, Any]:
    """The ``crm_relationships_changed`` mapping of a team change."""
    change: dict[str, Any] = {
        "kind": "team",
        "action": action,
        "account_id": member.account_id,
        "user": member.user,
        "role": member.role,
    }
    if action == "updated":
        change["previous_role"] = previous
    return change


def _user(value: Any) -> str:
    user = check_text(value, "user")
    if user is None:
        raise ValidationError("user: must not be empty", field="user")
    return user


class TeamPart(AccountsBase):
    """The account team (part of ``crm.accounts``)."""

    def add_member(
        self,
        account_id: int,
        user: str,
        role: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> TeamMember:
        """Put ``user`` on the account's team in ``role`` (one of ``[accounts] team_roles``).

        A member already on the team gets the new role (reported as an
        update). Needs the GRANT right.
        """
        self._crm.access.check(Action.GRANT)
        name = _user(user)
        team_role = check_code(role, "role", self.settings.team_roles, "team_roles")
        with self._crm.unit_of_work(actor, ctx) as uow:
            account = self._load(uow, account_id, Action.READ, "account_id", ORG)
            assert account.id is not None
            row = uow.connection.execute(
                select(account_team).where(
                    account_team.c.customer_id == account.id, account_team.c.user == name
                )
            ).first()
            if row is not None:
                before = member_from_row(row)
                if before.role == team_role:
                    return before
                uow.connection.execute(
                    update(account_team)
                    .where(account_team.c.customer_id == account.id, account_team.c.user == name)
                    .values(role=team_role)
                )
                member = TeamMember(account.id, name, team_role, before.added_at)
                report_changes(uow, [team_change("updated", member, before.role)])
                return member
            member = TeamMember(account.id, name, team_role, uow.now)
            uow.connection.execute(
                insert(account_team),
                [{"customer_id": account.id, "user": name, "role": team_role, "added_at": uow.now}],
            )
            report_changes(uow, [team_change("added", member)])
        return member

    def remove_member(
        self, account_id: int, user: str, *, actor: str | None = None, ctx: UnitOfWork | None = None
    ) -> TeamMember:
        """Take ``user`` off the account's team; return the membership. Needs the GRANT right."""
        self._crm.access.check(Action.GRANT)
        name = _user(user)
        with self._crm.unit_of_work(actor, ctx) as uow:
            account = self._load(uow, account_id, Action.READ, "account_id", ORG)
            row = uow.connection.execute(
                select(account_team).where(
                    account_team.c.customer_id == account.id, account_team.c.user == name
                )
            ).first()
            if row is None:
                raise NotFoundError(f"{name} is not on the team of account {account.id}")
            member = member_from_row(row)
            uow.connection.execute(
                delete(account_team).where(
                    account_team.c.customer_id == account.id, account_team.c.user == name
                )
            )
            report_changes(uow, [team_change("removed", member)])
        return member

    def team(self, account_id: int, *, ctx: UnitOfWork | None = None) -> list[TeamMember]:
        """The account's team, in the order of ``[accounts] team_roles``, then by user.

        The account's ``owner`` (a customer field) leads the team without a row
        here: see :meth:`view`.
        """
        with self._crm.reading(ctx) as uow:
            account = self._load(uow, account_id, Action.READ, "account_id", ORG)
            assert account.id is not None
            return self._team_of(uow, account.id)

    def _team_of(self, uow: UnitOfWork, account_id: int) -> list[TeamMember]:
        rows = uow.connection.execute(
            select(account_team).where(account_team.c.customer_id == account_id)
        ).all()
        order = {role: index for index, role in enumerate(self.settings.team_roles)}
        members = [member_from_row(r) for r in rows]
        return sorted(members, key=lambda m: (order.get(m.role, len(order)), m.user))


__all__ = ["TeamPart", "member_from_row", "team_change"]
