"""``python -m rappelx``: the same command line as the ``rappelx`` script."""

from __future__ import annotations

from rappelx.cli import main

if __name__ == "__main__":
    main()
