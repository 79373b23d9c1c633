"""Launching a campaign (audience frozen, groups assigned, step 1 enqueued), reminders, stop.

* **launch**: in one unit of work, the audience is resolved, every member
  checked writable by the principal, split into control and variants
  (:mod:`crmcore_campaigns.assignment`), stored in ``campaigns_recipients``,
  and step 1 enqueued through messaging for the treated members. Refused,
  with nothing written, when step 1 would cost more than the budget.
* **reminders** (:func:`send_reminders`, ``crm campaigns run``): when
  ``first_send_at + reminder_days`` has passed, step 2 goes to the treated
  members who did not respond (see :func:`reminder_candidates`), as many as the
  budget still allows; the rest are recorded as ``skipped`` (reason ``budget``).
  Idempotent: a campaign is reminded once.
* **stop**: messages still queued or deferred are refused (``campaign_stopped``);
  no reminder goes out afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import and_, exists, select, update

from crmcore import CRM, ConflictError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.bulk import insert_rows
from crmcore.storage.tables import interactions
from crmcore_campaigns.assignment import TREATMENT, Assignment, assign, share_in_basis_points
from crmcore_campaigns.audience import strata
from crmcore_campaigns.campaigns import audience_access, load
from crmcore_campaigns.resolvers import campaign_recipients
from crmcore_campaigns.sending import (
    SENT_STATES,
    cancel_pending,
    clicks_table,
    enqueue_step,
    messages_table,
    require_messaging,
)
from crmcore_campaigns.tables import campaigns_table, recipients_table, sends_table


def _check_budget(campaign: dict[str, Any], treated: int) -> None:
    budget, cpm = campaign["budget"], campaign["cost_per_message"]
    if budget is None or cpm == 0 or treated * cpm <= budget:
        return
    fits = int((budget / cpm).to_integral_value(ROUND_FLOOR))
    share = campaign["control_share"]
    audience = int((Decimal(fits) / (1 - share)).to_integral_value(ROUND_FLOOR))
    raise ValidationError(
        f"budget: step 1 costs {treated * cpm} {campaign['currency']} ({treated} treated members "
        f"x {cpm}) but the budget is {budget}: at most {fits} treated members fit "
        f"(an audience of about {audience} at a control share of {share})",
        field="budget",
    )


def _templates(
    campaign: dict[str, Any], members: Sequence[Assignment], step: int
) -> dict[int, str]:
    by_name = {v["name"]: v for v in campaign["variants"]}
    found: dict[int, str] = {}
    for member in members:
        variant = by_name[member.variant or ""]
        template = variant["template"]
        if step == 2 and variant.get("reminder_template"):
            template = variant["reminder_template"]
        found[member.customer_id] = str(template)
    return found


@requires(Action.WRITE, scoped=True)  # the body requires WRITE on every audience member
def launch_campaign(
    crm: CRM,
    campaign_id: int,
    *,
    send: bool = True,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Freeze the audience, assign groups and (``send``) enqueue step 1; return a summary.

    ``send=False`` freezes and assigns only (messages sent by another system);
    otherwise the messaging plugin must be enabled. ConflictError when the
    campaign is not a draft; AccessDeniedError (saying how many) when some
    members are not the principal's to write; ValidationError for an empty
    audience or a step 1 over budget.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        campaign = load(uow, campaign_id, lock=True, raw=True)
        if campaign["status"] != "draft":
            raise ConflictError(f"campaign {campaign_id} is {campaign['status']}, not a draft")
        if send:
            require_messaging(crm)
        ids = audience_access(crm, campaign["audience"], uow)
        members = assign(
            strata(crm, ids, stratify=campaign["stratify"], ctx=uow),
            seed=int(campaign["seed"]),
            share_bp=share_in_basis_points(campaign["control_share"]),
            variants=[(v["name"], int(v["weight"])) for v in campaign["variants"]],
        )
        treated = [m for m in members if m.group == TREATMENT]
        _check_budget(campaign, len(treated))
        insert_rows(
            uow.connection,
            recipients_table(crm.metadata),
            [
                {
                    "campaign_id": campaign_id,
                    "customer_id": m.customer_id,
                    "grp": m.group,
                    "variant": m.variant,
                    "stratum": m.stratum,
                    "position": m.position,
                    "assigned_at": uow.now,
                }
                for m in members
            ],
        )
        send_at = campaign["send_at"]
        first = send_at if send_at is not None and send_at > uow.now else uow.now
        states: dict[str, int] = {}
        if send and treated:
            states = enqueue_step(
                uow,
                campaign,
                1,
                [m.customer_id for m in treated],
                _templates(campaign, treated, 1),
                first if first > uow.now else None,
            )
        table = campaigns_table(crm.metadata)
        uow.connection.execute(
            update(table)
            .where(table.c.id == campaign_id)
            .values(
                status="launched",
                launched_at=uow.now,
                first_send_at=first,
                audience_size=len(members),
                launched_by=crm.access.principal.user if crm.access.principal else uow.actor,
                reminder_status="pending" if send and campaign["reminder_days"] else None,
            )
        )
        summary = {
            "campaign_id": campaign_id,
            "audience": len(members),
            "treated": len(treated),
            "control": len(members) - len(treated),
            "variants": {
                v["name"]: sum(1 for m in treated if m.variant == v["name"])
                for v in campaign["variants"]
            },
            "messages": states,
            "first_send_at": first,
        }
        crm.audit.record(
            uow,
            [
                AuditEntry(
                    "campaigns.launch",
                    "campaign",
                    campaign_id,
                    None,
                    {k: summary[k] for k in ("audience", "treated", "control", "messages")},
                )
            ],
        )
        uow.emit(
            "campaigns.launched",
            None,
            {
                "campaign_id": campaign_id,
                "treated": len(treated),
                "control": len(members) - len(treated),
            },
        )
        return summary


@requires(Action.WRITE)  # part of the sweep over every campaign (send_reminders)
def reminder_candidates(uow: UnitOfWork, campaign: dict[str, Any]) -> list[Assignment]:
    """Treated members who did not respond to step 1, by customer id.

    Not responding: their step-1 message was sent (messaging state ``sent``),
    no click on it, no purchase from the launch up to now, and no step 2 yet.
    """
    messages, clicks = messages_table(uow.crm), clicks_table(uow.crm)
    if messages is None or clicks is None:
        return []
    recipients, sends = recipients_table(uow.crm.metadata), sends_table(uow.crm.metadata)
    step2 = sends.alias("step2")
    query = (
        select(
            recipients.c.customer_id,
            recipients.c.variant,
            recipients.c.stratum,
            recipients.c.position,
        )
        .join(
            sends,
            and_(
                sends.c.campaign_id == recipients.c.campaign_id,
                sends.c.customer_id == recipients.c.customer_id,
                sends.c.step == 1,
            ),
        )
        .join(messages, messages.c.id == sends.c.message_id)
        .where(
            recipients.c.campaign_id == campaign["id"],
            recipients.c.grp == TREATMENT,
            messages.c.state == "sent",
            ~exists().where(clicks.c.message_id == messages.c.id),
            ~exists().where(
                interactions.c.customer_id == recipients.c.customer_id,
                interactions.c.kind == "purchase",
                interactions.c.occurred_at >= campaign["launched_at"],
                interactions.c.occurred_at < uow.now,
            ),
            ~exists().where(
                step2.c.campaign_id == recipients.c.campaign_id,
                step2.c.customer_id == recipients.c.customer_id,
                step2.c.step == 2,
            ),
        )
        .order_by(recipients.c.customer_id)
    )
    return [
        Assignment(int(r.customer_id), TREATMENT, r.variant, r.stratum, int(r.position))
        for r in uow.connection.execute(query)
    ]


@requires(Action.WRITE)  # part of the sweep over every campaign (send_reminders)
def committed_messages(uow: UnitOfWork, campaign_id: int) -> int:
    """The campaign's messages not refused or failed (queued, deferred, sending, sent, bounced)."""
    messages = messages_table(uow.crm)
    if messages is None:
        return 0
    from sqlalchemy import func

    return int(
        uow.connection.execute(
            select(func.count()).where(
                messages.c.ref_type == "campaigns.campaign",
                messages.c.ref_id == str(campaign_id),
                messages.c.state.in_(("queued", "deferred", "sending", *SENT_STATES)),
            )
        ).scalar_one()
    )


