"""``crm accounts ...``: contacts, hierarchy, links, account team, relationship scores, the view."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.tree import Tree

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.output import safe_text
from crmcore.cli.parsing import parse_pairs, parse_timestamp
from crmcore.errors import ValidationError
from crmcore.model.accounts import DIMENSIONS, AccountNode
from crmcore.model.serialization import to_dict

CONTACT_COLUMNS = ["person_id", "organisation_id", "job_title", "department", "role", "primary"]
CONTACT_COLUMNS += ["start_date", "end_date"]
_TEXT_FIELDS = {"job_title", "department", "role", "start_date", "end_date"}


@click.group()
def accounts() -> None:
    """Accounts: contacts of organisations, hierarchy, links, account team, scores."""


def _contact_rows(items: Sequence[Any], as_json: bool, title: str) -> None:
    rows = [to_dict(c) for c in items]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, CONTACT_COLUMNS, title=title)


def _done(as_json: bool, data: Any, line: str) -> None:
    if as_json:
        print_json(to_dict(data))
    else:
        get_console().print(safe_text(line))


# --- contacts ------------------------------------------------------------------


@accounts.command("add-contact")
@click.argument("organisation_id", type=int)
@click.argument("person_id", type=int)
@click.option("--title", "job_title", help="Job title.")
@click.option("--department")
@click.option("--role", help="Decision-chain role (one of [accounts] contact_roles).")
@click.option("--primary", is_flag=True, help="Make them the primary contact.")
@click.option("--start", "start_date", metavar="DATE", help="First day in the role (YYYY-MM-DD).")
@click.option("--end", "end_date", metavar="DATE", help="First day no longer in the role.")
@json_option
def add_contact(
    organisation_id: int, person_id: int, as_json: bool, primary: bool, **fields: Any
) -> None:
    """Make person PERSON_ID a contact of organisation ORGANISATION_ID."""
    contact = get_crm().accounts.add_contact(
        organisation_id, person_id, primary=primary, actor=get_actor(), **fields
    )
    _done(
        as_json,
        contact,
        f"Customer {person_id} is now a contact of organisation {organisation_id}"
        + (" (primary)" if contact.primary else ""),
    )


@accounts.command("update-contact")
@click.argument("organisation_id", type=int)
@click.argument("person_id", type=int)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="job_title, department, role, primary (true/false), start_date, end_date; "
    "FIELD=null clears it.",
)
@json_option
def update_contact(
    organisation_id: int, person_id: int, sets: tuple[str, ...], as_json: bool
) -> None:
    """Change fields of a contact."""
    changes = parse_pairs(sets, "--set")
    for key, value in list(changes.items()):
        if key in _TEXT_FIELDS and value is not None and not isinstance(value, str):
            changes[key] = json.dumps(value)  # "--set job_title=42" is text
    contact = get_crm().accounts.update_contact(
        organisation_id, person_id, changes, actor=get_actor()
    )
    _done(as_json, contact, f"Updated contact {person_id} of organisation {organisation_id}")


@accounts.command("end-contact")
@click.argument("organisation_id", type=int)
@click.argument("person_id", type=int)
@click.option("--on", metavar="DATE", help="The first day no longer in the role (default today).")
@json_option
def end_contact(organisation_id: int, person_id: int, on: str | None, as_json: bool) -> None:
    """End a contact (kept in the history)."""
    contact = get_crm().accounts.end_contact(organisation_id, person_id, on=on, actor=get_actor())
    assert contact.end_date is not None
    _done(
        as_json,
        contact,
        f"Contact {person_id} of organisation {organisation_id} ends on "
        f"{contact.end_date.isoformat()}",
    )


@accounts.command("remove-contact")
@click.argument("organisation_id", type=int)
@click.argument("person_id", type=int)
def remove_contact(organisation_id: int, person_id: int) -> None:
    """Delete a contact (no history kept; end-contact keeps it)."""
    get_crm().accounts.remove_contact(organisation_id, person_id, actor=get_actor())
    get_console().print(f"Removed contact {person_id} of organisation {organisation_id}")


@accounts.command("contacts")
@click.argument("organisation_id", type=int)
@click.option("--all", "include_ended", is_flag=True, help="Ended contacts too.")
@json_option
def list_contacts(organisation_id: int, include_ended: bool, as_json: bool) -> None:
    """The contacts of an organisation, primary first."""
    found = get_crm().accounts.contacts(organisation_id, include_ended=include_ended)
    _contact_rows(found, as_json, f"Contacts of organisation {organisation_id}")


@accounts.command("organisations")
@click.argument("person_id", type=int)
@click.option("--all", "include_ended", is_flag=True, help="Ended contacts too.")
@json_option
def list_organisations(person_id: int, include_ended: bool, as_json: bool) -> None:
    """The organisations a person is a contact of."""
    found = get_crm().accounts.organisations(person_id, include_ended=include_ended)
    _contact_rows(found, as_json, f"Organisations of customer {person_id}")


# --- hierarchy -----------------------------------------------------------------


@accounts.command("set-parent")
@click.argument("organisation_id", type=int)
@click.argument("parent_id", type=int)
def set_parent(organisation_id: int, parent_id: int) -> None:
    """Make PARENT_ID the parent organisation of ORGANISATION_ID."""
    get_crm().accounts.set_parent(organisation_id, parent_id, actor=get_actor())
    get_console().print(f"Organisation {organisation_id} is a subsidiary of {parent_id}")


@accounts.command("remove-parent")
@click.argument("organisation_id", type=int)
def remove_parent(organisation_id: int) -> None:
    """Make an organisation the top of its own group."""
    previous = get_crm().accounts.set_parent(organisation_id, None, actor=get_actor())
    if previous is None:
        get_console().print(f"Organisation {organisation_id} had no parent")
    else:
        get_console().print(f"Organisation {organisation_id} is no longer under {previous}")


def _tree(node: AccountNode, branch: Tree | None = None) -> Tree:
    label = f"{safe_text(node.name)} [dim]({node.id})[/dim]"
    here = Tree(label) if branch is None else branch.add(label)
    for child in node.children:
        _tree(child, here)
    return here


@accounts.command("subsidiaries")
@click.argument("organisation_id", type=int)
@json_option
def subsidiaries(organisation_id: int, as_json: bool) -> None:
    """The organisations below ORGANISATION_ID, as a tree."""
    crm = get_crm()
    children = crm.accounts.subsidiaries(organisation_id)
    if as_json:
        print_json([to_dict(c) for c in children])
        return
    name = crm.customers.get(organisation_id).name
    get_console().print(_tree(AccountNode(organisation_id, name, tuple(children))))


@accounts.command("tree")
@click.argument("organisation_id", type=int)
@json_option
def group_tree(organisation_id: int, as_json: bool) -> None:
    """The whole group ORGANISATION_ID belongs to, from its top."""
    top = get_crm().accounts.group_tree(organisation_id)
    if as_json:
        print_json(to_dict(top))
    else:
        get_console().print(_tree(top))


# --- links -----------------------------------------------------------------------


@accounts.command("link")
@click.argument("from_id", type=int)
@click.argument("link_type", metavar="TYPE")
@click.argument("to_id", type=int)
@json_option
def link(from_id: int, link_type: str, to_id: int, as_json: bool) -> None:
    """Link two customers: FROM_ID is TYPE TO_ID (`crm accounts link 5 referred_by 9`)."""
    made = get_crm().accounts.link(from_id, to_id, link_type, actor=get_actor())
    _done(as_json, made, f"Customer {from_id} {link_type} customer {to_id}")


@accounts.command("unlink")
@click.argument("from_id", type=int)
@click.argument("link_type", metavar="TYPE")
@click.argument("to_id", type=int)
def unlink(from_id: int, link_type: str, to_id: int) -> None:
    """Remove the link FROM_ID TYPE TO_ID."""
    get_crm().accounts.unlink(from_id, to_id, link_type, actor=get_actor())
    get_console().print(safe_text(f"Removed: customer {from_id} {link_type} customer {to_id}"))


@accounts.command("links")
@click.argument("customer_id", type=int)
@click.option("--type", "link_type", help="Only links of this type.")
@json_option
def links(customer_id: int, link_type: str | None, as_json: bool) -> None:
    """Every link from or to a customer."""
    found = [to_dict(x) for x in get_crm().accounts.links(customer_id, type=link_type)]
    if as_json:
        print_json(found)
    else:
        print_table(
            found, ["from_id", "type", "to_id", "created_at"], title=f"Links of {customer_id}"
        )


# --- team ------------------------------------------------------------------------


@accounts.command("add-member")
@click.argument("account_id", type=int)
@click.argument("user")
@click.argument("role")
@json_option
def add_member(account_id: int, user: str, role: str, as_json: bool) -> None:
    """Put USER on the account team in ROLE (one of [accounts] team_roles)."""
    member = get_crm().accounts.add_member(account_id, user, role, actor=get_actor())
    _done(as_json, member, f"{user} is {member.role} on account {account_id}")


@accounts.command("remove-member")
@click.argument("account_id", type=int)
@click.argument("user")
def remove_member(account_id: int, user: str) -> None:
    """Take USER off the account team."""
    get_crm().accounts.remove_member(account_id, user, actor=get_actor())
    get_console().print(safe_text(f"{user} is off the team of account {account_id}"))


@accounts.command("team")
@click.argument("account_id", type=int)
@json_option
def team(account_id: int, as_json: bool) -> None:
    """The account team (the owner is shown by `crm accounts show`)."""
    members = [to_dict(m) for m in get_crm().accounts.team(account_id)]
    if as_json:
        print_json(members)
    else:
        print_table(members, ["user", "role", "added_at"], title=f"Team of account {account_id}")


# --- relationship scores ------------------------------------------------------------


def _scores(pairs: Sequence[str]) -> dict[str, float]:
    if not pairs:
        raise ValidationError(
            f"SCORES: give at least one DIMENSION=SCORE ({', '.join(DIMENSIONS)})", field="scores"
        )
    values: dict[str, float] = {}
    for name, value in parse_pairs(pairs, "DIMENSION=SCORE").items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(
                f"{name}: expected a number from 0 to 100, got {value!r}", field=name
            )
        values[name] = value
    return values


@accounts.command("score")
@click.argument("account_id", type=int)
@click.argument("scores", nargs=-1, metavar="DIMENSION=SCORE...")
@click.option("--contact", "contact_id", type=int, help="Measured for this decision maker.")
@click.option("--source", default="manual", show_default=True, help="Where the scores came from.")
@click.option("--at", "measured_at", metavar="TIMESTAMP", help="When measured (default now).")
@json_option
def score(
    account_id: int,
    scores: tuple[str, ...],
    contact_id: int | None,
    source: str,
    measured_at: str | None,
    as_json: bool,
) -> None:
    """Record relationship scores (0-100) of an account: `score 7 information_flow=65 ...`."""
    stored = get_crm().accounts.record_scores(
        account_id,
        _scores(scores),
        contact_id=contact_id,
        source=source,
        measured_at=None if measured_at is None else parse_timestamp(measured_at, "--at"),
        actor=get_actor(),
    )
    if as_json:
        print_json([to_dict(s) for s in stored])
    else:
        get_console().print(f"Recorded {len(stored)} score(s) for account {account_id}")


@accounts.command("scores")
@click.argument("account_id", type=int)
@click.option("--contact", "contact_id", type=int, help="Only this decision maker's scores.")
@click.option("--dimension", type=click.Choice(DIMENSIONS))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
def score_history(
    account_id: int, contact_id: int | None, dimension: str | None, limit: int, as_json: bool
) -> None:
    """The history of an account's relationship scores, newest first."""
    found = get_crm().accounts.scores(
        account_id, contact_id=contact_id, dimension=dimension, limit=limit
    )
    rows = [to_dict(s) for s in found]
    if as_json:
        print_json(rows)
    else:
        columns = ["measured_at", "dimension", "score", "contact_id", "source", "actor"]
        print_table(rows, columns, title=f"Relationship scores of account {account_id}")


