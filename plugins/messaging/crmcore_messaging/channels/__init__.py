"""Channel types: the base protocol (:mod:`.base`), ``smtp``, ``http``, ``in_app``, ``folder``.

:mod:`.registry` finds every type (these and those other plugins add with
``messaging_channel_types``) and builds the configured channels.
"""
