"""The ``crm`` script's entry point: answers ``--version`` before loading anything.

``crm --version`` only needs the version string, so it is printed without
importing the CLI, SQLAlchemy or any plugin; everything else goes to
:func:`crmcore.cli.main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``crm`` with ``argv`` (default: the process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from crmcore import __version__

        sys.stdout.write(f"crm, version {__version__}\n")
        return
    from crmcore.cli import main as run

    run(args)


if __name__ == "__main__":  # python -m crmcore.console
    main()
