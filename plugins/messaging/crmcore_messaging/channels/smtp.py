"""The ``smtp`` channel: email through an SMTP server (plain, STARTTLS or SSL, with login).

Options: ``host`` (default ``localhost``), ``port`` (25; 465 with ``ssl``),
``starttls`` / ``ssl`` (booleans), ``username`` and ``password`` (``${ENV}``
references are expanded), ``from`` (required), ``timeout`` (seconds, 30),
``helo`` (the name announced), ``cafile`` (certificates to verify the
server's against instead of the system's). TLS always verifies the server's
certificate and name. One connection is kept for a batch.

Each message is an :class:`email.message.EmailMessage`: the text body, the
HTML body as an alternative when there is one, ``Message-ID:
<token@domain of from>``, and ``List-Unsubscribe`` / ``List-Unsubscribe-Post``
(RFC 8058 one-click) when the message has an unsubscribe URL.

Failures: a refused recipient with a 5xx code is :class:`Bounced`; other 5xx
replies are permanent; 4xx replies, refused connections, time-outs and
disconnections before the content is sent are temporary (authentication
failures too: a fixed password lets the retries through); a connection lost
while the content is sent is permanent with reason ``unknown_outcome`` (it
may have arrived: it is never sent again).
"""

from __future__ import annotations

import contextlib
import io
import smtplib
import ssl as ssl_module
from collections.abc import Mapping
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, ClassVar

from crmcore_messaging.channels.base import (
    Bounced,
    ChannelType,
    DeliveryError,
    Outgoing,
    PermanentFailure,
    TemporaryFailure,
    expand_env,
)


def _by_code(code: int, detail: str, reason: str) -> DeliveryError:
    if 400 <= code < 500:
        return TemporaryFailure(f"{code} {detail}", reason=reason)
    return PermanentFailure(f"{code} {detail}", reason=reason)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


#: Lines up to RFC 5322's limit, so that a long List-Unsubscribe URL stays one plain header.
EMAIL_POLICY = email_policy.default.clone(max_line_length=998)


