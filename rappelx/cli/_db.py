"""Database access for the CLI: which database, and what to say when it is unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rappelx.cli._errors import CliError

__all__ = ["DatabaseUnavailable", "database_errors", "resolve_dsn"]


class DatabaseUnavailable(CliError):
    """The database could not be reached or refused the command (cause chained)."""


def resolve_dsn(dsn: str | None) -> str:
    """``dsn`` if given, else ``RAPPELX_DATABASE_URL``, else the embedded Postgres
    (booted on first use)."""
    if dsn:
        return dsn
    from rappelx.runtime._client import database_url

    return database_url()


@contextmanager
def database_errors() -> Iterator[None]:
    """Report connection failures and Postgres errors as :class:`DatabaseUnavailable`."""
    import asyncpg

    try:
        yield
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            "the database is unreachable or refused the command; check --database-url / "
            "RAPPELX_DATABASE_URL (unset, rappelx uses its embedded local Postgres)"
        ) from exc
