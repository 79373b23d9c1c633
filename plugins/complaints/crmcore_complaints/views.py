"""The plugin's contributions to core views: the 360° section and churn signals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from crmcore import CRM, ChurnSignal, Customer, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_complaints.entities import Complaint
from crmcore_complaints.settings import settings_of
from crmcore_complaints.tables import cases_table
from crmcore_complaints.workflow import ACTIVE

#: Source name of the churn signals this plugin emits.
SIGNAL_SOURCE = "complaints"

_CHUNK = 400


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(
    crm: CRM, customer: Customer, recent: int = 5, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """The customer's complaints in the 360° view: counts, breaches, rating, the latest ones."""
    if customer.id is None:
        return None
    cases = cases_table(crm.metadata)
    c = cases.c
    active = c.state.in_([s.value for s in ACTIVE])
    with crm.reading(ctx) as uow:
        total, open_now, breached, recurrences, rating = uow.connection.execute(
            select(
                func.count(),
                func.count(case((active, 1))),
                func.count(case((c.first_response_breached | c.resolution_breached, 1))),
                func.count(c.recurrence_of),
                func.avg(c.rating),
            ).where(c.customer_id == customer.id)
        ).one()
        rows = uow.connection.execute(
            select(cases)
            .where(c.customer_id == customer.id)
            .order_by(c.opened_at.desc(), c.id.desc())
            .limit(recent)
        ).all()
    latest = [Complaint.from_row(r._mapping) for r in rows]
    return {
        "total": int(total),
        "open": int(open_now),
        "breached": int(breached),
        "recurrences": int(recurrences),
        "avg_rating": None if rating is None else round(float(rating), 2),
        "recent": [
            {
                "id": x.id,
                "category": x.category,
                "severity": x.severity.value,
                "state": x.state.value,
                "opened_at": x.opened_at.isoformat(),
                "assignee": x.assignee,
            }
            for x in latest
        ],
    }


@requires(Action.READ, customer="customer_ids")
def churn_signals(
    crm: CRM, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None
) -> list[ChurnSignal]:
    """Signals for customers with recent or repeated complaints (one grouped query per chunk).

    * a complaint opened in the last ``churn.recent_days`` (default 90): weight
      0.4, or 0.6 while one of them is still unresolved;
    * ``churn.repeat_count`` (default 2) or more complaints in the last
      ``churn.repeat_days`` (default 180): weight 0.7.
    """
    settings = settings_of(crm)
    now = crm.clock().astimezone(UTC)
    recent_since = now - timedelta(days=settings.churn_recent_days)
    repeat_since = now - timedelta(days=settings.churn_repeat_days)
    cases = cases_table(crm.metadata)
    c = cases.c
    active = c.state.in_([s.value for s in ACTIVE])
    recent = c.opened_at >= recent_since
    signals: list[ChurnSignal] = []
    wanted = sorted(set(customer_ids))
    with crm.reading(ctx) as uow:
        for start in range(0, len(wanted), _CHUNK):
            rows = uow.connection.execute(
                select(
                    c.customer_id,
                    func.count(case((recent, 1))).label("recent"),
                    func.count(case((and_(recent, active), 1))).label("unresolved"),
                    func.count(case((c.opened_at >= repeat_since, 1))).label("repeat"),
                )
                .where(
                    c.customer_id.in_(wanted[start : start + _CHUNK]),
                    c.opened_at >= min(recent_since, repeat_since),
                    c.opened_at <= now,
                )
                .group_by(c.customer_id)
            ).all()
            for row in rows:
                if row.unresolved:
                    signals.append(
                        ChurnSignal(
                            customer_id=row.customer_id,
                            source=SIGNAL_SOURCE,
                            reason=f"{row.unresolved} unresolved complaint(s) opened in the last "
                            f"{settings.churn_recent_days} days",
                            weight=0.6,
                        )
                    )
                elif row.recent:
                    signals.append(
                        ChurnSignal(
                            customer_id=row.customer_id,
                            source=SIGNAL_SOURCE,
                            reason=f"{row.recent} complaint(s) in the last "
                            f"{settings.churn_recent_days} days",
                            weight=0.4,
                        )
                    )
                if row.repeat >= settings.churn_repeat_count:
                    signals.append(
                        ChurnSignal(
                            customer_id=row.customer_id,
                            source=SIGNAL_SOURCE,
                            reason=f"repeated complaints: {row.repeat} in the last "
                            f"{settings.churn_repeat_days} days",
                            weight=0.7,
                        )
                    )
    return signals


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
