"""Campaign definitions: create, show, list, and the frozen recipients of a launched one.

A campaign is handed out as a plain mapping: every column of
``campaigns_campaigns`` (``seed`` is the effective seed: the one given, else the
campaign's id), plus ``treated`` and ``control`` (members per group, once launched).
An audience given as a list of customers shows a user only the customers they may
read (``customers_not_shown`` counts the others).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, func, insert, select

from crmcore import CRM, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.filters import among
from crmcore.storage.tables import customers
from crmcore_campaigns.audience import not_writable, resolve
from crmcore_campaigns.sending import messaging_enabled
from crmcore_campaigns.settings import settings_of
from crmcore_campaigns.tables import campaigns_table, recipients_table
from crmcore_campaigns.validation import check_campaign

STATUSES = ("draft", "launched", "stopped")


def to_dict(row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The mapping of one ``campaigns_campaigns`` row (``seed`` the effective seed)."""
    data = dict(row._mapping) if isinstance(row, Row) else dict(row)
    if data.get("seed") is None:
        data["seed"] = data["id"]
    return data


@requires(Action.WRITE, scoped=True)  # the body checks WRITE on every member
def audience_access(crm: CRM, audience: Mapping[str, Any], uow: UnitOfWork) -> list[int]:
    """The audience's ids, refusing (AccessDeniedError) when some are not the principal's.

    Every member must be a customer the principal may write; the refusal says
    how many are not. An explicit list of customers counts every id given.
    """
    from crmcore.access import AccessDeniedError

    ids = resolve(crm, audience, ctx=uow)
    checked = list(audience["customers"]) if "customers" in audience else ids
    if "customers" in audience and crm.access.visible_condition(Action.WRITE, ctx=uow) is None:
        missing = sorted(set(checked) - set(ids))  # a principal who sees everyone: name them
        if missing:
            raise ValidationError(
                f"audience.customers: {', '.join(map(str, missing[:10]))} "
                f"{'is not a customer' if len(missing) == 1 else 'are not customers'}",
                field="audience",
            )
    foreign = not_writable(crm, checked, ctx=uow)
    if foreign:
        principal = crm.access.principal
        who = "you" if principal is None else f"{principal.user} ({principal.role.value})"
        raise AccessDeniedError(
            f"{who} may not contact {foreign} of the {len(checked)} audience members: "
            "a campaign goes only to customers you may write"
        )
    if not ids:
        raise ValidationError(
            "audience: no customer matches (among the customers you may see)", field="audience"
        )
    return ids


@requires(Action.WRITE, scoped=True)  # the body requires WRITE on every audience member
def create_campaign(
    crm: CRM, data: Mapping[str, Any], *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Create a draft campaign from ``data`` (see the docs page for the fields).

    The audience is resolved now only to check it: it must not be empty, and
    every member must be a customer the principal may write. With messaging
    enabled, every template named must exist (NotFoundError). It is frozen at
    launch (:func:`crmcore_campaigns.launching.launch_campaign`).
    """
    values = check_campaign(data, settings_of(crm))
    table = campaigns_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        audience_access(crm, values["audience"], uow)
        if messaging_enabled(crm):
            from crmcore_messaging.templates import get_template

            for variant in values["variants"]:
                for name in {variant["template"], variant["reminder_template"]} - {None}:
                    get_template(crm, name, ctx=uow)  # NotFoundError naming the template
        campaign_id = uow.connection.execute(
            insert(table)
            .values(
                **values,
                status="draft",
                created_at=uow.now,
                created_by=_who(crm, uow),
            )
            .returning(table.c.id)
        ).scalar_one()
        crm.audit.record(
            uow,
            [
                AuditEntry(
                    "campaigns.create", "campaign", int(campaign_id), None, {"name": values["name"]}
                )
            ],
        )
        uow.emit("campaigns.created", None, {"campaign_id": int(campaign_id)})
        return load(uow, int(campaign_id))


def _who(crm: CRM, uow: UnitOfWork) -> str | None:
    principal = crm.access.principal
    return principal.user if principal is not None else uow.actor


def _visible_audience(uow: UnitOfWork, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with an explicit customer list cut to what a user's view may read."""
    given = data["audience"].get("customers")
    if given is None or uow.crm.access.principal is None:
        return data
    shown = sorted(
        int(i)
        for i in uow.connection.execute(
            select(customers.c.id).where(
                among(uow.connection, customers.c.id, given),
                uow.crm.access.where(customers.c.id, ctx=uow),
            )
        ).scalars()
    )
    audience = {"customers": shown, "customers_not_shown": len(given) - len(shown)}
    return {**data, "audience": audience}


@requires(Action.READ, scoped=True)  # a campaign's definition and group sizes name nobody
def load(
    uow: UnitOfWork, campaign_id: int, *, lock: bool = False, raw: bool = False
) -> dict[str, Any]:
    """Campaign ``campaign_id`` read inside ``uow`` (NotFoundError when there is none).

    ``raw`` keeps an explicit customer list whole (for launching, which checks
    every member itself); otherwise a user's view sees only the customers it may read.
    """
    table = campaigns_table(uow.crm.metadata)
    query = select(table).where(table.c.id == campaign_id)
    if lock:
        query = query.with_for_update()
    row = uow.connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    data = to_dict(row)
    if not raw:
        data = _visible_audience(uow, data)
    recipients = recipients_table(uow.crm.metadata)
    counts: dict[str, int] = dict(
        uow.connection.execute(
            select(recipients.c.grp, func.count())
            .where(recipients.c.campaign_id == campaign_id)
            .group_by(recipients.c.grp)
        ).all()
    )
    data["treated"] = int(counts.get("treatment", 0))
    data["control"] = int(counts.get("control", 0))
    return data


@requires(Action.READ, scoped=True)  # a campaign's definition and group sizes name nobody
def get_campaign(crm: CRM, campaign_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """One campaign; NotFoundError when unknown."""
    with crm.reading(ctx) as uow:
        return load(uow, campaign_id)


@requires(Action.READ, scoped=True)  # campaign definitions name nobody
def list_campaigns(
    crm: CRM,
    *,
    status: str | None = None,
    limit: int = 100,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Campaigns, newest first (``status`` one of draft, launched, stopped)."""
    if status is not None and status not in STATUSES:
        raise ValidationError(
            f"status: {status!r} is not one of: {', '.join(STATUSES)}", field="status"
        )
    table = campaigns_table(crm.metadata)
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(table.c.status == status)
    with crm.reading(ctx) as uow:
        return [_visible_audience(uow, to_dict(r)) for r in uow.connection.execute(query)]


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def recipients(
    crm: CRM, campaign_id: int, *, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """The frozen audience: ``customer_id``, ``grp``, ``variant``, ``stratum``, ``position``."""
    table = recipients_table(crm.metadata)
    with crm.reading(ctx) as uow:
        load(uow, campaign_id)
        rows = uow.connection.execute(
            select(
                table.c.customer_id,
                table.c.grp,
                table.c.variant,
                table.c.stratum,
                table.c.position,
                table.c.assigned_at,
            )
            .where(table.c.campaign_id == campaign_id, crm.access.where(table.c.customer_id))
            .order_by(table.c.customer_id)
        ).all()
    return [dict(r._mapping) for r in rows]


enforce_declared(__name__)

__all__ = [
    "STATUSES",
    "audience_access",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "load",
    "recipients",
    "to_dict",
]
