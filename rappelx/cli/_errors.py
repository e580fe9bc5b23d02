"""How the CLI reports a user's mistake: the message and its causes, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from rappelx.exceptions import RappelxError

__all__ = ["CliError", "NotAvailableYet", "cause_chain", "reporting_errors"]


class CliError(RappelxError):
    """A command cannot do what it was asked; the message says what to change."""


class NotAvailableYet(CliError):
    """The command needs a part of the runtime this version of rappelx lacks."""

    def __init__(self, command: str, needs: str) -> None:
        super().__init__(
            f"'rappelx {command}' is not available yet: it needs {needs}, which this "
            "version of rappelx does not provide"
        )
        self.command = command
        self.needs = needs


def cause_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` followed by its causes (``__cause__``, else unsuppressed ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return chain


def describe(exc: BaseException) -> str:
    """The error and every cause, one per line, as the CLI prints them."""
    first, *causes = cause_chain(exc)
    lines = [f"error: {_text(first, qualified=not isinstance(first, RappelxError))}"]
    lines += [f"  caused by: {_text(cause, qualified=True)}" for cause in causes]
    return "\n".join(lines)


def _text(exc: BaseException, *, qualified: bool) -> str:
    message = str(exc) or "(no message)"
    if not qualified:
        return message
    return f"{type(exc).__qualname__}: {message}"


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a :class:`RappelxError` raised inside into a message on stderr and exit 1
    (Ctrl-C: exit 130). Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except RappelxError as exc:
        print(describe(exc), file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
