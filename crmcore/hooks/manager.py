"""The pluggy plugin manager: discovery, enabling and disabling, per-plugin calls."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from crmcore.errors import CRMError, PluginError
from crmcore.hooks import PROJECT_NAME, specs

#: Entry-point group through which installed plugins register.
ENTRY_POINT_GROUP = "crmcore.plugins"


@attrs.frozen
class PluginInfo:
    """What ``crm plugins list`` shows about one registered plugin."""

    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]


def plugin_name_of(plugin: object) -> str:
    """The name a plugin passed in code registers under.

    A module's or class's ``crm_plugin_name`` attribute, else its ``__name__``,
    else its class name.
    """
    name = getattr(plugin, "crm_plugin_name", None) or getattr(plugin, "__name__", None)
    return str(name or type(plugin).__name__)


def make_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    discover: bool = True,
    disabled: Iterable[str] = (),
) -> pluggy.PluginManager:
    """Create the manager: core specs, then installed plugins, then plugins given in code.

    Names in ``disabled`` are blocked, whether discovered or given in code.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(specs)
    for name in disabled:
        pm.set_blocked(name)
    try:
        if discover:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for plugin in plugins:
            name = plugin_name_of(plugin)
            if pm.is_blocked(name):
                continue
            if pm.has_plugin(name):
                raise PluginError(f"plugin {name!r} is registered twice")
            pm.register(plugin, name=name)
        pm.hook.crm_add_hookspecs.call_historic(kwargs={"pm": pm})
        pm.check_pending()
    except CRMError:
        raise
    except Exception as exc:
        raise PluginError(f"loading plugins failed: {exc}") from exc
    return pm


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, version, distribution and implemented hooks of every registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        dist: Any = dists.get(id(plugin))
        version = dist.version if dist is not None else getattr(plugin, "__version__", None)
        hooks = tuple(sorted(h.name for h in (pm.get_hookcallers(plugin) or [])))
        infos.append(
            PluginInfo(
                name=name,
                version=str(version) if version is not None else None,
                distribution=dist.metadata["name"] if dist is not None else None,
                hooks=hooks,
            )
        )
    return infos


def disabled_plugin_modules(disabled: Iterable[str]) -> list[object]:
    """Load installed plugins that are disabled, without registering them.

    Only used to find their migration directories, so that revisions they
    applied while enabled remain known to alembic.
    """
    names = set(disabled)
    modules = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in names:
            try:
                modules.append(ep.load())
            except Exception as exc:
                raise PluginError(f"disabled plugin {ep.name!r} failed to load: {exc}") from exc
    return modules


def installed_plugin_names() -> list[str]:
    """Names of plugins registered through the entry-point group, enabled or not."""
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
