"""``crm segments``: the group of :mod:`.cli` with the commands of :mod:`.cli_predictive`.

The plugin registers it lazily (``crmcore_segmentation.commands:segments``), so
this module, and numpy and scipy with it, is imported only when ``crm
segments ...`` runs.
"""

from __future__ import annotations

from crmcore_segmentation.cli import segments_group
from crmcore_segmentation.cli_predictive import add_commands

add_commands(segments_group)

#: ``crm segments`` with every command.
segments = segments_group

__all__ = ["segments"]
