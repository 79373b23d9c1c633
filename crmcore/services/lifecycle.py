"""The lifecycle stage machine: allowed transitions, moves and history.

::

    prospect -> new -> active <-> loyal
                 \\       \\        /
                  +------> at_risk --+--> churned -> active (won back)

Automatic moves: a customer's first purchase moves them from prospect to new;
a purchase by a churned customer moves them back to active.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select, update

from crmcore.access import Action
from crmcore.audit import acting_user
from crmcore.errors import TransitionError, ValidationError
from crmcore.events import emitters
from crmcore.model.entities import LifecycleEvent, Stage
from crmcore.model.limits import INT64_MAX
from crmcore.model.serialization import from_dict
from crmcore.storage.bulk import insert_rows
from crmcore.storage.filters import among
from crmcore.storage.tables import customers, lifecycle_events
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

#: Every allowed move, from stage to the set of stages it may go to.
TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.PROSPECT: frozenset({Stage.NEW}),
    Stage.NEW: frozenset({Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.ACTIVE: frozenset({Stage.LOYAL, Stage.AT_RISK, Stage.CHURNED}),
    Stage.LOYAL: frozenset({Stage.ACTIVE, Stage.AT_RISK, Stage.CHURNED}),
    Stage.AT_RISK: frozenset({Stage.ACTIVE, Stage.LOYAL, Stage.CHURNED}),
    Stage.CHURNED: frozenset({Stage.ACTIVE}),
}


def parse_stage(value: Stage | str) -> Stage:
    """A Stage from its value; ValidationError listing the stages otherwise."""
    try:
        return Stage(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Stage)
        raise ValidationError(
            f"stage: {value!r} is not one of: {allowed}", field="stage", value=value
        ) from None


def check_transition(from_stage: Stage, to_stage: Stage) -> None:
    """Raise TransitionError when the graph does not allow ``from_stage -> to_stage``."""
    if to_stage == from_stage:
        raise TransitionError(
            f"stage: customer is already {from_stage.value}", field="stage", value=to_stage.value
        )
    if to_stage not in TRANSITIONS[from_stage]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[from_stage]))
        raise TransitionError(
            f"stage: cannot move from {from_stage.value} to {to_stage.value} (allowed from "
            f"{from_stage.value}: {allowed})",
            field="stage",
            value=to_stage.value,
        )


def _event_from_row(row: Row[Any]) -> LifecycleEvent:
    data = {k: v for k, v in row._mapping.items() if v is not None}
    return from_dict(data, LifecycleEvent)


class LifecycleService:
    """Lifecycle moves and history. Get it as ``crm.lifecycle``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def move(
        self,
        customer_id: int,
        to_stage: Stage | str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> LifecycleEvent:
        """Move one customer to ``to_stage``; TransitionError when the graph forbids it."""
        return self.move_many([(customer_id, to_stage, reason)], actor=actor, ctx=ctx)[0]

    def move_many(
        self,
        moves: Iterable[tuple[int, Stage | str, str | None]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> list[LifecycleEvent]:
        """Apply several ``(customer_id, to_stage, reason)`` moves in one transaction.

        Every move is checked first; one forbidden move aborts them all.
        """
        wanted = [(cid, parse_stage(stage), reason) for cid, stage, reason in moves]
        with self._crm.unit_of_work(actor, ctx) as uow:
            current = self._current_stages(uow, [cid for cid, _, _ in wanted])
            self._crm.access.check_ids(Action.WRITE, current, ctx=uow)
            events: list[LifecycleEvent] = []
            for cid, to_stage, reason in wanted:
                if cid not in current:
                    from crmcore.errors import NotFoundError

                    raise NotFoundError(f"customer {cid} does not exist")
                try:
                    check_transition(current[cid], to_stage)
                except TransitionError as exc:
                    raise TransitionError(
                        f"customer {cid}: {exc}", field=exc.field, value=exc.value
                    ) from None
                events.append(
                    LifecycleEvent(
                        customer_id=cid,
                        from_stage=current[cid],
                        to_stage=to_stage,
                        reason=reason,
                        at=uow.now,
                        actor=acting_user(uow),
                    )
                )
                current[cid] = to_stage
            self.apply(uow, events)
        return events

    def _current_stages(self, uow: UnitOfWork, ids: Sequence[int]) -> dict[int, Stage]:
        for cid in ids:
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise ValidationError(
                    f"customer id: expected an integer, got {cid!r}", field="customer_id"
                )
        # An id beyond 64 bits names no customer (and would overflow the driver).
        stored = sorted({cid for cid in ids if 0 < cid <= INT64_MAX})
        query = select(customers.c.id, customers.c.stage).where(
            among(uow.connection, customers.c.id, stored)
        )
        if uow.connection.dialect.name == "postgresql":
            query = query.order_by(customers.c.id).with_for_update(key_share=True)
        return {cid: Stage(stage) for cid, stage in uow.connection.execute(query)}

    def apply(self, uow: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
        """Write already-checked moves: stages, history, then ``crm_lifecycle_changed``.

        For plugins that decide moves themselves inside a unit of work; the
        caller is responsible for having checked each move with
        :func:`check_transition`. The acting user must be allowed to write
        every customer moved (one query; AccessDeniedError otherwise).
        """
        if not events:
            return
        self._crm.access.guard(uow, [e.customer_id for e in events], Action.WRITE)
        by_stage: dict[Stage, list[int]] = {}
        for event in events:
            by_stage.setdefault(event.to_stage, []).append(event.customer_id)
        for stage, ids in by_stage.items():
            uow.connection.execute(
                update(customers)
                .where(among(uow.connection, customers.c.id, ids))
                .values(stage=stage.value, updated_at=uow.now)
            )
        record_lifecycle_events(uow, events)
        self._crm.audit.record_batch(
            uow,
            "lifecycle.move",
            "customer",
            [
                (
                    e.customer_id,
                    e.customer_id,
                    {
                        "from": e.from_stage.value if e.from_stage else None,
                        "to": e.to_stage.value,
                        "reason": e.reason,
                    },
                )
                for e in events
            ],
        )
        self._crm.call_hook("crm_lifecycle_changed", ctx=uow, events=list(events))

    def history(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> list[LifecycleEvent]:
        """Every stage the customer has been in, oldest first."""
        with self._crm.reading(ctx) as uow:
            self._crm.customers.get(customer_id, ctx=uow)
            rows = uow.connection.execute(
                select(lifecycle_events)
                .where(lifecycle_events.c.customer_id == customer_id)
                .order_by(lifecycle_events.c.at, lifecycle_events.c.id)
            ).all()
        return [_event_from_row(r) for r in rows]

    @staticmethod
    def allowed_moves(stage: Stage | str) -> frozenset[Stage]:
        """Stages a customer in ``stage`` may move to."""
        return TRANSITIONS[parse_stage(stage)]


def record_lifecycle_events(uow: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """Store lifecycle events as history rows and emit them (the caller has checked the moves).

    For core services that change stages as part of another operation (a
    customer created, a first purchase); plugins move stages with
    :meth:`LifecycleService.move`, which checks the transition.
    """
    emitters.lifecycle_changed(uow, events)
    if events:
        insert_rows(
            uow.connection,
            lifecycle_events,
            [
                {
                    "customer_id": e.customer_id,
                    "from_stage": e.from_stage.value if e.from_stage else None,
                    "to_stage": e.to_stage.value,
                    "reason": e.reason,
                    "actor": e.actor,
                    "at": e.at,
                }
                for e in events
            ],
        )