# --- the view --------------------------------------------------------------------------


def _money(amounts: Mapping[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in amounts.items())


def _trend_rows(trends: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**t, "change": None if t["change"] is None else f"{t['change']:+g}"}
        for t in trends.values()
    ]


@accounts.command("show")
@click.argument("organisation_id", type=int)
@json_option
def show(organisation_id: int, as_json: bool) -> None:
    """The 360° view of an organisation: contacts, team, group, roll-ups, scores, plugins."""
    view = get_crm().accounts.view(organisation_id)
    if as_json:
        print_json(view)
        return
    account = view["account"]
    parent = view["parent"]
    print_record(
        {
            "name": account["name"],
            "owner": account["owner"],
            "stage": account["stage"],
            "parent": None if parent is None else f"{parent['name']} ({parent['id']})",
        },
        title=f"Account {organisation_id}",
    )
    print_table(
        view["contacts"],
        ["person_id", "name", "job_title", "role", "primary", "email", "phone"],
        title="Contacts",
    )
    print_table(view["team"]["members"], ["user", "role", "added_at"], title="Team")
    rollup = view["rollup"]
    print_table(
        [{**m, "revenue": _money(m["revenue"])} for m in rollup["by_member"]],
        ["customer_id", "name", "relation", "interaction_count", "revenue", "last_interaction"],
        title=(
            f"Roll-up: {rollup['interaction_count']} interactions, revenue "
            f"{_money(rollup['revenue']) or 0}, last {rollup['last_interaction'] or 'never'}"
        ),
    )
    if view["subsidiaries"]:
        get_console().print(
            _tree(
                AccountNode(
                    organisation_id,
                    account["name"],
                    tuple(_node(child) for child in view["subsidiaries"]),
                )
            )
        )
    columns = ["dimension", "score", "previous", "change", "measured_at", "source"]
    print_table(_trend_rows(view["scores"]["account"]), columns, title="Relationship scores")
    for contact_id, trends in view["scores"]["decision_makers"].items():
        print_table(_trend_rows(trends), columns, title=f"Scores of decision maker {contact_id}")
    if view["signals"]:
        print_table(view["signals"], ["reason", "weight"], title="Churn signals")
    for plugin, section in view["plugins"].items():
        print_record(section, title=plugin)


def _node(data: Mapping[str, Any]) -> AccountNode:
    return AccountNode(data["id"], data["name"], tuple(_node(c) for c in data["children"]))


__all__ = ["accounts"]
