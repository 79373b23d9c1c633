"""Fixtures of the messaging plugin's tests: a CRM with the plugin, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crmcore_messaging.plugin
import pytest

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
