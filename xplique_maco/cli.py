"""The `xplique-maco` console command (`demo`, `render`, `page`): `python -m xplique_maco.cli --help`."""

from __future__ import annotations

import sys

from ._apps.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
