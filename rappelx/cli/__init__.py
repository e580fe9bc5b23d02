"""The ``rappelx`` command line (typer); a thin layer over the public API."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``rappelx`` console script."""
    from rappelx.cli._app import app

    app()
