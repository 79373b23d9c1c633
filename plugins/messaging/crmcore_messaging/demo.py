"""The plugin's part of ``crm demo`` (filled in below)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires

if TYPE_CHECKING:
    from rich.console import Console

    from crmcore import CRM


@requires(Action.ADMINISTER)
def run(crm: CRM, seed: int, console: Console) -> None:
    """Queue and send a few messages; print the outcome."""


enforce_declared(__name__)