def _remind(uow: UnitOfWork, campaign: dict[str, Any]) -> dict[str, Any]:
    candidates = reminder_candidates(uow, campaign)
    budget, cpm = campaign["budget"], campaign["cost_per_message"]
    allowed = len(candidates)
    if budget is not None and cpm > 0:
        left = budget - committed_messages(uow, int(campaign["id"])) * cpm
        allowed = max(0, min(allowed, int((left / cpm).to_integral_value(ROUND_FLOOR))))
    chosen, skipped = candidates[:allowed], candidates[allowed:]
    states = (
        enqueue_step(
            uow, campaign, 2, [m.customer_id for m in chosen], _templates(campaign, chosen, 2), None
        )
        if chosen
        else {}
    )
    insert_rows(
        uow.connection,
        sends_table(uow.crm.metadata),
        [
            {
                "campaign_id": campaign["id"],
                "customer_id": m.customer_id,
                "step": 2,
                "message_id": None,
                "state": "skipped",
                "reason": "budget",
                "at": uow.now,
            }
            for m in skipped
        ],
    )
    status = "budget_exhausted" if skipped else "sent"
    uow.emit(
        "campaigns.reminded",
        None,
        {"campaign_id": campaign["id"], "reminded": len(chosen), "skipped": len(skipped)},
    )
    table = campaigns_table(uow.crm.metadata)
    uow.connection.execute(
        update(table)
        .where(table.c.id == campaign["id"])
        .values(reminder_status=status, reminded_at=uow.now)
    )
    return {
        "campaign_id": campaign["id"],
        "reminded": len(chosen),
        "skipped_for_budget": len(skipped),
        "messages": states,
        "reminder_status": status,
    }


