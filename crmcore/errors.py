"""The one exception hierarchy of crmcore.

Every error a caller can act on derives from :class:`CRMError`. Messages name
the field and the value that was wrong, so the CLI can print them as one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class CRMError(Exception):
    """Base class of every error crmcore raises on purpose."""


class ValidationError(CRMError):
    """Input was refused: a field is missing, malformed or out of range.

    ``field`` names the offending field (dotted for nested ones, e.g.
    ``attributes.vip_level``) and ``value`` holds what was given.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ValidationErrors(ValidationError):
    """Several validation problems found at once; ``errors`` holds each of them."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}{more}", field=first.field, value=first.value)


class NotFoundError(CRMError):
    """The thing asked for does not exist (a customer id, a plugin name ...)."""


class ConflictError(CRMError):
    """The write would break a uniqueness rule, such as a duplicate customer.

    ``existing_id`` is the id of the record the new one collides with, when known.
    """

    def __init__(self, message: str, *, existing_id: int | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class TransitionError(ValidationError):
    """A lifecycle move that the stage graph does not allow."""


class ConfigError(CRMError):
    """The configuration file or a plugin's configuration section is invalid."""


class PluginError(CRMError):
    """A plugin failed to load, declared something invalid, or raised in a hook.

    ``plugin`` and ``hook`` name the plugin and the hook, when known.
    """

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class PluginWarning(UserWarning):
    """Something about a plugin deserves attention but does not stop the CRM (a plugin gone)."""


class StorageError(CRMError):
    """The database could not be reached or is not initialised."""


class DeliveryError(CRMError):
    """A message broker or other destination could not be reached or refused a message."""


#: Called with (position in the input, the rejected input, why) when skipping invalid rows.
RejectHandler = Callable[[int, Any, CRMError], None]


def with_location(exc: CRMError, where: str) -> CRMError:
    """The same error with ``where`` (e.g. ``customers[3]``) in front of its message."""
    if isinstance(exc, ValidationErrors):
        return ValidationErrors([with_location(e, where) for e in exc.errors])  # type: ignore[misc]
    if isinstance(exc, ValidationError):
        return type(exc)(f"{where}: {exc}", field=exc.field, value=exc.value)
    if isinstance(exc, ConflictError):
        return ConflictError(f"{where}: {exc}", existing_id=exc.existing_id)
    return type(exc)(f"{where}: {exc}")
