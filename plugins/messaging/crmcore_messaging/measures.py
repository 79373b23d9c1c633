"""KPIs for the performance report and the customer's section of the 360° view.

Definitions (also in docs/plugins/messaging.md), over a half-open period
``[start, end)``; staff messages are left out of every figure:

* **messages_sent**: messages to customers with state ``sent`` and ``sent_at``
  in the period; **messages_sent_<channel>**: the same per configured channel;
* **messages_failed** / **messages_bounced**: messages whose state is
  ``failed`` / ``bounced`` and whose ``updated_at`` (when they got that state)
  is in the period;
* **messages_refused**: messages refused (any reason) whose ``updated_at`` is
  in the period;
* **opt_outs**: rows of ``messaging_unsubscribes`` with ``at`` in the period;
* **opt_out_rate**: opt_outs / messages_sent (``None`` when nothing was sent).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from crmcore import CRM, Customer, Period
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging.settings import settings_of
from crmcore_messaging.tables import messages_table, unsubscribes_table

#: Messages listed in the 360° view.
PROFILE_MESSAGES = 10


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period) -> dict[str, Any]:
    """The plugin's KPIs for ``crm.metrics(period)``: a flat mapping of numbers."""
    table = messages_table(crm.metadata)
    gone = unsubscribes_table(crm.metadata)
    to_customers = table.c.customer_id.is_not(None)
    with crm.reading() as uow:
        sent_rows = uow.connection.execute(
            select(table.c.channel, func.count())
            .where(
                to_customers,
                table.c.state == "sent",
                table.c.sent_at >= period.start,
                table.c.sent_at < period.end,
            )
            .group_by(table.c.channel)
        ).all()
        ended: dict[str, int] = dict(
            uow.connection.execute(
                select(table.c.state, func.count())
                .where(
                    to_customers,
                    table.c.state.in_(("failed", "bounced", "refused")),
                    table.c.updated_at >= period.start,
                    table.c.updated_at < period.end,
                )
                .group_by(table.c.state)
            ).all()
        )
        opt_outs = uow.connection.execute(
            select(func.count()).where(gone.c.at >= period.start, gone.c.at < period.end)
        ).scalar_one()
    by_channel = {str(channel): int(n) for channel, n in sent_rows}
    sent = sum(by_channel.values())
    figures: dict[str, Any] = {"messages_sent": sent}
    for channel in sorted(set(settings_of(crm).channels) | set(by_channel)):
        figures[f"messages_sent_{channel}"] = by_channel.get(channel, 0)
    figures.update(
        messages_failed=int(ended.get("failed", 0)),
        messages_bounced=int(ended.get("bounced", 0)),
        messages_refused=int(ended.get("refused", 0)),
        opt_outs=int(opt_outs),
        opt_out_rate=round(int(opt_outs) / sent, 4) if sent else None,
    )
    return figures


@requires(Action.READ, customer=lambda crm, ctx, a: [a["customer"].id])
def profile_section(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """The messages the customer received (latest first, at most ten) and the counts by state."""
    table = messages_table(crm.metadata)
    with crm.reading() as uow:
        counts: dict[str, int] = dict(
            uow.connection.execute(
                select(table.c.state, func.count())
                .where(table.c.customer_id == customer.id)
                .group_by(table.c.state)
            ).all()
        )
        if not counts:
            return None
        received = uow.connection.execute(
            select(
                table.c.id,
                table.c.sent_at,
                table.c.channel,
                table.c.purpose,
                table.c.subject,
                table.c.template,
                table.c.ref_type,
                table.c.ref_id,
                table.c.read_at,
            )
            .where(table.c.customer_id == customer.id, table.c.state == "sent")
            .order_by(table.c.sent_at.desc(), table.c.id.desc())
            .limit(PROFILE_MESSAGES)
        ).all()
    return {
        "received": [
            {
                "id": int(r.id),
                "sent_at": r.sent_at.isoformat(),
                "channel": r.channel,
                "purpose": r.purpose,
                "subject": r.subject,
                "template": r.template,
                "ref": f"{r.ref_type}:{r.ref_id}" if r.ref_type else None,
                "read": r.read_at is not None,
            }
            for r in received
        ],
        "by_state": {str(state): int(n) for state, n in sorted(counts.items())},
    }


enforce_declared(__name__)
