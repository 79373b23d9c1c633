"""``crm messages ...`` on both backends: readable and ``--json``, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmcore import CRM, Config
from crmcore.cli import build_cli

from .conftest import SMTPServer


@pytest.fixture
def cli_config(db_url: str, tmp_path: Path, smtp_server: SMTPServer) -> str:
    """A crm.toml with an SMTP channel (the loopback server) and a folder channel; customer 1."""
    config = tmp_path / "crm.toml"
    config.write_text(
        f"""
[database]
url = "{db_url}"

[plugins.messaging]
default_channel = "email"
default_timezone = "UTC"

[plugins.messaging.channels.email]
type = "smtp"
consent = "marketing_email"
host = "127.0.0.1"
port = {smtp_server.port}
from = "crm@example.com"

[plugins.messaging.channels.files]
type = "folder"
path = "{tmp_path / "outbox"}"
address = "phone"
""",
        encoding="utf-8",
    )
    section = {
        "default_channel": "email",
        "channels": {"email": {"type": "in_app"}, "files": {"type": "in_app"}},
    }
    with CRM.open(
        Config(database_url=db_url, plugin_sections={"messaging": section}),
        upgrade=True,
        load_plugins=["messaging"],
    ) as crm:
        crm.customers.create(
            {
                "name": "Ann",
                "email": "ann@example.com",
                "phone": "+8613800138000",
                "consent": {"marketing_email": True, "data_processing": True},
            }
        )
    return str(config)


def run(config: str, *args: str) -> Result:
    """Invoke ``crm --plugins messaging --config CONFIG ARGS``."""
    argv = ["--plugins", "messaging", "--config", config, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def ok_json(config: str, *args: str) -> Any:
    """Run with ``--json``, assert success and parse the output."""
    result = run(config, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_queue_send_list_show_status(cli_config: str, smtp_server: SMTPServer) -> None:
    channels = ok_json(cli_config, "messages", "channels")
    assert [(c["name"], c["type"], c["consent"], c["address"]) for c in channels] == [
        ("email", "smtp", "marketing_email", "email"),
        ("files", "folder", "data_processing", "phone"),
    ]
    queued = ok_json(cli_config, "messages", "queue", "1", "--text", "Hello", "--subject", "Hi")
    assert queued["state"] == "queued"
    by_file = ok_json(cli_config, "messages", "queue", "1", "--text", "SMS", "--channel", "files")
    status = ok_json(cli_config, "messages", "status")
    assert status["by_state"]["queued"] == 2 and status["due_now"] == 2
    report = ok_json(cli_config, "messages", "send", "--worker", "cli")
    assert (report["worker"], report["sent"]) == ("cli", 2)
    assert smtp_server.sink.to() == ["ann@example.com"]
    (written,) = (Path(cli_config).parent / "outbox").iterdir()  # a phone address: JSON
    assert written.suffix == ".json"
    assert (json.loads(written.read_text())["to"], json.loads(written.read_text())["text"]) == (
        "+8613800138000",
        "SMS",
    )
    listed = ok_json(cli_config, "messages", "list", "--customer", "1", "--state", "sent")
    assert [m["id"] for m in listed] == [by_file["message_id"], queued["message_id"]]
    shown = ok_json(cli_config, "messages", "show", str(queued["message_id"]))
    assert (shown["subject"], shown["state"], shown["attempts"]) == ("Hi", "sent", 1)
    readable = run(cli_config, "messages", "list")
    assert readable.exit_code == 0 and "sent" in readable.output
    for command in (("status",), ("channels",), ("send",), ("show", "1")):
        assert run(cli_config, "messages", *command).exit_code == 0
    cancel = run(cli_config, "messages", "cancel", str(queued["message_id"]))
    assert cancel.exit_code == 1
    assert "only a queued or deferred message can be cancelled" in cancel.output
    assert "Traceback" not in cancel.output
    retry = run(cli_config, "messages", "retry", str(queued["message_id"]))
    assert retry.exit_code == 1 and "only a failed or bounced message" in retry.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--ref", "nocolon"), "expected TYPE:ID"),
        (("list", "--state", "lost"), "'lost' is not one of"),
        (("queue", "1", "--text", "x", "--channel", "fax"), "'fax' is not a configured channel"),
        (("queue", "99", "--text", "x"), "customer 99 does not exist"),
        (("show", "99"), "message 99 does not exist"),
        (("send", "--limit", "0"), "0 is not in the range"),
        (("cancel", "99"), "message 99 does not exist"),
    ],
)
def test_bad_arguments_are_one_line(cli_config: str, args: tuple[str, ...], message: str) -> None:
    result = run(cli_config, "messages", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_lazy_subcommands_list_their_own_short_help() -> None:
    """The templates part's commands are registered with their own first docstring line."""
    import importlib

    from crmcore_messaging.cli import messages

    from crmcore.cli.lazy import lazy_targets

    listed = lazy_targets(messages)
    assert {name for name, _, _ in listed} == {"templates", "preview", "unsubscribe", "click"}
    for name, target, short_help in listed:
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert command.get_short_help_str(1000) == short_help, name
