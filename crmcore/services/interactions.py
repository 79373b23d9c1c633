"""The interaction service: record (one or many), timeline and filtered listing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import ColumnElement, and_, func, select

from crmcore.access import Action
from crmcore.audit import acting_user
from crmcore.errors import (
    ConflictError,
    CRMError,
    NotFoundError,
    RejectHandler,
    ValidationError,
    ValidationErrors,
    with_location,
)
from crmcore.events import emitters
from crmcore.model.entities import (
    Channel,
    Interaction,
    InteractionKind,
    LifecycleEvent,
    Stage,
    stamped,
)
from crmcore.model.limits import (
    INT64_MAX,
    INT64_MIN,
    int_problem,
)
from crmcore.model.pagination import Page, check_page
from crmcore.model.serialization import from_dict, to_dict
from crmcore.services.accounts.contacts import contact_problems
from crmcore.services.interaction_checks import validate_interaction
from crmcore.storage.batches import numbered_batches
from crmcore.storage.bulk import insert_rows
from crmcore.storage.filters import among
from crmcore.storage.ids import allocate_ids
from crmcore.storage.records import interaction_from_row
from crmcore.storage.tables import customers, interactions
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM


#: The source an interaction with an external id but no source is stored under.
DEFAULT_SOURCE = "default"

#: Told of an item left out because its key is stored: (position, input, stored id or None).
ExistingHandler = Callable[[int, Any, "int | None"], None]

#: Automatic moves a purchase causes: stage before -> (stage after, reason).
PURCHASE_MOVES: Mapping[Stage, tuple[Stage, str]] = {
    Stage.PROSPECT: (Stage.NEW, "first purchase"),
    Stage.CHURNED: (Stage.ACTIVE, "won back: purchase after churn"),
}


def _to_row(interaction: Interaction) -> dict[str, Any]:
    return {
        "customer_id": interaction.customer_id,
        "kind": interaction.kind.value,
        "channel": interaction.channel.value,
        "direction": interaction.direction.value,
        "occurred_at": interaction.occurred_at,
        "amount": interaction.amount,
        "currency": interaction.currency,
        "items": [to_dict(item) for item in interaction.items],
        "text": interaction.text,
        "payload": interaction.payload,
        "handled_by": interaction.handled_by,
        "response_seconds": interaction.response_seconds,
        "source": interaction.source,
        "external_id": interaction.external_id,
        "contact_id": interaction.contact_id,
    }


def _coerce(item: Interaction | Mapping[str, Any]) -> Interaction:
    if isinstance(item, Interaction):
        return item
    if isinstance(item, Mapping):
        return from_dict(dict(item), Interaction)
    raise ValidationError(f"expected an Interaction or a mapping, got {type(item).__name__}")


class InteractionService:
    """Interactions: the Python API behind ``crm interactions``. Get it as ``crm.interactions``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def record(
        self,
        interaction: Interaction | Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Interaction:
        """Validate and store one interaction; return it with its id.

        A purchase may move its customer automatically (see
        :data:`PURCHASE_MOVES`); plugins react through
        ``crm_interactions_recorded`` in the same transaction. When its
        ``(source, external_id)`` is already stored for the customer, nothing
        is stored and the stored interaction is returned (an idempotent retry).
        """
        existing: list[int | None] = []
        try:
            recorded = self.record_many(
                [interaction],
                actor=actor,
                ctx=ctx,
                on_existing=lambda _position, _item, stored_id: existing.append(stored_id),
            )
        except CRMError as exc:
            message = str(exc)
            if message.startswith("interactions[0]: "):
                exc.args = (message.removeprefix("interactions[0]: "),)
            raise
        if recorded:
            return recorded[0]
        return self._stored(existing[0], ctx)

    def _stored(self, interaction_id: int | None, ctx: UnitOfWork | None) -> Interaction:
        with self._crm.reading(ctx) as uow:
            row = uow.connection.execute(
                select(interactions).where(interactions.c.id == interaction_id)
            ).one()
        return interaction_from_row(row)

    def record_many(
        self,
        items: Iterable[Interaction | Mapping[str, Any]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        batch_size: int = 1000,
        on_reject: RejectHandler | None = None,
        on_existing: ExistingHandler | None = None,
        keep: bool = True,
    ) -> list[Interaction]:
        """Store many interactions in one transaction, streamed in batches.

        All-or-nothing by default; with ``on_reject`` bad rows are handed to it
        (position, input, error) and the others stored. ``keep=False`` returns
        an empty list instead of collecting what was stored.

        An interaction whose ``(source, external_id)`` is already stored for
        the same customer (or repeats an earlier item of this call) is left
        out: not stored, no lifecycle move, no hook, nothing earned twice.
        ``on_existing`` is told of each (position, input, id of the stored
        interaction, or ``None`` when it repeats an item of this call). The
        same key stored for another customer is a ConflictError for that item.
        """
        batches = numbered_batches(items, batch_size)
        stored: list[Interaction] = []
        with self._crm.unit_of_work(actor, ctx) as uow:
            for batch in batches:
                done = self._record_batch(uow, batch, on_reject, on_existing)
                if keep:
                    stored.extend(done)
        return stored

    def _record_batch(
        self,
        uow: UnitOfWork,
        batch: Sequence[tuple[int, Any]],
        on_reject: RejectHandler | None,
        on_existing: ExistingHandler | None,
    ) -> list[Interaction]:
        def reject(position: int, item: Any, exc: CRMError) -> None:
            if on_reject is None:
                raise with_location(exc, f"interactions[{position}]") from None
            on_reject(position, item, exc)

        good: list[tuple[int, Any, Interaction]] = []
        for position, item in batch:
            try:
                interaction = _coerce(item)
                errors = validate_interaction(interaction, self._crm.config.json_limits)
                if errors:
                    raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
            except CRMError as exc:
                reject(position, item, exc)
                continue
            good.append((position, item, interaction))
        good = self._drop_recorded(uow, good, reject, on_existing)
        stages = self._stages(uow, {i.customer_id for _, _, i in good})
        kept = []
        for position, item, interaction in good:
            if interaction.customer_id not in stages:
                reject(
                    position,
                    item,
                    NotFoundError(
                        f"customer_id: customer {interaction.customer_id} does not exist"
                    ),
                )
                continue
            kept.append((interaction, interaction is not item, position, item))
        if not kept:
            return []
        self._crm.access.check_ids(Action.WRITE, (k[0].customer_id for k in kept), ctx=uow)
        kept = self._check_contacts(uow, kept, reject)
        if not kept:
            return []
        self._lock_buyers(uow, [k[0] for k in kept], stages)
        rows = [_to_row(k[0]) for k in kept]
        ids = allocate_ids(uow.connection, interactions, len(rows))
        for new_id, row in zip(ids, rows, strict=True):
            row["id"] = new_id
        insert_rows(uow.connection, interactions, rows)
        recorded = [
            stamped(i, fresh, id=new_id) for (i, fresh, _, _), new_id in zip(kept, ids, strict=True)
        ]
        self._crm.audit.record_batch(
            uow,
            "interaction.record",
            "interaction",
            [
                (i.id, i.customer_id, {"kind": i.kind.value, "channel": i.channel.value})
                for i in recorded
            ],
        )
        emitters.interactions_recorded(uow, recorded)
        self._automatic_moves(uow, recorded, stages)
        self._crm.call_hook("crm_interactions_recorded", ctx=uow, interactions=recorded)
        return recorded

    def _check_contacts(
        self,
        uow: UnitOfWork,
        kept: list[tuple[Interaction, bool, int, Any]],
        reject: Callable[[int, Any, CRMError], None],
    ) -> list[tuple[Interaction, bool, int, Any]]:
        """Reject interactions naming a ``contact_id`` that is no contact of their customer."""
        problems = contact_problems(uow.connection, [k[0] for k in kept])
        for index in problems:
            _, _, position, item = kept[index]
            reject(position, item, ValidationError(problems[index], field="contact_id"))
        return [k for index, k in enumerate(kept) if index not in problems]

    def _drop_recorded(
        self,
        uow: UnitOfWork,
        good: list[tuple[int, Any, Interaction]],
        reject: Callable[[int, Any, CRMError], None],
        on_existing: ExistingHandler | None,
    ) -> list[tuple[int, Any, Interaction]]:
        """Leave out interactions whose ``(source, external_id)`` is already stored.

        One query per batch, and only when the batch carries external ids. A key
        repeated inside the batch counts as already stored after its first row.
        A key stored for another customer is a conflict, not a repeat.
        """
        wanted = {i.external_id for _, _, i in good if i.external_id is not None}
        if not wanted:
            return good
        query = select(
            interactions.c.source,
            interactions.c.external_id,
            interactions.c.customer_id,
            interactions.c.id,
        ).where(among(uow.connection, interactions.c.external_id, sorted(wanted)))
        stored: dict[tuple[str, str], tuple[int, int | None]] = {
            (src, ext): (cid, iid) for src, ext, cid, iid in uow.connection.execute(query)
        }
        kept = []
        for entry in good:
            position, item, interaction = entry
            external_id = interaction.external_id
            if external_id is None:
                kept.append(entry)
                continue
            source = interaction.source
            if source is None:
                source = DEFAULT_SOURCE
                interaction = attrs.evolve(interaction, source=source)
                entry = (position, item, interaction)
            found = stored.get((source, external_id))
            if found is None:
                stored[(source, external_id)] = (interaction.customer_id, None)
                kept.append(entry)
            elif found[0] != interaction.customer_id:
                reject(
                    position,
                    item,
                    ConflictError(
                        f"external_id: {external_id!r} of source "
                        f"{source!r} is already recorded for another customer"
                    ),
                )
            elif on_existing is not None:
                on_existing(position, item, found[1])
        return kept

    def _stages(self, uow: UnitOfWork, ids: set[int]) -> dict[int, Stage]:
        if not ids:
            return {}
        query = select(customers.c.id, customers.c.stage).where(
            among(uow.connection, customers.c.id, sorted(ids))
        )
        return {cid: Stage(value) for cid, value in uow.connection.execute(query).all()}

    def _lock_buyers(
        self, uow: UnitOfWork, kept: Sequence[Interaction], stages: dict[int, Stage]
    ) -> None:
        """On PostgreSQL, lock and re-read the buyers that a purchase may move.

        Two writers recording a first purchase for the same customer at once
        must not both move them from prospect to new. The lock is taken in id
        order and before the interactions are inserted, and it is FOR NO KEY
        UPDATE, which the inserts' foreign-key checks (FOR KEY SHARE) do not
        conflict with: so concurrent batches queue instead of deadlocking.
        """
        if uow.connection.dialect.name != "postgresql":
            return
        buyers = {i.customer_id for i in kept if i.kind is InteractionKind.PURCHASE}
        movable = sorted(cid for cid in buyers if stages[cid] in PURCHASE_MOVES)
        if movable:
            query = (
                select(customers.c.id, customers.c.stage)
                .where(among(uow.connection, customers.c.id, movable))
                .order_by(customers.c.id)
                .with_for_update(key_share=True)
            )
            stages.update((cid, Stage(st)) for cid, st in uow.connection.execute(query))

    def _automatic_moves(
        self, uow: UnitOfWork, recorded: Sequence[Interaction], stages: dict[int, Stage]
    ) -> None:
        events: list[LifecycleEvent] = []
        for interaction in sorted(recorded, key=lambda i: i.occurred_at):
            if interaction.kind is not InteractionKind.PURCHASE:
                continue
            current = stages[interaction.customer_id]
            if current in PURCHASE_MOVES:
                to_stage, reason = PURCHASE_MOVES[current]
                events.append(
                    LifecycleEvent(
                        customer_id=interaction.customer_id,
                        from_stage=current,
                        to_stage=to_stage,
                        reason=reason,
                        at=uow.now,
                        actor=acting_user(uow),
                    )
                )
                stages[interaction.customer_id] = to_stage
        self._crm.lifecycle.apply(uow, events)

    def list(
        self,
        *,
        customer_id: int | None = None,
        kinds: Iterable[str] | None = None,
        channels: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        ctx: UnitOfWork | None = None,
    ) -> Page[Interaction]:
        """Interactions matching every filter given, newest first.

        ``since`` is inclusive and ``until`` exclusive; both must be
        timezone-aware. With ``ctx``, reads inside that unit of work.
        """
        check_page(limit, offset)
        conditions: list[ColumnElement[bool]] = []
        if customer_id is not None:
            if problem := int_problem(customer_id, INT64_MIN, INT64_MAX):
                raise ValidationError(f"customer_id: {problem}", field="customer_id")
            conditions.append(interactions.c.customer_id == customer_id)
        if kinds:
            values = [self._enum(InteractionKind, k, "kind") for k in kinds]
            conditions.append(interactions.c.kind.in_(values))
        if channels:
            values = [self._enum(Channel, c, "channel") for c in channels]
            conditions.append(interactions.c.channel.in_(values))
        for name, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ValidationError(
                    f"{name}: must be a timezone-aware datetime, got {value!r}", field=name
                )
        if since is not None:
            conditions.append(interactions.c.occurred_at >= since)
        if until is not None:
            conditions.append(interactions.c.occurred_at < until)
        visible = self._crm.access.visible_condition()
        if visible is not None:
            conditions.append(interactions.c.customer_id.in_(select(customers.c.id).where(visible)))
        where = and_(True, *conditions)
        with self._crm.reading(ctx) as uow:
            total = uow.connection.execute(
                select(func.count()).select_from(interactions).where(where)
            ).scalar_one()
            rows = uow.connection.execute(
                select(interactions)
                .where(where)
                .order_by(interactions.c.occurred_at.desc(), interactions.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return Page(
            items=[interaction_from_row(r) for r in rows], total=total, limit=limit, offset=offset
        )

    def timeline(
        self,
        customer_id: int,
        *,
        kinds: Iterable[str] | None = None,
        channels: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        ctx: UnitOfWork | None = None,
    ) -> Page[Interaction]:
        """One customer's interactions, newest first; NotFoundError for an unknown customer."""
        self._crm.customers.get(customer_id, ctx=ctx)
        return self.list(
            customer_id=customer_id,
            kinds=kinds,
            channels=channels,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
            ctx=ctx,
        )

    @staticmethod
    def _enum(cls: type[InteractionKind] | type[Channel], value: str, name: str) -> str:
        try:
            return cls(value).value
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValidationError(
                f"{name}: {value!r} is not one of: {allowed}", field=name
            ) from None
