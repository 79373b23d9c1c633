"""Every channel type (built in and from ``messaging_channel_types``) and the built channels.

The channels of a CRM are built once, at start-up (:func:`check_channels`,
called by ``crm_startup``), so a bad option is a ConfigError before anything
is sent; :func:`channel_of` returns the built instance (what a channel is:
its address kind, interaction channel and kind), :func:`new_channel` a fresh
one for a batch to send with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from crmcore.errors import ConfigError
from crmcore_messaging.channels.base import ChannelType
from crmcore_messaging.channels.folder import FolderChannel
from crmcore_messaging.channels.http import HTTPChannel
from crmcore_messaging.channels.in_app import InAppChannel
from crmcore_messaging.channels.smtp import SMTPChannel

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_messaging.settings import Settings

#: The types this plugin ships.
BUILTIN_TYPES: Mapping[str, type[ChannelType]] = {
    "smtp": SMTPChannel,
    "http": HTTPChannel,
    "in_app": InAppChannel,
    "folder": FolderChannel,
}

_built: WeakKeyDictionary[CRM, dict[str, ChannelType]] = WeakKeyDictionary()


def channel_types(crm: CRM) -> dict[str, type[ChannelType]]:
    """The built-in types and every type other plugins add (theirs win on a name clash)."""
    found: dict[str, type[ChannelType]] = dict(BUILTIN_TYPES)
    for answer in crm.call_hook("messaging_channel_types"):
        for name, kind in (answer or {}).items():
            if not (isinstance(kind, type) and issubclass(kind, ChannelType)):
                raise ConfigError(
                    f"messaging_channel_types: {name!r} is {kind!r}, not a ChannelType subclass"
                )
            found[str(name)] = kind
    return found


def check_channels(crm: CRM, settings: Settings) -> dict[str, ChannelType]:
    """Build every configured channel (ConfigError for an unknown type or a bad option)."""
    types = channel_types(crm)
    built: dict[str, ChannelType] = {}
    for name, config in settings.channels.items():
        kind = types.get(config.type)
        if kind is None:
            raise ConfigError(
                f"config: plugins.messaging.channels.{name}.type: {config.type!r} is not a "
                f"channel type (known: {', '.join(sorted(types))})"
            )
        built[name] = kind(name, config.options, address=config.address)
    _built[crm] = built
    return built


def new_channel(crm: CRM, name: str) -> ChannelType:
    """A new instance of the channel called ``name``, for one batch of one sender.

    A channel may keep a connection between ``open()`` and ``close()``, so two
    senders (threads of one process) never share an instance while sending.
    KeyError when ``name`` is not configured.
    """
    built = channel_of(crm, name)
    from crmcore_messaging.settings import settings_of

    config = settings_of(crm).channels[name]
    return type(built)(name, config.options, address=config.address)


def channel_of(crm: CRM, name: str) -> ChannelType:
    """The built channel called ``name`` (KeyError when it is not configured)."""
    built = _built.get(crm)
    if built is None:
        from crmcore_messaging.settings import settings_of

        built = check_channels(crm, settings_of(crm))
    return built[name]


__all__ = ["BUILTIN_TYPES", "channel_of", "channel_types", "check_channels", "new_channel"]
