"""The hook the messaging plugin's templates publish (added through ``crm_add_hookspecs``).

Any plugin may give templates variables of its own by implementing
``messaging_template_variables`` with ``@hookimpl(optionalhook=True)``; its
answer is available in every template under the plugin's name, e.g.
``{{ loyalty.points }}`` for the plugin registered as ``loyalty``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import Customer, UnitOfWork


@hookspec
def messaging_template_variables(
    ctx: UnitOfWork,
    customer: Customer,
    purpose: str,
    ref_type: str | None,
    ref_id: str | None,
) -> Mapping[str, Any] | None:
    """Return the variables this plugin gives a message about ``customer``, or ``None``.

    Called once per rendered message (``crmcore_messaging.rendering.render_message``,
    from ``queue.enqueue`` and ``templates.preview``) inside the caller's unit of
    work (``ctx.connection`` reads inside its transaction; ``preview`` passes a
    read-only snapshot: do not write), and once when a template is saved, with a
    sample customer that is not stored (``id`` 0, every field filled,
    ``attributes`` empty) to check that the template renders: return the same
    keys then (placeholder values are fine). ``purpose`` is the message's
    (``marketing``, ``survey``, ``service``); ``ref_type``/``ref_id`` name the
    record that triggered it (e.g. ``campaigns.campaign`` and ``"12"``), ``None``
    when none did. The answer must be a mapping; templates see it as
    ``{{ <plugin name>.<key> }}`` (a plugin whose name is one of the reserved
    context names ``customer``, ``ref``, ``link``, ``unsubscribe_url``,
    ``locale`` is not reachable). An exception aborts the rendering: the
    enqueue (or the save) is refused and its unit of work rolls back.
    """
    return None


__all__ = ["messaging_template_variables"]
