"""P(alive) as a churn signal: the stored BG/NBD scores of the latest ``crm segments fit``.

A customer whose stored probability of being alive is below :data:`ALIVE_THRESHOLD`
gets a signal of weight ``1 - P(alive)`` from source ``segmentation.bgnbd``, which
churn scoring adds to the plugins' part of the score (``weights.plugins``). Nothing is
signalled before a fit is stored; the scores are as of that fit (refit to refresh).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from crmcore import CRM, ChurnSignal, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.tables import PREDICTIONS, table

#: Below this stored P(alive) a customer is signalled.
ALIVE_THRESHOLD = 0.5
SOURCE = "segmentation.bgnbd"
_IN_CHUNK = 500


@requires(Action.READ, scoped=True)  # signals only of customers the principal may read
def alive_signals(
    crm: CRM, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None
) -> list[ChurnSignal]:
    """Churn signals of the customers whose stored P(alive) is below the threshold."""
    scores = table(crm.metadata, PREDICTIONS)
    wanted = sorted(set(customer_ids))
    found = []
    with crm.reading(ctx) as uow:
        for at in range(0, len(wanted), _IN_CHUNK):
            query = select(scores.c.customer_id, scores.c.p_alive, scores.c.at).where(
                scores.c.customer_id.in_(wanted[at : at + _IN_CHUNK]),
                scores.c.p_alive < ALIVE_THRESHOLD,
                crm.access.where(scores.c.customer_id, ctx=uow),
            )
            for row in uow.connection.execute(query):
                p_alive = float(row.p_alive)
                fitted = row.at.date().isoformat()
                found.append(
                    ChurnSignal(
                        customer_id=int(row.customer_id),
                        source=SOURCE,
                        reason=f"P(alive) {p_alive:.2f} (BG/NBD fit of {fitted})",
                        weight=round(min(1.0, 1.0 - p_alive), 4),
                    )
                )
    return found


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
