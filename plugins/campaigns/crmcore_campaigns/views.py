"""The campaigns section of the 360° view, the KPIs for ``crm_metrics``, template variables.

Templates of a campaign's messages see ``{{ campaigns.campaign_id }}``,
``{{ campaigns.name }}`` and ``{{ campaigns.variant }}`` (messaging's
``messaging_template_variables`` hook).

KPIs of a period ``[start, end)``, over the campaigns launched in it (each
campaign's conversions counted in its own attribution window, as in its results):

* ``campaigns_launched``, ``recipients``, ``treated``, ``control``;
* ``treated_conversions``, ``control_conversions``;
* ``treated_conversion_rate``, ``control_conversion_rate`` (pooled over the
  campaigns: conversions / members; 0 when there are no members);
* ``uplift`` = treated rate - control rate (0 when either group is empty);
* ``messages_sent`` (messaging state sent or bounced).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from crmcore import CRM, Customer, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_campaigns.assignment import CONTROL, TREATMENT
from crmcore_campaigns.campaigns import load
from crmcore_campaigns.results import group_aggregates, messages_sent
from crmcore_campaigns.sending import REF_TYPE
from crmcore_campaigns.tables import campaigns_table, recipients_table, sends_table


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(
    crm: CRM, customer: Customer, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """The campaigns the customer is in: group, variant, and the messages asked for."""
    campaigns, recipients = campaigns_table(crm.metadata), recipients_table(crm.metadata)
    sends = sends_table(crm.metadata)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(
                campaigns.c.id,
                campaigns.c.name,
                campaigns.c.status,
                campaigns.c.launched_at,
                recipients.c.grp,
                recipients.c.variant,
            )
            .join(recipients, recipients.c.campaign_id == campaigns.c.id)
            .where(recipients.c.customer_id == customer.id)
            .order_by(campaigns.c.id.desc())
        ).all()
        if not rows:
            return None
        steps: dict[int, list[dict[str, Any]]] = {}
        for s in uow.connection.execute(
            select(sends.c.campaign_id, sends.c.step, sends.c.state, sends.c.reason)
            .where(sends.c.customer_id == customer.id)
            .order_by(sends.c.campaign_id, sends.c.step)
        ):
            steps.setdefault(int(s.campaign_id), []).append(
                {"step": s.step, "state": s.state, "reason": s.reason}
            )
    return {
        "campaigns": [
            {
                "campaign_id": int(r.id),
                "name": r.name,
                "status": r.status,
                "launched_at": r.launched_at.isoformat() if r.launched_at else None,
                "group": r.grp,
                "variant": r.variant,
                "messages": steps.get(int(r.id), []),
            }
            for r in rows
        ]
    }


#: The variables a campaign's templates see as ``{{ campaigns.<key> }}``.
SAMPLE_VARIABLES = {"campaign_id": 0, "name": "Campaign", "variant": "A"}


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id or [])
def template_variables(
    uow: UnitOfWork, customer: Customer, ref_type: str | None, ref_id: str | None
) -> dict[str, Any] | None:
    """``campaign_id``, ``name`` and ``variant`` for a campaign's message (messaging's hook).

    Placeholders for the sample customer (``id`` 0) of a template being saved;
    ``None`` for a message that is not a campaign's.
    """
    if not customer.id:
        return dict(SAMPLE_VARIABLES)
    if ref_type != REF_TYPE or ref_id is None or not ref_id.isdigit():
        return None
    campaigns, recipients = campaigns_table(uow.crm.metadata), recipients_table(uow.crm.metadata)
    row = uow.connection.execute(
        select(campaigns.c.id, campaigns.c.name, recipients.c.variant)
        .outerjoin(
            recipients,
            and_(
                recipients.c.campaign_id == campaigns.c.id,
                recipients.c.customer_id == customer.id,
            ),
        )
        .where(campaigns.c.id == int(ref_id))
    ).first()
    if row is None:
        return None
    return {"campaign_id": int(row.id), "name": row.name, "variant": row.variant}


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The KPIs of the module docstring."""
    table = campaigns_table(crm.metadata)
    figures = {"recipients": 0, TREATMENT: 0, CONTROL: 0, "messages_sent": 0}
    conversions = {TREATMENT: 0, CONTROL: 0}
    with crm.reading(ctx) as uow:
        ids = (
            uow.connection.execute(
                select(table.c.id)
                .where(
                    and_(
                        table.c.launched_at.is_not(None),
                        table.c.launched_at >= period.start,
                        table.c.launched_at < period.end,
                    )
                )
                .order_by(table.c.id)
            )
            .scalars()
            .all()
        )
        for campaign_id in ids:
            campaign = load(uow, int(campaign_id))
            for row in group_aggregates(uow, campaign):
                figures["recipients"] += row["n"]
                figures[row["group"]] += row["n"]
                conversions[row["group"]] += row["conversions"]
            figures["messages_sent"] += messages_sent(uow, int(campaign_id))
    rate_t = conversions[TREATMENT] / figures[TREATMENT] if figures[TREATMENT] else 0.0
    rate_c = conversions[CONTROL] / figures[CONTROL] if figures[CONTROL] else 0.0
    both = figures[TREATMENT] and figures[CONTROL]
    return {
        "campaigns_launched": len(ids),
        "recipients": figures["recipients"],
        "treated": figures[TREATMENT],
        "control": figures[CONTROL],
        "treated_conversions": conversions[TREATMENT],
        "control_conversions": conversions[CONTROL],
        "treated_conversion_rate": rate_t,
        "control_conversion_rate": rate_c,
        "uplift": rate_t - rate_c if both else 0.0,
        "messages_sent": figures["messages_sent"],
    }


enforce_declared(__name__)

__all__ = ["SAMPLE_VARIABLES", "metrics", "profile_section", "template_variables"]
