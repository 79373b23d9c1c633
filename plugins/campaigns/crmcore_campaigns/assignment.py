"""The seeded random assignment of an audience to the control group and the variants.

Pure functions (no database). The procedure, exactly (the docs page repeats it):

1. ``rng = random.Random(seed)``: one generator for the whole campaign.
2. Strata in ascending order of their name; in each, the member ids sorted
   ascending, then ``rng.shuffle(ids)``.
3. The first ``held = (share_bp * n + 5000) // 10000`` of the stratum's
   shuffled ids are the control group, where ``n`` is the stratum's size and
   ``share_bp`` the control share in ten-thousandths (0.1 is 1000): the share
   times ``n`` rounded half up.
4. The rest are treated, in shuffled order: the ``j``-th of them (``j`` from 0,
   counted per stratum) gets ``pattern[j % len(pattern)]``, where ``pattern``
   lists each variant ``weight`` times, variants in the order given (weights
   ``A=2, B=1`` give ``A, A, B``).

``position`` is a member's index in its stratum's shuffled order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from attrs import frozen

CONTROL = "control"
TREATMENT = "treatment"


@frozen
class Assignment:
    """One audience member's group, variant (``None`` in the control group), stratum, position."""

    customer_id: int
    group: str
    variant: str | None
    stratum: str
    position: int


def share_in_basis_points(share: Decimal) -> int:
    """``share`` (0 <= share < 1, at most 4 decimals) in ten-thousandths."""
    scaled = share * 10000
    if scaled != scaled.to_integral_value() or not 0 <= scaled < 10000:
        raise ValueError(f"control share {share} is not in [0, 1) with at most 4 decimals")
    return int(scaled)


def held_out(share_bp: int, n: int) -> int:
    """How many of a stratum of ``n`` members are held out: share x n rounded half up."""
    return (share_bp * n + 5000) // 10000


def variant_pattern(variants: Sequence[tuple[str, int]]) -> list[str]:
    """Each variant name repeated ``weight`` times, in the order given."""
    pattern = [name for name, weight in variants for _ in range(weight)]
    if not pattern:
        raise ValueError("at least one variant with a positive weight is needed")
    return pattern


def assign(
    strata: Mapping[int, str] | Iterable[tuple[int, str]],
    *,
    seed: int,
    share_bp: int,
    variants: Sequence[tuple[str, int]],
) -> list[Assignment]:
    """Assign every member (``customer_id -> stratum``) as the module docstring says."""
    by_stratum: dict[str, list[int]] = {}
    pairs = strata.items() if isinstance(strata, Mapping) else strata
    for customer_id, stratum in pairs:
        by_stratum.setdefault(stratum, []).append(customer_id)
    pattern = variant_pattern(variants)
    rng = random.Random(seed)
    result: list[Assignment] = []
    for stratum in sorted(by_stratum):
        ids = sorted(by_stratum[stratum])
        rng.shuffle(ids)
        held = held_out(share_bp, len(ids))
        for position, customer_id in enumerate(ids):
            if position < held:
                result.append(Assignment(customer_id, CONTROL, None, stratum, position))
            else:
                variant = pattern[(position - held) % len(pattern)]
                result.append(Assignment(customer_id, TREATMENT, variant, stratum, position))
    return result


__all__ = [
    "CONTROL",
    "TREATMENT",
    "Assignment",
    "assign",
    "held_out",
    "share_in_basis_points",
    "variant_pattern",
]
