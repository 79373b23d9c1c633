"""The SMTP channel with STARTTLS and login, and with implicit TLS, against aiosmtpd on loopback.

The server's certificate is a self-signed one made for 127.0.0.1 by the test
(``cryptography``); the channel verifies it through its ``cafile`` option.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import crmcore_messaging.plugin
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from crmcore_messaging import delivery, queue
from crmcore_messaging.tables import messages_table
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from crmcore import CRM

from .conftest import MailSink, add_customer, free_port


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Accounts:
    """An aiosmtpd authenticator accepting one login, recording every attempt."""

    def __init__(self, login: str, password: str) -> None:
        self.login, self.password = login.encode(), password.encode()
        self.attempts: list[tuple[str, bool]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept the one login and password."""
        assert isinstance(auth_data, LoginPassword)
        ok = (auth_data.login, auth_data.password) == (self.login, self.password)
        self.attempts.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def tls_crm(
    crm_factory: Callable[..., CRM], certificate: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[CRM, MailSink, Accounts]]:
    """A CRM whose ``email`` channel uses STARTTLS and a login, and ``smtps`` implicit TLS."""
    sink, accounts = MailSink(), Accounts("crm", "s3cret")
    context = _server_context(certificate)
    starttls_port, smtps_port = free_port(), free_port()
    starttls = Controller(
        sink,
        hostname="127.0.0.1",
        port=starttls_port,
        tls_context=context,
        require_starttls=True,
        authenticator=accounts,
        auth_required=True,
    )
    smtps = Controller(sink, hostname="127.0.0.1", port=smtps_port, ssl_context=context)
    starttls.start()
    smtps.start()
    common = {"host": "127.0.0.1", "from": "crm@example.com", "cafile": str(certificate[0])}
    section = {
        "default_timezone": "UTC",
        "caps": [],
        "channels": {
            "email": {
                "type": "smtp",
                "consent": "marketing_email",
                "port": starttls_port,
                "starttls": True,
                "username": "crm",
                "password": "${MESSAGING_TEST_SMTP_PASSWORD}",
                **common,
            },
            "wrong": {
                "type": "smtp",
                "consent": "marketing_email",
                "port": starttls_port,
                "starttls": True,
                "username": "crm",
                "password": "wrong",
                **common,
            },
            "plain": {
                "type": "smtp",
                "consent": "marketing_email",
                "port": starttls_port,
                **common,
            },
            "smtps": {
                "type": "smtp",
                "consent": "marketing_email",
                "port": smtps_port,
                "ssl": True,
                **common,
            },
        },
    }
    crm = crm_factory(plugins=[crmcore_messaging.plugin], plugin_sections={"messaging": section})
    try:
        yield crm, sink, accounts
    finally:
        starttls.stop()
        smtps.stop()


def test_starttls_with_login_and_implicit_tls(
    tls_crm: tuple[CRM, MailSink, Accounts], monkeypatch: pytest.MonkeyPatch
) -> None:
    crm, sink, accounts = tls_crm
    monkeypatch.setenv("MESSAGING_TEST_SMTP_PASSWORD", "s3cret")
    ann = add_customer(crm, "Ann")
    with crm.unit_of_work() as uow:
        for channel in ("email", "smtps", "wrong", "plain"):
            queue.enqueue(uow, customer_id=ann, text=f"via {channel}", channel=channel)
    report = delivery.send_pending(crm)
    assert (report.sent, report.retried, report.failed) == (2, 1, 1)
    table = messages_table(crm.metadata)
    with crm.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    outcome = {r.channel: (r.state, r.reason) for r in rows}
    assert outcome == {
        "email": ("sent", None),
        "smtps": ("sent", None),
        "wrong": ("queued", "auth"),  # a login refused: retried (the password may be fixed)
        "plain": ("failed", "sender"),  # 530: STARTTLS required first (5xx: permanent)
    }
    assert sorted(m.get_payload().strip() for m in sink.messages) == ["via email", "via smtps"]
    assert accounts.attempts.count(("crm", True)) == 1  # the email channel logged in once
    assert ("crm", False) in accounts.attempts  # the wrong password was refused
