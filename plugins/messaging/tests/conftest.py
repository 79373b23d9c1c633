"""Fixtures of the messaging plugin's tests: a CRM with the plugin, on SQLite and PostgreSQL.

Delivery tests use a real SMTP server on loopback (``aiosmtpd``, started per
test in a thread on a free port: :func:`smtp_server`) and a real HTTP gateway
(``pytest-httpserver``'s ``httpserver``): neither is a mock, the plugin talks
to them over TCP (:func:`open_dcrm`, :func:`dcrm`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import crmcore_messaging.plugin
import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from crmcore import CRM

#: A section with an email channel (folder type: nothing leaves the machine) and the in-app one.
SECTION: Mapping[str, Any] = {
    "base_url": "https://crm.example.com/crm",
    "channels": {
        "email": {"type": "folder", "consent": "marketing_email", "address": "email"},
        "in_app": {"type": "in_app"},
    },
    "default_channel": "email",
}


@pytest.fixture
def open_crm(crm_factory: Callable[..., CRM], tmp_path: Any) -> Callable[..., CRM]:
    """Open a CRM with the messaging plugin (and ``extra`` plugins) on the test's backend."""

    def factory(section: Mapping[str, Any] | None = None, extra: Sequence[object] = ()) -> CRM:
        given = dict(SECTION if section is None else section)
        channels = {n: dict(c) for n, c in given.get("channels", {}).items()}
        for channel in channels.values():
            if channel.get("type") == "folder":
                channel.setdefault("path", str(tmp_path / "outbox"))
        if channels:
            given["channels"] = channels
        return crm_factory(
            plugins=[crmcore_messaging.plugin, *extra],
            plugin_sections={"messaging": given},
        )

    return factory


@pytest.fixture
def mcrm(open_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the messaging plugin and the test settings."""
    return open_crm()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailSink:
    """An aiosmtpd handler keeping every message; some recipients refused or told to wait."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: set[str] = set()
        self.busy: set[str] = set()
        #: Recipients whose DATA answer comes only after ``delay`` seconds (a slow server).
        self.slow: set[str] = set()
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        """Refuse (550) or defer (451) the configured addresses; accept the others."""
        if address in self.refuse:
            return "550 5.1.1 no such user"
        if address in self.busy:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message (answering late for the ``slow`` recipients)."""
        if self.slow & set(envelope.rcpt_tos):
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        """The Message-ID of every message received, in arrival order."""
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]

    def to(self) -> list[str]:
        """The To header of every message received."""
        with self.lock:
            return [str(m["To"]) for m in self.messages]


class SMTPServer:
    """A running aiosmtpd server: ``host``, ``port`` and its :class:`MailSink`."""

    def __init__(self) -> None:
        self.sink = MailSink()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        """Start serving (again, after :meth:`stop`, on the same port)."""
        self.controller = Controller(self.sink, hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop serving (a no-op when stopped)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server on loopback for one test."""
    server = SMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def channels_section(
    smtp: SMTPServer, http: HTTPServer, folder: Path, **extra: Any
) -> dict[str, Any]:
    """A ``[plugins.messaging]`` section with email, sms, in_app and folder channels."""
    return {
        "default_channel": "email",
        "default_timezone": "UTC",
        "caps": [{"channel": "*", "max": 1000, "days": 7}],
        "retry": {"max_attempts": 3, "base_seconds": 60, "factor": 2},
        "channels": {
            "email": {
                "type": "smtp",
                "consent": "marketing_email",
                "host": smtp.host,
                "port": smtp.port,
                "from": "CRM <crm@example.com>",
                "timeout": 5,
            },
            "sms": {
                "type": "http",
                "consent": "marketing_sms",
                "url": http.url_for("/sms"),
                "headers": {"Authorization": "Bearer ${MESSAGING_TEST_TOKEN}"},
                "body": {
                    "to": "{to}",
                    "text": "{text}",
                    "ref": "{message_id}",
                    "stop": {"url": "{unsubscribe_url}", "n": 1},
                },
                "timeout": 5,
                "id_field": "id",
            },
            "inbox": {"type": "in_app", "consent": "data_processing"},
            "files": {"type": "folder", "consent": "marketing_email", "path": str(folder)},
        },
        "staff": {"alice": {"email": "alice@example.com"}},
        **extra,
    }


@pytest.fixture
def open_dcrm(
    crm_factory: Callable[..., CRM],
    smtp_server: SMTPServer,
    httpserver: HTTPServer,
    tmp_path: Path,
) -> Callable[..., CRM]:
    """Open a CRM with the delivery channels (:func:`channels_section`); keywords extend it."""

    def factory(extra: Sequence[object] = (), **section: Any) -> CRM:
        full = channels_section(smtp_server, httpserver, tmp_path / "outbox", **section)
        return crm_factory(
            plugins=[crmcore_messaging.plugin, *extra], plugin_sections={"messaging": full}
        )

    return factory


@pytest.fixture
def dcrm(open_dcrm: Callable[..., CRM]) -> CRM:
    """A CRM with the messaging plugin and the delivery test channels."""
    return open_dcrm()


CONSENT_ALL: Mapping[str, bool] = {
    "marketing_email": True,
    "marketing_sms": True,
    "surveys": True,
    "data_processing": True,
}


def add_customer(crm: CRM, name: str = "Ann", **fields: Any) -> int:
    """Create a customer with every consent given (unless ``consent=`` says otherwise)."""
    data = {
        "name": name,
        "email": f"{name.lower().replace(' ', '.')}@example.com",
        "consent": dict(CONSENT_ALL),
        **fields,
    }
    customer = crm.customers.create(data)
    assert customer.id is not None
    return customer.id


def stored_messages(crm: CRM) -> list[Any]:
    """Every row of ``messaging_messages``, by id (read outside any unit of work)."""
    from crmcore_messaging.tables import messages_table
    from sqlalchemy import select

    table = messages_table(crm.metadata)
    with crm.engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.id)).all())


def queue_text(crm: CRM, customer_id: int, **fields: Any) -> Any:
    """``queue.enqueue`` in a unit of work of its own; the text defaults to ``Hello``."""
    from crmcore_messaging import queue

    fields.setdefault("text", "Hello")
    with crm.unit_of_work() as uow:
        return queue.enqueue(uow, customer_id=customer_id, **fields)
