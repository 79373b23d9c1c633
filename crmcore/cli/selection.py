"""Which plugins ``crm`` loads, read from the command line before click parses it.

Left-out plugins must add no commands, so ``--config``, ``--plugins`` and
``--no-plugin`` are looked for in ``argv`` before the command group is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from crmcore.config import default_config, load_config
from crmcore.hooks.manager import (
    CRMPluginManager,
    PluginSelection,
    make_plugin_manager,
    split_names,
)

#: Environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV = "CRM_CONFIG"
#: ``click.Context.meta`` key of the plugin selection of the running ``crm``.
SELECTION_KEY = "crmcore.plugin_selection"


def config_path_from_argv(argv: Sequence[str]) -> Path | None:
    """Find ``--config`` before click parses, so disabled plugins add no commands."""
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def plugin_selection(load: str | None, disabled: Sequence[str]) -> PluginSelection:
    """The plugins to load: the environment's choice narrowed by ``--plugins``/``--no-plugin``."""
    names = [n for value in disabled for n in split_names(value)]
    chosen = None if load is None else split_names(load)
    return PluginSelection.from_environment().narrowed(load=chosen, disabled=names)


def selection_from_argv(argv: Sequence[str]) -> PluginSelection:
    """Read ``--plugins``/``--no-plugin`` before click parses: left-out plugins add no commands."""
    load: str | None = None
    disabled: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        value = argv[index + 1] if index + 1 < len(argv) else None
        if arg == "--plugins" and value is not None:
            load = value
        elif arg.startswith("--plugins="):
            load = arg.split("=", 1)[1]
        elif arg == "--no-plugin" and value is not None:
            disabled.append(value)
        elif arg.startswith("--no-plugin="):
            disabled.append(arg.split("=", 1)[1])
    return plugin_selection(load, disabled)


def cli_plugin_manager(
    config_path: Path | None, selection: PluginSelection | None = None
) -> CRMPluginManager:
    """The plugins ``crm`` loads (a broken one recorded, not raised), without a database."""
    config = load_config(config_path) if config_path else default_config()
    return make_plugin_manager(
        discover=True, disabled=config.disabled_plugins, selection=selection, strict=False
    )
