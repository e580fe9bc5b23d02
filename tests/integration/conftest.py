"""Fixtures shared by the store-level integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rappelx.runtime._pgstore import PgStore


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PgStore]:
    """A store on a fresh database of its own."""
    s = await PgStore.connect(pg_dsn)
    yield s
    await s.close()
