"""Hooks the example plugin adds for other plugins to implement (via ``crm_add_hookspecs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def example_touch_milestone(ctx: UnitOfWork, customer_id: int, touches: int) -> None:
    """React to a customer's touch count reaching a multiple of the configured ``milestone``.

    Called inside the transaction that recorded the interactions, once per
    milestone reached (a batch taking a customer from 8 to 21 touches with
    ``milestone = 10`` calls it with ``touches=10`` and ``touches=20``).
    Write through ``ctx.connection``; raising rolls the recording back.
    """
