"""The complaint service: intake, workflow moves, assignment, resolution, rating, SLA sweep.

Get it as ``ComplaintService(crm)``. Every write runs in one unit of work
(``crm.unit_of_work(actor, ctx)``; pass ``ctx=`` to join an open one): the
complaint rows, their history, the core interaction recorded at intake, a
refund recorded for a compensation and every plugin's reaction to the hooks
fired commit together or not at all.

Times: every operation happens at the clock's time (``ctx.now``), to the
second (fractions are dropped so that every duration is a whole number of
seconds). Imports of historical complaints, and the demo, may pass ``at=`` (or
``opened_at`` per item): an aware time not after the clock and not before the
complaint's last change.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.audit import acting_user
from crmcore_complaints import sla
from crmcore_complaints.compensation import ComplaintCompensation
from crmcore_complaints.entities import Complaint
from crmcore_complaints.intake import ComplaintIntake
from crmcore_complaints.store import (
    COMPENSATION_KINDS,
    RATING_MAX,
    RATING_MIN,
    bad,
    compensation_json,
    history_entry,
    moment,
    text_field,
)
from crmcore_complaints.workflow import (
    SETTLED,
    State,
    check_transition,
    parse_state,
)

#: Moves the customer is told of (``complaints_progress``).
_PROGRESS = frozenset({State.ACKNOWLEDGED, State.RESOLVED})

__all__ = [
    "COMPENSATION_KINDS",
    "RATING_MAX",
    "RATING_MIN",
    "ComplaintService",
    "compensation_json",
    "history_entry",
    "moment",
]


class ComplaintService(ComplaintIntake, ComplaintCompensation):
    """Complaints: the Python API behind ``crm complaints``.

    Reads and the guarded load are in :mod:`crmcore_complaints.store`, intake in
    :mod:`crmcore_complaints.intake`, compensation in
    :mod:`crmcore_complaints.compensation`; the workflow and the SLA sweep here.
    """

    # --- workflow --------------------------------------------------------------

    def move(
        self,
        complaint_id: int,
        state: State | str,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Move the complaint to ``state`` along the workflow graph; return it updated.

        Updates the SLA clocks (first response, pause, stop, resume) and
        records the move in the history with the actor and time. Raises
        TransitionError for a move the graph does not allow (nothing
        changes), NotFoundError for an unknown complaint.
        """
        target = parse_state(state)
        with self._crm.unit_of_work(actor, ctx) as uow:
            return self._move(uow, complaint_id, target, note=note, at=at)

    def _move(
        self,
        uow: UnitOfWork,
        complaint_id: int,
        target: State,
        *,
        note: str | None,
        at: datetime | None,
        extra: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Complaint:
        complaint = self._load(uow, complaint_id, lock=True)
        check_transition(complaint.id, complaint.state, target)
        when = self._when(uow, complaint, at)
        clocks = sla.apply_move(
            self.settings.schedule,
            complaint.clocks,
            opened_at=complaint.opened_at,
            from_state=complaint.state,
            to_state=target,
            at=when,
            resolution_target=complaint.resolution_target_seconds,
        )
        values: dict[str, Any] = {
            "state": target.value,
            "updated_at": when,
            "first_response_at": clocks.first_response_at,
            "first_response_seconds": clocks.first_response_seconds,
            "resolution_accrued_seconds": clocks.resolution_accrued_seconds,
            "resolution_running_since": clocks.resolution_running_since,
            "resolution_due_at": clocks.resolution_due_at,
            "resolution_seconds": clocks.resolution_seconds,
        }
        if target is State.RESOLVED:
            values.update(resolved_at=when, resolved_by=acting_user(uow) or complaint.assignee)
        elif target is State.CLOSED:
            values["closed_at"] = when
        elif target is State.REOPENED:
            values.update(reopen_count=complaint.reopen_count + 1, closed_at=None)
        values.update(extra or {})
        uow.connection.execute(
            update(self.cases).where(self.cases.c.id == complaint.id).values(values)
        )
        self._write_history(
            uow,
            [
                self._entry(
                    complaint.id,
                    when,
                    acting_user(uow),
                    "move",
                    complaint.state.value,
                    target.value,
                    note=note,
                    details=details,
                )
            ],
        )
        moved = self._load(uow, complaint.id)
        if target in _PROGRESS:
            self._tell_progress(uow, moved, when)
        return moved

    def _tell_progress(self, uow: UnitOfWork, complaint: Complaint, when: datetime) -> None:
        """Fire ``complaints_progress`` for a move to acknowledged or resolved."""
        if complaint.customer_id is None:
            return
        progress = {
            "complaint_id": complaint.id,
            "customer_id": complaint.customer_id,
            "state": complaint.state.value,
            "reference": complaint.reference,
            "category": complaint.category,
            "severity": complaint.severity.value,
            "at": when,
        }
        self._crm.call_hook("complaints_progress", ctx=uow, updates=[progress])

    def resolve(
        self,
        complaint_id: int,
        *,
        resolution: str,
        root_cause: str | None = None,
        compensations: Sequence[Mapping[str, Any]] = (),
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Resolve the complaint: resolution text, root cause, compensation; stop its clock.

        ``root_cause`` must be one of the configured root causes. Each
        compensation is a mapping with ``kind`` (``points``, ``refund``,
        ``voucher``, ``gift``, ``other``), ``points`` (a positive integer,
        required for ``points``), ``amount`` and ``currency`` (required for
        ``refund`` and ``voucher``), ``reason``, and for a refund optionally
        ``refund_of`` (a purchase interaction of the customer: a core refund
        interaction is then recorded). Fires ``complaints_compensation_issued``
        in the same transaction. Raises ValidationError / TransitionError;
        nothing is stored then.
        """
        text = text_field({"resolution": resolution}, "resolution", 100_000, required=True)
        if root_cause is not None and root_cause not in self.settings.root_causes:
            known = ", ".join(self.settings.root_causes)
            raise bad("root_cause", f"{root_cause!r} is not one of: {known}", root_cause)
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = self._load(uow, complaint_id, lock=True)
            check_transition(before.id, before.state, State.RESOLVED)
            grants = [
                self._parse_compensation(uow, before, item, index)
                for index, item in enumerate(compensations)
            ]
            complaint = self._move(
                uow,
                complaint_id,
                State.RESOLVED,
                note=note,
                at=at,
                extra={"resolution": text, "root_cause": root_cause},
                details={"root_cause": root_cause, "compensations": len(grants)},
            )
            if grants:
                self._issue(uow, complaint, grants)
            return complaint

    def close(
        self,
        complaint_id: int,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Close a resolved complaint (``move(id, "closed")``)."""
        return self.move(complaint_id, State.CLOSED, note=note, actor=actor, ctx=ctx, at=at)

    def reopen(
        self,
        complaint_id: int,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Reopen a resolved or closed complaint: its resolution clock resumes."""
        return self.move(complaint_id, State.REOPENED, note=note, actor=actor, ctx=ctx, at=at)

    def assign(
        self,
        complaint_id: int,
        assignee: str | None,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Assign (or reassign; ``None`` unassigns) the complaint; recorded in the history.

        Assigning the current assignee changes nothing. Raises
        ValidationError for a closed complaint or an over-long name.
        """
        name = text_field({"assignee": assignee}, "assignee", 200)
        with self._crm.unit_of_work(actor, ctx) as uow:
            complaint = self._load(uow, complaint_id, lock=True)
            if complaint.assignee == name:
                return complaint
            if complaint.state is State.CLOSED:
                raise bad("assignee", f"complaint {complaint.id} is closed", name)
            when = self._when(uow, complaint, at)
            uow.connection.execute(
                update(self.cases)
                .where(self.cases.c.id == complaint.id)
                .values(assignee=name, updated_at=when)
            )
            self._write_history(
                uow,
                [
                    self._entry(
                        complaint.id,
                        when,
                        acting_user(uow),
                        "assign",
                        complaint.assignee,
                        name,
                        note=note,
                    )
                ],
            )
            return self._load(uow, complaint.id)

    def rate(
        self,
        complaint_id: int,
        rating: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Record the customer's rating of the handling (1-5) of a resolved or closed complaint.

        A later rating replaces the earlier one; both are in the history.
        """
        if isinstance(rating, bool) or not isinstance(rating, int):
            raise bad("rating", f"expected an integer, got {rating!r}", rating)
        if not RATING_MIN <= rating <= RATING_MAX:
            raise bad("rating", f"{rating} is outside the scale {RATING_MIN}-{RATING_MAX}", rating)
        with self._crm.unit_of_work(actor, ctx) as uow:
            complaint = self._load(uow, complaint_id, lock=True)
            if complaint.state not in SETTLED:
                raise bad(
                    "rating",
                    f"complaint {complaint.id} is {complaint.state.value}; only resolved or "
                    "closed complaints are rated",
                    rating,
                )
            when = self._when(uow, complaint, at)
            uow.connection.execute(
                update(self.cases)
                .where(self.cases.c.id == complaint.id)
                .values(rating=rating, rated_at=when)
            )
            self._write_history(
                uow,
                [
                    self._entry(
                        complaint.id,
                        when,
                        acting_user(uow),
                        "rate",
                        None if complaint.rating is None else str(complaint.rating),
                        str(rating),
                    )
                ],
            )
            return self._load(uow, complaint.id)

    # --- SLA sweep ---------------------------------------------------------------

    def sweep(
        self, *, actor: str | None = None, ctx: UnitOfWork | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Mark every SLA breach not marked yet and fire ``complaints_sla_breached`` once.

        A first-response target is breached when the first response came after
        ``first_response_due_at`` (or has not come and the clock is past it); a
        resolution target when the running clock is past ``resolution_due_at``
        or stopped after it. Each breach is marked once per complaint and
        target (idempotent: a second sweep finds nothing new), recorded in the
        history and in ``complaints_breaches``. Returns the breaches fired,
        ordered by complaint id then target. A programme-wide run: refused
        unless the acting user may write every customer (admins, managers).
        """
        self._crm.access.require(Action.WRITE)
        with self._crm.unit_of_work(actor, ctx) as uow:
            now = moment(uow, None)
            c = self.cases.c
            fr_query = select(
                c.id, c.customer_id, c.severity, c.first_response_due_at.label("due_at")
            ).where(
                ~c.first_response_breached,
                c.first_response_due_at < func.coalesce(c.first_response_at, now),
            )
            res_query = select(
                c.id, c.customer_id, c.severity, c.resolution_due_at.label("due_at")
            ).where(
                ~c.resolution_breached,
                c.resolution_due_at.is_not(None),
                c.resolution_due_at < now,
            )
            if uow.connection.dialect.name == "postgresql":
                fr_query = fr_query.with_for_update()
                res_query = res_query.with_for_update()
            breaches: list[dict[str, Any]] = []
            for target, query in (("first_response", fr_query), ("resolution", res_query)):
                for row in uow.connection.execute(query):
                    breaches.append(
                        {
                            "complaint_id": row.id,
                            "customer_id": row.customer_id,
                            "severity": row.severity,
                            "target": target,
                            "due_at": row.due_at,
                            "detected_at": now,
                        }
                    )
            if not breaches:
                return []
            breaches.sort(key=lambda b: (b["complaint_id"], b["target"]))
            for target in ("first_response", "resolution"):
                ids = [b["complaint_id"] for b in breaches if b["target"] == target]
                if ids:
                    uow.connection.execute(
                        update(self.cases)
                        .where(self.cases.c.id == bindparam("cid"))
                        .values({f"{target}_breached": True}),
                        [{"cid": cid} for cid in ids],
                    )
            uow.connection.execute(insert(self.breaches_table), breaches)
            self._write_history(
                uow,
                [
                    self._entry(
                        b["complaint_id"],
                        now,
                        acting_user(uow),
                        "breach",
                        None,
                        b["target"],
                        details={"due_at": b["due_at"].isoformat(), "severity": b["severity"]},
                    )
                    for b in breaches
                ],
            )
            self._crm.call_hook("complaints_sla_breached", ctx=uow, breaches=breaches)
            return breaches
