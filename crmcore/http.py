"""The HTTP status an embedding web application answers for each crmcore error.

>>> from crmcore.http import http_status
>>> http_status(NotFoundError("customer 9 does not exist"))
404

The mapping (first match wins, so subclasses come first):

==========================  ======  ====================================================
error                       status  why
==========================  ======  ====================================================
``AccessDeniedError``       403     the principal may not do this
``NotFoundError``           404     no such customer, interaction, plugin ...
``ConflictError``           409     a duplicate (the message never names what the
                                    principal may not see)
``TransitionError``         409     the lifecycle move conflicts with the current stage
``ValidationError``         422     bad input; ``field`` and ``value`` name it
``DeliveryError``           502     a broker or other destination refused or is down
``StorageError``            503     the database is unreachable or not migrated
``ConfigError``             500     the deployment is misconfigured
``PluginError``             500     a plugin failed
any other ``CRMError``      500
==========================  ======  ====================================================
"""

from __future__ import annotations

from crmcore.access import AccessDeniedError
from crmcore.errors import (
    ConfigError,
    ConflictError,
    CRMError,
    DeliveryError,
    NotFoundError,
    PluginError,
    StorageError,
    TransitionError,
    ValidationError,
)

#: (error class, HTTP status), most specific first.
HTTP_STATUS: tuple[tuple[type[CRMError], int], ...] = (
    (AccessDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (TransitionError, 409),
    (ValidationError, 422),
    (DeliveryError, 502),
    (StorageError, 503),
    (ConfigError, 500),
    (PluginError, 500),
)


def http_status(error: CRMError) -> int:
    """The HTTP status for ``error`` (500 for a CRMError not in :data:`HTTP_STATUS`)."""
    for kind, status in HTTP_STATUS:
        if isinstance(error, kind):
            return status
    return 500


__all__ = ["HTTP_STATUS", "http_status"]
