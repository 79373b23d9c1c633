"""The data model: entities, the value types hooks exchange, and the checks on stored values.

Nothing here touches the database or the plugin manager; every other part of
core depends on it, and it depends on nothing but :mod:`crmcore.errors`.
"""
