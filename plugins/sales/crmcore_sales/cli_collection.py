"""``crm sales contracts|payments|receivables|sweep``: contracts and collection."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore_sales import contracts, receivables


def _contract_out(contract: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(contract)
        return
    head = {k: v for k, v in contract.items() if k not in ("instalments", "payments")}
    print_record(head, title=f"contract {contract['id']}")
    print_table(
        contract["instalments"], ["seq", "due_date", "amount", "outstanding"], title="schedule"
    )
    if contract["payments"]:
        print_table(contract["payments"], ["received_on", "amount", "reference"], title="payments")


@click.group("contracts")
def contracts_group() -> None:
    """Contracts of won deals and their payment schedules."""


@contracts_group.command("add")
@click.argument("deal_id", metavar="DEAL_ID", type=int)
@click.option("--start", "start_date", required=True, help="Start date (YYYY-MM-DD).")
@click.option("--end", "end_date", required=True, help="End date (YYYY-MM-DD).")
@click.option("--value", help="Contract value (default: the deal's amount).")
@click.option("--currency", help="ISO currency (default: the deal's).")
@click.option("--renewal", "renewal_date", help="Renewal date (default: the end date).")
@click.option("--terms", "payment_terms_days", type=click.IntRange(0, 3650), help="Days to pay.")
@click.option("--instalments", "instalment_count", type=click.IntRange(1, 600), help="Monthly.")
@json_option
def add_contract(deal_id: int, as_json: bool, **given: Any) -> None:
    """Turn a won deal into a contract with equal monthly instalments."""
    data = {k: v for k, v in given.items() if v is not None}
    contract = contracts.create_contract(get_crm(), deal_id, data, actor=get_actor())
    _contract_out(contract, as_json)


@contracts_group.command("show")
@click.argument("contract_id", metavar="ID", type=int)
@json_option
def show_contract(contract_id: int, as_json: bool) -> None:
    """Show a contract, its schedule (with what is outstanding) and its payments."""
    _contract_out(contracts.get_contract(get_crm(), contract_id), as_json)


@contracts_group.command("list")
@click.option("--customer", "customer_id", type=int, help="Only this customer's contracts.")
@json_option
def list_contracts(customer_id: int | None, as_json: bool) -> None:
    """List contracts of customers you may read."""
    found = contracts.list_contracts(get_crm(), customer_id=customer_id)
    if as_json:
        print_json(found)
    else:
        columns = ["id", "deal_id", "customer_id", "value", "currency", "start_date", "end_date"]
        print_table(found, [*columns, "renewal_date", "outstanding"], title="contracts")


@click.group("payments")
def payments_group() -> None:
    """Payments received on contracts (each recorded once, as a core purchase)."""


@payments_group.command("add")
@click.argument("contract_id", metavar="CONTRACT_ID", type=int)
@click.argument("amount")
@click.option("--reference", required=True, help="The payment's unique reference (idempotency).")
@click.option("--on", "received_on", help="Day received (default: today).")
@json_option
def add_payment(
    contract_id: int, amount: str, reference: str, received_on: str | None, as_json: bool
) -> None:
    """Record AMOUNT received on a contract."""
    payment = contracts.record_payment(
        get_crm(),
        contract_id,
        amount,
        reference=reference,
        received_on=received_on,
        actor=get_actor(),
    )
    if as_json:
        print_json(payment)
    else:
        print_record(payment, title=f"payment {payment['id']}")


@payments_group.command("list")
@click.option("--contract", "contract_id", type=int, help="Only this contract's payments.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's payments.")
@json_option
def list_payments(contract_id: int | None, customer_id: int | None, as_json: bool) -> None:
    """List payments on contracts of customers you may read."""
    found = contracts.list_payments(get_crm(), contract_id=contract_id, customer_id=customer_id)
    if as_json:
        print_json(found)
    else:
        columns = ["id", "contract_id", "customer_id", "received_on", "amount", "currency"]
        print_table(found, [*columns, "reference"], title="payments")


@click.command("receivables")
@click.option("--as-of", "as_of", help="Day of the ageing (default: today).")
@click.option("--owner", help="Only contracts of this salesperson.")
@json_option
def receivables_command(as_of: str | None, owner: str | None, as_json: bool) -> None:
    """Receivables ageing: outstanding per currency in current, 1-30, 31-60, 61-90, 90+ days."""
    report = receivables.ageing(get_crm(), as_of=as_of, owner=owner)
    if as_json:
        print_json(report)
        return
    rows = [{"currency": code, **figures} for code, figures in report["currencies"].items()]
    print_table(
        rows,
        ["currency", *report["buckets"], "total"],
        title=f"receivables ageing as of {report['as_of']}",
    )


@click.command("sweep")
@json_option
def sweep_command(as_json: bool) -> None:
    """Report overdue instalments and contracts due for renewal (each once) through the hooks."""
    found = receivables.sweep(get_crm(), actor=get_actor())
    if as_json:
        print_json(found)
        return
    print_table(
        found["overdue"],
        ["instalment_id", "contract_id", "customer_id", "due_date", "outstanding", "days_overdue"],
        title=f"overdue instalments ({len(found['overdue'])})",
    )
    print_table(
        found["renewals"],
        ["contract_id", "customer_id", "renewal_date", "value", "currency", "days_left"],
        title=f"contracts due for renewal ({len(found['renewals'])})",
    )


def register_collection(group: click.Group) -> None:
    """Add the collection commands to ``crm sales``."""
    for command in (contracts_group, payments_group, receivables_command, sweep_command):
        group.add_command(command)


__all__ = ["register_collection"]
