"""The ``http`` channel: SMS and chat apps through an HTTP gateway (a generic JSON webhook).

A provider (an SMS gateway, WeChat's template-message API behind a relay ...)
is configuration, not code::

    [plugins.messaging.channels.sms]
    type = "http"
    consent = "marketing_sms"
    url = "https://sms.example.com/send"
    method = "POST"                                   # default
    headers = { Authorization = "Bearer ${SMS_TOKEN}" }
    body = { to = "{to}", text = "{text}", ref = "{message_id}" }
    timeout = 10                                      # seconds
    success = [200, 201, 202, 204]                    # default
    id_field = "data.id"                              # provider id in the JSON answer

``body`` is a JSON template: every string in it (at any depth) is rendered
with the placeholders ``{to}``, ``{text}``, ``{subject}``, ``{message_id}``,
``{token}``, ``{channel}``, ``{customer_id}`` and ``{unsubscribe_url}`` (the
message's one-click unsubscribe link; empty for staff); ``{{`` and ``}}`` are
literal braces; other values pass unchanged. Header values expand
``${ENV}`` references. Default body: ``{"to": "{to}", "text": "{text}"}``.

Failures: 429 and 5xx answers and failures to connect or to send the
request are temporary; other 4xx answers and statuses outside ``success``
are permanent; a request sent that got no answer (a time-out, a dropped
connection) is permanent with reason ``unknown_outcome``: the gateway may have
taken it, so it is never sent again.
Only the standard library is used (``urllib.request``).
"""

from __future__ import annotations

import http.client
import json
import string
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar

from crmcore_messaging.channels.base import (
    ChannelType,
    Outgoing,
    PermanentFailure,
    TemporaryFailure,
    expand_env,
)

#: The placeholders a body template may use.
PLACEHOLDERS = (
    "to",
    "text",
    "subject",
    "message_id",
    "token",
    "channel",
    "customer_id",
    "unsubscribe_url",
)
_FORMATTER = string.Formatter()


def check_template(value: Any, where: str) -> None:
    """ValueError naming ``where`` when a string of ``value`` uses an unknown placeholder."""
    if isinstance(value, str):
        for _, field, spec, conversion in _FORMATTER.parse(value):
            if field is None:
                continue
            if field not in PLACEHOLDERS or spec or conversion:
                raise ValueError(
                    f"{where}: {{{field}}} is not a placeholder (use {', '.join(PLACEHOLDERS)})"
                )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_template(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_template(item, f"{where}[{index}]")


def render_template(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with every string rendered from ``values`` (checked by :func:`check_template`)."""
    if isinstance(value, str):
        return _FORMATTER.vformat(value, (), values)
    if isinstance(value, Mapping):
        return {key: render_template(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [render_template(item, values) for item in value]
    return value


class HTTPChannel(ChannelType):
    """A JSON webhook per message (see the module docstring)."""

    type_name: ClassVar[str] = "http"
    default_address: ClassVar[str] = "phone"
    interaction_channel: ClassVar[str] = "sms"
    interaction_kind: ClassVar[str] = "chat"
    options: ClassVar[tuple[str, ...]] = (
        "url",
        "method",
        "headers",
        "body",
        "timeout",
        "success",
        "id_field",
    )
    required: ClassVar[tuple[str, ...]] = ("url",)

    def __init__(
        self, name: str, options: Mapping[str, Any], *, address: str | None = None
    ) -> None:
        super().__init__(name, options, address=address)
        self.url = str(options["url"])
        if not self.url.startswith(("http://", "https://")):
            raise self.option_error("url", f"{self.url!r} is not an http(s) URL")
        self.method = str(options.get("method", "POST")).upper()
        if self.method not in ("POST", "PUT", "PATCH"):
            raise self.option_error("method", f"{self.method!r} is not POST, PUT or PATCH")
        headers = options.get("headers", {})
        if not isinstance(headers, Mapping):
            raise self.option_error("headers", "must be a table of header names to values")
        self.headers = {str(k): str(v) for k, v in headers.items()}
        self.body = options.get("body", {"to": "{to}", "text": "{text}"})
        try:
            check_template(self.body, "body")
        except ValueError as exc:
            raise self.option_error("body", str(exc)) from None
        self.timeout = float(options.get("timeout", 10))
        success = options.get("success", [200, 201, 202, 204])
        if not isinstance(success, list) or not all(isinstance(s, int) for s in success):
            raise self.option_error("success", "must be a list of HTTP status codes")
        self.success = frozenset(success)
        self.id_field = options.get("id_field")

    def request_of(self, message: Outgoing) -> urllib.request.Request:
        """The HTTP request that sends ``message``."""
        values = {
            "to": message.recipient,
            "text": message.text,
            "subject": message.subject or "",
            "message_id": str(message.id),
            "token": message.token,
            "channel": message.channel,
            "customer_id": "" if message.customer_id is None else str(message.customer_id),
            "unsubscribe_url": message.unsubscribe_url or "",
        }
        data = json.dumps(render_template(self.body, values), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        headers.update({k: expand_env(v) for k, v in self.headers.items()})
        return urllib.request.Request(self.url, data=data, headers=headers, method=self.method)

    def send(self, message: Outgoing) -> str | None:
        """POST the rendered body; return the provider id found under ``id_field``."""
        request = self.request_of(message)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = int(response.status)
                answer = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = f"HTTP {status} {exc.reason}"
            if status == 429 or status >= 500:
                raise TemporaryFailure(detail, reason=f"http_{status}") from None
            if status not in self.success:
                raise PermanentFailure(detail, reason=f"http_{status}") from None
            answer = exc.read()
        except urllib.error.URLError as exc:  # connecting or sending the request failed
            raise TemporaryFailure(
                f"cannot reach {self.url}: {exc.reason}", reason="connect"
            ) from None
        except (OSError, http.client.HTTPException) as exc:  # sent, but no answer came
            raise PermanentFailure(
                f"no answer from {self.url} ({type(exc).__name__}: {exc}): it may have been "
                "delivered, so it is not sent again",
                reason="unknown_outcome",
            ) from None
        if status not in self.success:
            raise PermanentFailure(f"HTTP {status}: not a success status", reason=f"http_{status}")
        return self._provider_id(answer)

    def _provider_id(self, answer: bytes) -> str | None:
        if not self.id_field:
            return None
        try:
            found: Any = json.loads(answer)
            for part in str(self.id_field).split("."):
                found = found[part]
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        return None if found is None else str(found)[:200]


__all__ = ["PLACEHOLDERS", "HTTPChannel", "check_template", "render_template"]
