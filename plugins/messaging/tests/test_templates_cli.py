"""``crm messages templates/preview/unsubscribe/click`` on both backends: readable, JSON, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore_messaging import queue
from crmcore_messaging.tables import clicks_table, messages_table
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.cli import build_cli

LINK = re.compile(r"https://crm\.example\.com/crm/([cu])/(\S+)")


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    """A crm.toml with the database and an email channel (folder type); one customer (id 1)."""
    path = tmp_path / "crm.toml"
    outbox = tmp_path / "outbox"
    path.write_text(
        f"""
[database]
url = "{db_url}"

[plugins.messaging]
base_url = "https://crm.example.com/crm"
default_channel = "email"

[plugins.messaging.channels.email]
type = "folder"
consent = "marketing_email"
address = "email"
path = "{outbox}"
""",
        encoding="utf-8",
    )
    with CRM.open(path, upgrade=True, load_plugins=["messaging"]) as crm:
        crm.customers.create(
            {"name": "Ann", "email": "ann@example.com", "consent": {"marketing_email": True}}
        )
    (tmp_path / "text.txt").write_text(
        "Hi {{ customer.name }},\n{{ ref.offer | default('10%') }} off: "
        "{{ link('https://shop.example.com/sale') }}\nLeave: {{ unsubscribe_url }}\n",
        encoding="utf-8",
    )
    (tmp_path / "page.html").write_text("<p>{{ customer.name }}</p>", encoding="utf-8")
    (tmp_path / "bad.txt").write_text("Hi\n{{ customer.nmae }}", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    """Invoke ``crm --plugins messaging --config CONFIG messages ARGS``."""
    argv = ["--plugins", "messaging", "--config", str(config), "messages", *args]
    return CliRunner().invoke(build_cli(argv), argv)


def ok(config: Path, *args: str) -> Result:
    """Run, assert success."""
    result = run(config, *args)
    assert result.exit_code == 0, result.output
    return result


def ok_json(config: Path, *args: str) -> Any:
    """Run with ``--json``, assert success and parse the output."""
    return json.loads(ok(config, *args, "--json").stdout)


def refused(config: Path, *args: str) -> str:
    """Run, assert it failed with one clear line (no traceback); return the output."""
    result = run(config, *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return result.output


def test_templates_add_list_show_and_preview(config: Path) -> None:
    folder = config.parent
    add = ["templates", "add", "promo", "--locale", "en", "--subject", "Hi {{ customer.name }}"]
    first = ok_json(config, *add, "--text-file", str(folder / "text.txt"))
    assert (first["name"], first["version"], first["html"]) == ("promo", 1, None)
    second = ok(
        config,
        *add,
        "--text-file",
        str(folder / "text.txt"),
        "--html-file",
        str(folder / "page.html"),
    )
    assert "template promo saved" in second.output and "promo" in second.output
    error = refused(
        config, "templates", "add", "x", "--locale", "en", "--text-file", str(folder / "bad.txt")
    )
    assert "body_text: line 2: 'customer.nmae' is undefined" in error
    assert "locale: 'fr' is not one of" in refused(
        config, *add[:3], "--locale", "fr", "--text-file", str(folder / "text.txt")
    )
    assert "cannot read" in refused(config, *add, "--text-file", str(folder / "missing.txt"))

    listed = ok_json(config, "templates", "list")
    assert [(t["name"], t["version"]) for t in listed] == [("promo", 2)]
    assert len(ok_json(config, "templates", "list", "--all-versions")) == 2
    assert "promo" in ok(config, "templates", "list").output
    shown = ok_json(config, "templates", "show", "promo", "--locale", "en", "--version", "1")
    assert shown["version"] == 1 and shown["text"].startswith("Hi {{ customer.name }}")
    assert "has no version 9" in refused(
        config, "templates", "show", "promo", "--locale", "en", "--version", "9"
    )
    assert "no template named 'nope'" in refused(config, "templates", "show", "nope")

    rendered = ok_json(config, "preview", "promo", "1", "--var", 'offer="20%"')
    assert rendered["subject"] == "Hi Ann" and rendered["template_version"] == 2
    assert rendered["text"].startswith(
        "Hi Ann,\n20% off: https://crm.example.com/crm/c/preview?to="
    )
    assert rendered["html"] == "<p>Ann</p>"
    readable = ok(config, "preview", "promo", "1").output
    assert "--- text ---" in readable and "--- html ---" in readable and "10% off" in readable
    assert "expected key=value" in refused(config, "preview", "promo", "1", "--var", "oops")


def test_unsubscribe_and_click_commands(config: Path) -> None:
    ok(
        config,
        "templates",
        "add",
        "promo",
        "--locale",
        "en",
        "--text-file",
        str(config.parent / "text.txt"),
    )
    with CRM.open(config, load_plugins=["messaging"]) as crm:
        with crm.unit_of_work() as uow:
            queued = queue.enqueue(uow, customer_id=1, template="promo")
        assert queued.state == "queued"
        with crm.engine.connect() as connection:
            body = connection.execute(select(messages_table(crm.metadata).c.body_text)).scalar_one()
    links = {
        kind: f"https://crm.example.com/crm/{kind}/{signed}" for kind, signed in LINK.findall(body)
    }

    assert ok(config, "click", links["c"]).output.strip() == "https://shop.example.com/sale"
    assert ok_json(config, "click", links["c"]) == {"url": "https://shop.example.com/sale"}
    other = "A" if links["c"][-12] != "A" else "B"  # a changed signature character
    assert "not a valid link" in refused(
        config, "click", links["c"][:-12] + other + links["c"][-11:]
    )

    done = ok(config, "unsubscribe", links["u"]).output
    assert "customer 1: consent marketing_email turned off (channel email)" in done
    again = ok_json(config, "unsubscribe", links["u"])
    assert again["already"] is True and again["consent_field"] == "marketing_email"
    assert "was already off" in ok(config, "unsubscribe", links["u"]).output
    assert "not a valid link" in refused(config, "unsubscribe", links["c"])
    with CRM.open(config, load_plugins=["messaging"]) as crm:
        assert crm.customers.get(1).consent.marketing_email is False
        with crm.engine.connect() as connection:
            clicks = connection.execute(
                select(func.count()).select_from(clicks_table(crm.metadata))
            )
            assert clicks.scalar_one() == 2
