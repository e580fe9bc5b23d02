"""The whole parity suite, run durably: Postgres, a dispatcher and worker subprocesses.

Every case of ``tests.parity_cases`` is started with a real ``Client`` and must return
(or raise) exactly what plain Python does, or meet its explicit expectation.
"""

from __future__ import annotations

import asyncio
import copy
import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from rappelx.runtime._client import Client
from tests.integration._durable import workers
from tests.parity_cases import _counters
from tests.parity_cases._compare import capture, oracle_difference
from tests.unit.test_parity import LOADED, PARAMS, ImportFailure, describe

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

CASE_TIMEOUT = 30


@pytest.fixture(scope="module")
def counter_dir() -> Iterator[str]:
    # Attempts made in worker subprocesses are counted in files here.
    with tempfile.TemporaryDirectory(prefix="rappelx-parity-") as path:
        previous = os.environ.get(_counters.ENV_VAR)
        os.environ[_counters.ENV_VAR] = path
        yield path
        if previous is None:
            del os.environ[_counters.ENV_VAR]
        else:
            os.environ[_counters.ENV_VAR] = previous


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def durable(pg_module_dsn: str, counter_dir: str) -> AsyncIterator[Client]:
    # Modules that fail to import are reported by their ImportFailure parameter.
    modules = sorted({case.workflow.__module__ for case in LOADED})
    env = {_counters.ENV_VAR: counter_dir}
    async with workers(pg_module_dsn, modules, env=env), Client(pg_module_dsn) as client:
        yield client


@pytest.mark.parametrize("case", PARAMS)
async def test_durable_parity(case: object, durable: Client) -> None:
    if isinstance(case, ImportFailure):
        pytest.fail(f"tests.parity_cases.{case.module} failed to import: {case.error}")
    assert case in LOADED
    _counters.reset()
    run = durable.run(case.workflow, *copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    problem = await oracle_difference(case, await capture(asyncio.wait_for(run, CASE_TIMEOUT)))
    assert problem is None, f"{describe(case)}: {problem}"
