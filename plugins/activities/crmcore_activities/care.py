"""Care tasks taken over as messages by a messaging plugin (``activities_care_messages``).

After ``plan`` created a care rule's tasks of a day, it hands them, 500 at a
time, to the hook. The tasks a plugin takes are marked done with the outcome
``sent as message`` in the plan's unit of work; the plugin records their
outbound interactions through core when each message goes out (the messaging
plugin does, with ``ref_type = "activities.activity"``). Without an
implementation nothing is read.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import bindparam, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities.settings import settings_of
from crmcore_activities.tables import activities_table

#: Tasks handed to the hook per call.
BATCH = 500
#: The outcome of a task a messaging plugin took over.
SENT = "sent as message"


@requires(Action.REPORT)
def deliver(uow: UnitOfWork, rule_id: int, occurrence: date) -> int:
    """Offer the rule's tasks of ``occurrence`` created in ``uow`` to the hook.

    Returns how many were taken over as messages.
    """
    if not uow.crm.pm.hook.activities_care_messages.get_hookimpls():
        return 0
    kinds = settings_of(uow.crm).kinds
    table = activities_table(uow.crm.metadata)
    rows = uow.connection.execute(
        select(
            table.c.id,
            table.c.customer_id,
            table.c.assignee,
            table.c.kind,
            table.c.subject,
            table.c.due_at,
        )
        .where(
            table.c.rule_id == rule_id,
            table.c.occurrence == occurrence,
            table.c.status == "planned",
            table.c.created_at == uow.now,
        )
        .order_by(table.c.id)
    ).all()
    taken = 0
    for start in range(0, len(rows), BATCH):
        batch = {int(r.id): r for r in rows[start : start + BATCH]}
        offered = [
            {
                "activity_id": i,
                "customer_id": int(r.customer_id),
                "assignee": r.assignee,
                "kind": r.kind,
                "channel": kinds[r.kind].channel,
                "subject": r.subject,
                "due_at": r.due_at,
            }
            for i, r in batch.items()
        ]
        answers = uow.crm.call_hook("activities_care_messages", ctx=uow, tasks=offered)
        ids = sorted({int(i) for answer in answers for i in answer or () if int(i) in batch})
        if not ids:
            continue
        # The plugin that took a task records its interaction when the message
        # actually goes out (a message refused later, for consent, leaves none).
        uow.connection.execute(
            update(table)
            .where(table.c.id == bindparam("aid"))
            .values(status="done", outcome=SENT, completed_at=uow.now, updated_at=uow.now),
            [{"aid": i} for i in ids],
        )
        uow.crm.audit.record_batch(
            uow,
            "activities.care_sent",
            "activity",
            [(i, int(batch[i].customer_id), {}) for i in ids],
        )
        taken += len(ids)
    return taken


enforce_declared(__name__)
