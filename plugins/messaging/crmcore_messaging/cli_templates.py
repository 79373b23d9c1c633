"""``crm messages templates|preview|unsubscribe|click``: parse, call the service, print.

Registered lazily by :mod:`crmcore_messaging.cli` (``crm messages``) under the
names ``templates``, ``preview``, ``unsubscribe`` and ``click`` (attributes
:data:`templates`, :data:`preview`, :data:`unsubscribe` and :data:`click_link`).
The service modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
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
from crmcore.cli.output import safe_text
from crmcore.cli.parsing import parse_pairs
from crmcore.errors import ValidationError

_COLUMNS = ["name", "locale", "version", "purpose", "channel", "subject", "created_at"]


def _read(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{option}: cannot read {path}: {exc}", field=option) from None


def _summary(template: Any) -> dict[str, Any]:
    data = template.to_dict()
    return {k: data[k] for k in ("id", *_COLUMNS, "created_by")}


@click.group()
def templates() -> None:
    """Message templates: add, list, show (Jinja2, per locale)."""


@templates.command("add")
@click.argument("name")
@click.option("--locale", required=True, help="One of [plugins.messaging] locales, e.g. zh-CN.")
@click.option("--subject", default=None, help="Subject template (one line).")
@click.option("--text-file", required=True, help="File holding the text body template.")
@click.option("--html-file", default=None, help="File holding the HTML body template.")
@click.option(
    "--purpose", default="marketing", show_default=True, help="marketing, survey, service."
)
@click.option("--channel", default=None, help="Only for this channel (default: any).")
@click.option("--sample", "samples", multiple=True, help="A ref variable to check with: KEY=VALUE.")
@json_option
def add_command(
    name: str,
    locale: str,
    subject: str | None,
    text_file: str,
    html_file: str | None,
    purpose: str,
    channel: str | None,
    samples: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check and save a template; saving an existing name and locale makes a new version."""
    from crmcore_messaging import templates as service

    saved = service.save_template(
        get_crm(),
        name,
        locale=locale,
        text=_read(text_file, "--text-file") or "",
        subject=subject,
        html=_read(html_file, "--html-file"),
        purpose=purpose,
        channel=channel,
        sample=parse_pairs(samples, "--sample"),
        actor=get_actor(),
    )
    if as_json:
        print_json(saved.to_dict())
    else:
        print_record(_summary(saved), title=f"template {name} saved")


@templates.command("list")
@click.option("--name", default=None, help="Only this template.")
@click.option("--locale", default=None, help="Only this locale.")
@click.option("--all-versions", is_flag=True, help="Every version, not only the current ones.")
@json_option
def list_command(name: str | None, locale: str | None, all_versions: bool, as_json: bool) -> None:
    """List the current version of every template and locale."""
    from crmcore_messaging import templates as service

    found = service.list_templates(get_crm(), name=name, locale=locale, all_versions=all_versions)
    if as_json:
        print_json([t.to_dict() for t in found])
    else:
        print_table([_summary(t) for t in found], _COLUMNS, title="message templates")


@templates.command("show")
@click.argument("name")
@click.option("--locale", default=None, help="Default: default_locale, then en, then any.")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the current.")
@json_option
def show_command(name: str, locale: str | None, version: int | None, as_json: bool) -> None:
    """Show one template with its sources."""
    from crmcore_messaging import templates as service

    found = service.get_template(get_crm(), name, locale=locale, version=version)
    if as_json:
        print_json(found.to_dict())
    else:
        print_record(found.to_dict(), title=f"template {name} ({found.locale} v{found.version})")


@click.command("preview")
@click.argument("name")
@click.argument("customer_id", type=click.IntRange(1))
@click.option("--locale", default=None, help="Default: the customer's, then default_locale.")
@click.option("--channel", default=None, help="The channel it would be sent on.")
@click.option("--var", "variables", multiple=True, help="A ref variable: KEY=VALUE (JSON values).")
@json_option
def preview(
    name: str,
    customer_id: int,
    locale: str | None,
    channel: str | None,
    variables: tuple[str, ...],
    as_json: bool,
) -> None:
    """Render a template for a customer, without sending."""
    from crmcore_messaging import templates as service

    rendered = service.preview(
        get_crm(),
        name,
        customer_id,
        locale=locale,
        channel=channel,
        variables=parse_pairs(variables, "--var"),
    )
    if as_json:
        print_json(rendered.to_dict())
        return
    click.echo(f"template {safe_text(name)} v{rendered.template_version} ({rendered.locale})")
    if rendered.subject is not None:
        click.echo(f"subject: {safe_text(rendered.subject)}")
    click.echo("--- text ---")
    click.echo(safe_text(rendered.text))
    if rendered.html is not None:
        click.echo("--- html ---")
        click.echo(safe_text(rendered.html))


@click.command("unsubscribe")
@click.argument("signed")
@json_option
def unsubscribe(signed: str, as_json: bool) -> None:
    """Apply a signed unsubscribe token (turns the channel's consent off)."""
    from crmcore_messaging import tokens

    done = tokens.unsubscribe(get_crm(), signed)
    if as_json:
        print_json(done.to_dict())
        return
    state = "was already off" if done.already else "turned off"
    click.echo(
        f"customer {done.customer_id}: consent {done.consent_field} {state} "
        f"(channel {safe_text(done.channel)})"
    )


@click.command("click")
@click.argument("signed")
@json_option
def click_link(signed: str, as_json: bool) -> None:
    """Resolve a signed tracked link: record the click, print the destination."""
    from crmcore_messaging import tokens

    url = tokens.resolve_click(get_crm(), signed)
    if as_json:
        print_json({"url": url})
    else:
        click.echo(safe_text(url, newlines=False))


__all__ = ["click_link", "preview", "templates", "unsubscribe"]