def _flatten(email: EmailMessage, *, utf8: bool) -> bytes:
    """The email as SMTP sends it (CRLF line ends; UTF-8 headers for SMTPUTF8)."""
    with io.BytesIO() as buffer:
        policy = EMAIL_POLICY.clone(utf8=True) if utf8 else EMAIL_POLICY
        BytesGenerator(buffer, policy=policy).flatten(email, linesep="\r\n")
        return buffer.getvalue()


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    """The email of ``message`` from ``sender`` (headers as the module docstring says)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    email = EmailMessage(policy=EMAIL_POLICY)
    email["From"] = sender
    email["To"] = message.recipient
    if message.subject:
        email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = f"<{message.token}@{domain}>"
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class SMTPChannel(ChannelType):
    """Email over SMTP (see the module docstring)."""

    type_name: ClassVar[str] = "smtp"
    default_address: ClassVar[str] = "email"
    interaction_channel: ClassVar[str] = "email"
    interaction_kind: ClassVar[str] = "email"
    options: ClassVar[tuple[str, ...]] = (
        "host",
        "port",
        "starttls",
        "ssl",
        "username",
        "password",
        "from",
        "timeout",
        "helo",
        "cafile",
    )
    required: ClassVar[tuple[str, ...]] = ("from",)

    def __init__(
        self, name: str, options: Mapping[str, Any], *, address: str | None = None
    ) -> None:
        super().__init__(name, options, address=address)
        self.host = str(options.get("host", "localhost"))
        self.use_ssl = bool(options.get("ssl", False))
        self.starttls = bool(options.get("starttls", False))
        if self.use_ssl and self.starttls:
            raise self.option_error("ssl", "ssl and starttls exclude each other")
        port = options.get("port", 465 if self.use_ssl else 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise self.option_error("port", f"{port!r} is not a port number")
        self.port = port
        self.sender = str(options["from"])
        if "@" not in parseaddr(self.sender)[1]:
            raise self.option_error("from", f"{self.sender!r} is not an email address")
        self.username = options.get("username")
        self.password = options.get("password")
        self.timeout = float(options.get("timeout", 30))
        self.helo = options.get("helo")
        self.cafile = options.get("cafile")
        if self.cafile is not None and not Path(str(self.cafile)).is_file():
            raise self.option_error("cafile", f"{self.cafile!r} is not a file")
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.use_ssl:
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.helo,
                    timeout=self.timeout,
                    context=self._tls(),
                )
            else:
                connection = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.helo, timeout=self.timeout
                )
                if self.starttls:
                    connection.starttls(context=self._tls())
            if self.username:
                connection.login(
                    expand_env(str(self.username)), expand_env(str(self.password or ""))
                )
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(
                f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}", reason="auth"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise TemporaryFailure(
                f"{exc.smtp_code} {_text(exc.smtp_error)}", reason="connect"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(
                f"cannot connect to {self.host}:{self.port}: {exc}", reason="connect"
            ) from None
        return connection

    def _tls(self) -> ssl_module.SSLContext:
        """Certificates verified, against ``cafile`` when given, else the system's."""
        cafile = None if self.cafile is None else str(self.cafile)
        return ssl_module.create_default_context(cafile=cafile)

    def open(self) -> None:
        """Connections open on the first send of a batch."""

    def send(self, message: Outgoing) -> str | None:
        """Send one email; return its Message-ID.

        The envelope (MAIL FROM, RCPT TO, the DATA command) may fail in any
        way and be retried: the server has nothing yet. Once the content is
        being sent, a lost connection or a time-out leaves the outcome unknown
        (the server may have accepted it): that attempt is failed with reason
        ``unknown_outcome`` and never retried, so no email is sent twice.
        """
        sender = parseaddr(self.sender)[1]
        try:
            email = build_email(message, self.sender)
            international = not (sender + message.recipient).isascii()
            content = _flatten(email, utf8=international)
        except (ValueError, TypeError) as exc:
            raise PermanentFailure(f"cannot build the email: {exc}", reason="bad_message") from None
        if self._connection is None:
            self._connection = self._connect()
        self._envelope(self._connection, sender, message.recipient, international)
        try:
            code, reply = self._connection.data(content)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: no content was sent
            self._reset()
            raise _by_code(exc.smtp_code, _text(exc.smtp_error), "data") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise PermanentFailure(
                f"connection lost while the content was sent ({exc}): it may have arrived, "
                "so it is not sent again",
                reason="unknown_outcome",
            ) from None
        if code != 250:
            self._reset()
            raise _by_code(code, _text(reply), "data")
        return str(email["Message-ID"])

    def _envelope(
        self, connection: smtplib.SMTP, sender: str, recipient: str, international: bool
    ) -> None:
        """MAIL FROM and RCPT TO; every failure here is safe to retry or final."""
        try:
            connection.ehlo_or_helo_if_needed()
            options: tuple[str, ...] = ()
            if international:
                if not connection.has_extn("smtputf8"):
                    raise PermanentFailure(
                        "the server does not take non-ASCII addresses (no SMTPUTF8)",
                        reason="smtputf8",
                    )
                options = ("SMTPUTF8", "BODY=8BITMIME")
            code, reply = connection.mail(sender, options)
            if code != 250:
                self._reset()
                raise _by_code(code, _text(reply), "sender")
            code, reply = connection.rcpt(recipient)
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"connection lost: {exc}", reason="connection") from None
        if code not in (250, 251):
            self._reset()
            if 500 <= code < 600:
                raise Bounced(f"{code} {_text(reply)}")
            raise TemporaryFailure(f"{code} {_text(reply)}", reason="recipient")

    def _reset(self) -> None:
        """After a refused transaction: RSET, or drop the connection if that fails."""
        if self._connection is None:
            return
        try:
            self._connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        """QUIT and close the batch's connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


__all__ = ["EMAIL_POLICY", "SMTPChannel", "build_email"]