@requires(Action.WRITE)  # a sweep over every campaign: only who may act on every customer
def send_reminders(
    crm: CRM, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Enqueue every due reminder step (idempotent); one report per campaign reminded."""
    table = campaigns_table(crm.metadata)
    reports: list[dict[str, Any]] = []
    with crm.unit_of_work(actor, ctx) as uow:
        due = uow.connection.execute(
            select(table.c.id, table.c.first_send_at, table.c.reminder_days)
            .where(table.c.status == "launched", table.c.reminder_status == "pending")
            .order_by(table.c.id)
        ).all()
        for row in due:
            if row.first_send_at + timedelta(days=int(row.reminder_days)) > uow.now:
                continue
            campaign = load(uow, int(row.id), lock=True)
            reports.append(_remind(uow, campaign))
        if reports:
            crm.audit.record(
                uow,
                [
                    AuditEntry(
                        "campaigns.remind",
                        "campaign",
                        r["campaign_id"],
                        None,
                        {"reminded": r["reminded"], "skipped": r["skipped_for_budget"]},
                    )
                    for r in reports
                ],
            )
    return reports


@requires(Action.WRITE, customer=campaign_recipients)
def stop_campaign(
    crm: CRM, campaign_id: int, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Stop a launched campaign: queued and deferred messages are refused, no reminder follows.

    The principal must be allowed to write every recipient. ConflictError for
    a draft (nothing to stop) or a campaign already stopped.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        campaign = load(uow, campaign_id, lock=True)
        if campaign["status"] != "launched":
            raise ConflictError(
                f"campaign {campaign_id} is {campaign['status']}: only a launched campaign stops"
            )
        cancelled = cancel_pending(uow, campaign_id)
        table = campaigns_table(crm.metadata)
        reminder = campaign["reminder_status"]
        uow.connection.execute(
            update(table)
            .where(table.c.id == campaign_id)
            .values(
                status="stopped",
                stopped_at=uow.now,
                reminder_status="stopped" if reminder == "pending" else reminder,
            )
        )
        crm.audit.record(
            uow,
            [AuditEntry("campaigns.stop", "campaign", campaign_id, None, {"cancelled": cancelled})],
        )
        uow.emit("campaigns.stopped", None, {"campaign_id": campaign_id, "cancelled": cancelled})
        return {"campaign_id": campaign_id, "cancelled_messages": cancelled}


enforce_declared(__name__)

__all__ = [
    "committed_messages",
    "launch_campaign",
    "reminder_candidates",
    "send_reminders",
    "stop_campaign",
]
