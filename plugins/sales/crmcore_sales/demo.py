"""The sales part of ``crm demo``."""

from __future__ import annotations

from rich.console import Console

from crmcore import CRM


def run(crm: CRM, seed: int, console: Console) -> None:
    """Add the demo's deals, contracts and payments and print the summary."""
    del crm, seed
    console.print("sales: no demo data yet.")
