"""Hook specifications and the plugin manager.

Plugins implement hooks with :data:`hookimpl`::

    from crmcore.hooks import hookimpl

    @hookimpl
    def crm_interactions_recorded(ctx, interactions):
        ...
"""

import pluggy

PROJECT_NAME = "crmcore"

#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
#: Marker for hook specifications (core's, and those plugins add via ``crm_add_hookspecs``).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
