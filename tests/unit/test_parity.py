"""The parity oracle: every hand-written case, run by rappelx and as plain Python.

A case passes when ``rappelx.testing.run_inline`` returns the same value (exact types) or
raises the same exception (class, args, attributes, cause) as ``run_plain`` — or, for the
few cases plain Python cannot model (retries, timeouts), meets its explicit expectation.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rappelx import testing
from tests.parity_cases import MODULES, Case, _counters, load_module
from tests.parity_cases._compare import (
    Outcome,
    capture,
    oracle_difference,
    outcome_difference,
)


class ImportFailure:
    """Stands in for the cases of a module that could not be imported."""

    def __init__(self, module: str, error: BaseException) -> None:
        self.module = module
        self.error = error


def _params() -> list[Any]:
    params: list[Any] = []
    for name in MODULES:
        try:
            cases = load_module(name).CASES
        except Exception as exc:
            params.append(pytest.param(ImportFailure(name, exc), id=f"{name}:import"))
            continue
        params.extend(pytest.param(case, id=f"{name}.{case.name}") for case in cases)
    return params


PARAMS = _params()
LOADED: list[Case] = [p.values[0] for p in PARAMS if isinstance(p.values[0], Case)]


def describe(case: Case) -> str:
    return (
        f"{case.workflow.__module__}.{case.workflow.__qualname__}"
        f"(*{case.args!r}, **{dict(case.kwargs)!r})"
    )


async def run_both(case: Case) -> str | None:
    """Run ``case`` through rappelx (and plain Python when it is the oracle)."""
    _counters.reset()
    actual = await capture(
        testing.run_inline(case.workflow, *copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    )
    return await oracle_difference(case, actual)


@pytest.mark.parametrize("case", PARAMS)
async def test_parity(case: Case | ImportFailure) -> None:
    if isinstance(case, ImportFailure):
        pytest.fail(
            f"tests.parity_cases.{case.module} failed to import, so none of its cases ran: "
            f"{type(case.error).__name__}: {case.error}"
        )
    problem = await run_both(case)
    assert problem is None, f"{describe(case)}: {problem}"


def test_inventory() -> None:
    """Enough cases, unique names, and every explicit expectation says why."""
    names = [f"{c.workflow.__module__}.{c.name}" for c in LOADED]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len({c.workflow for c in LOADED}) >= 70
    for case in LOADED:
        assert case.expected is None or case.note, f"{case.name}: explicit expected needs a note"


async def test_oracle_detects_a_difference() -> None:
    """The comparison itself is not vacuous: a wrong result and a wrong type are caught."""
    assert outcome_difference(Outcome(value=[1, (2,)]), Outcome(value=[1, (2,)])) is None
    assert outcome_difference(Outcome(value=[1, (2,)]), Outcome(value=[1, [2]])) is not None
    assert outcome_difference(Outcome(value=1), Outcome(value=1.0)) is not None
    assert outcome_difference(Outcome(value={"a": 1, "b": 2}), Outcome(value={"b": 2, "a": 1}))
    assert outcome_difference(Outcome(error=KeyError(1)), Outcome(error=LookupError(1)))
    assert outcome_difference(Outcome(error=KeyError(1)), Outcome(error=KeyError(2)))
    assert outcome_difference(Outcome(error=KeyError(1)), Outcome(value=None))


@pytest.mark.parametrize("case", [p for p in PARAMS if isinstance(p.values[0], Case)])
async def test_parity_when_restored_at_every_step(case: Case) -> None:
    """Each case again, its state written and read back at every step (a crash at each).

    Log lists are read back from their chunks and every other value from the state, so
    this is where leaving a list out of the state would show, if its items could change
    after they were logged.
    """
    _counters.reset()
    args, kwargs = copy.deepcopy(case.args), dict(copy.deepcopy(case.kwargs))
    run = testing._run_inline(case.workflow, args, kwargs, restore_each_step=True)
    problem = await oracle_difference(case, await capture(run))
    assert problem is None, f"{describe(case)}, restored at every step: {problem}"
