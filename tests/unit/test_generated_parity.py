"""The parity oracle on random programs: hypothesis writes workflow modules, each is
imported from a temp directory, run by rappelx and as plain Python, and compared.

A failure message carries the whole generated source (and where it was written), so it
can be reproduced by importing that file and calling ``run_inline``/``run_plain``.
``PARITY_EXAMPLES=3000`` runs a longer hunt than the default 300 programs.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from rappelx import testing
from tests.parity_cases._compare import capture, outcome_difference
from tests.parity_cases.generator import GeneratedProgram, programs


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("generated_workflows")
    sys.path.insert(0, str(directory))
    yield directory
    sys.path.remove(str(directory))


def numbered(source: str) -> str:
    return "\n".join(f"{n:4d}  {line}" for n, line in enumerate(source.splitlines(), 1))


def load(program: GeneratedProgram, directory: Path) -> type:
    """Write the program to ``directory`` and import it (once per distinct program)."""
    if program.module_name not in sys.modules:
        (directory / f"{program.module_name}.py").write_text(program.source)
        importlib.invalidate_caches()
    module = importlib.import_module(program.module_name)
    workflow_class: type = getattr(module, program.class_name)
    return workflow_class


async def difference(workflow_class: type, x: int) -> str | None:
    plain = await capture(testing.run_plain(workflow_class, x))
    actual = await capture(testing.run_inline(workflow_class, x))
    return outcome_difference(plain, actual)


@settings(
    max_examples=int(os.environ.get("PARITY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs())
def test_generated_program_parity(gen_dir: Path, program: GeneratedProgram) -> None:
    where = gen_dir / f"{program.module_name}.py"
    try:
        workflow_class = load(program, gen_dir)
    except Exception as exc:
        pytest.fail(
            f"generated program did not import ({type(exc).__name__}: {exc}); "
            f"run({program.x}) of {where}:\n{numbered(program.source)}"
        )
    problem = asyncio.run(difference(workflow_class, program.x))
    assert problem is None, (
        f"run({program.x}) differs: {problem}\nsource ({where}):\n{numbered(program.source)}"
    )
