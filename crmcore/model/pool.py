"""The customer pool's settings (``[pool]`` in ``crm.toml``) and the assignment sequence.

.. code-block:: toml

    [pool]
    visible_fields = ["name", "company_name", "industry", "stage", "created_at"]
    assignment = "round_robin"        # "none" (default), "round_robin" or "weighted"
    team = ["alice", "bob", "carol"]  # round_robin: the members, in turn
    weights = { alice = 2, bob = 1 }  # weighted: turns per cycle
    recycle_after_days = 90           # owned customers left uncontacted go back to the pool
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from crmcore.errors import ValidationError
from crmcore.model.entities import Customer

ASSIGNMENTS = ("none", "round_robin", "weighted")
#: Fields of a pool customer an agent sees before claiming it (``id`` always).
DEFAULT_VISIBLE_FIELDS = (
    "kind",
    "name",
    "company_name",
    "industry",
    "size",
    "source_channel",
    "stage",
    "created_at",
)
_CUSTOMER_FIELDS = frozenset(f.name for f in attrs.fields(Customer))
_MAX_WEIGHT = 100


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _weights(value: Any) -> Mapping[str, int]:
    return dict(value)


@frozen
class PoolSettings:
    """The ``[pool]`` section (validated by :mod:`crmcore.config`); see the module docstring."""

    visible_fields: tuple[str, ...] = field(default=DEFAULT_VISIBLE_FIELDS, converter=_strings)
    assignment: str = "none"
    team: tuple[str, ...] = field(default=(), converter=_strings)
    weights: Mapping[str, int] = field(factory=dict, converter=_weights)
    recycle_after_days: int | None = None

    def __attrs_post_init__(self) -> None:
        """Refuse unknown fields, an assignment without members and bad weights or days."""
        for name in self.visible_fields:
            if name not in _CUSTOMER_FIELDS:
                raise ValidationError(
                    f"pool.visible_fields: {name!r} is not a customer field",
                    field="pool.visible_fields",
                )
        if self.assignment not in ASSIGNMENTS:
            raise ValidationError(
                f"pool.assignment: {self.assignment!r} is not one of {', '.join(ASSIGNMENTS)}",
                field="pool.assignment",
            )
        if self.assignment == "round_robin" and not self.team:
            raise ValidationError(
                "pool.team: round_robin assignment needs at least one member", field="pool.team"
            )
        if self.assignment == "weighted" and not self.weights:
            raise ValidationError(
                "pool.weights: weighted assignment needs at least one member",
                field="pool.weights",
            )
        for user, weight in self.weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise ValidationError(
                    f"pool.weights.{user}: expected a whole number, got {weight!r}",
                    field=f"pool.weights.{user}",
                )
            if not 1 <= weight <= _MAX_WEIGHT:
                raise ValidationError(
                    f"pool.weights.{user}: must be 1 to {_MAX_WEIGHT}, got {weight}",
                    field=f"pool.weights.{user}",
                )
        days = self.recycle_after_days
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise ValidationError(
                f"pool.recycle_after_days: must be a whole number of days >= 1, got {days!r}",
                field="pool.recycle_after_days",
            )

    def sequence(self) -> tuple[str, ...]:
        """One cycle of the assignment: who gets each new customer, in turn.

        ``round_robin``: the team in order. ``weighted``: the smooth weighted
        round-robin order (nginx's), in which a member of weight *w* gets *w*
        of every sum-of-weights turns, spread out rather than in a row:
        ``{alice = 2, bob = 1}`` gives ``alice, bob, alice``.
        """
        if self.assignment == "round_robin":
            return self.team
        if self.assignment != "weighted":
            return ()
        members = list(self.weights.items())
        total = sum(w for _, w in members)
        current = dict.fromkeys(self.weights, 0)
        order: list[str] = []
        for _ in range(total):
            for user, weight in members:
                current[user] += weight
            chosen = max(members, key=lambda m: current[m[0]])[0]
            current[chosen] -= total
            order.append(chosen)
        return tuple(order)


__all__ = ["ASSIGNMENTS", "DEFAULT_VISIBLE_FIELDS", "PoolSettings"]
