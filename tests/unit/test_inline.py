"""run_inline passes action arguments and results as a worker would get them: through
the codec. Immutable atomic values are passed as they are (the round trip would give
them back unchanged); everything else is a copy, and what the codec refuses fails the
action or the instance."""

from __future__ import annotations

from typing import Any

import pytest

from rappelx import Workflow, action, workflow
from rappelx.exceptions import CodecError, StateError
from rappelx.testing import run_inline

SEEN: list[Any] = []


@action
async def keep(*args: Any, **kwargs: Any) -> Any:
    """Record the arguments as received, mutate any list among them, return the first."""
    SEEN.append((args, kwargs))
    for value in [*args, *kwargs.values()]:
        if type(value) is list:
            value.append("added by the action")
    return args[0] if args else kwargs


@action
async def echo(value: Any) -> Any:
    return value


@workflow
class PassArguments(Workflow):
    async def run(self, first: Any, second: Any) -> Any:
        return await keep(first, key=second)


@workflow
class ListArgument(Workflow):
    async def run(self) -> list[Any]:
        items = [1, 2]
        await keep(items)
        return items


@workflow
class ResultIsCopied(Workflow):
    async def run(self) -> bool:
        shared = [1]
        got = await echo(shared)
        return got == shared and got is not shared


@workflow
class RefusedArgument(Workflow):
    async def run(self) -> str:
        try:
            await keep(chr(0xD800))  # a lone surrogate: UTF-8 cannot encode it
        except CodecError as error:
            return f"refused: {type(error).__name__}"
        return "accepted"


@action
async def unencodable() -> str:
    return "\ud800"  # a lone surrogate: UTF-8 cannot encode it


@workflow
class RefusedResult(Workflow):
    async def run(self) -> str:
        try:
            await unencodable()
        except CodecError:
            return "refused"
        return "accepted"


ATOMIC_VALUES = [None, True, 0, -(2**70), 2**64, 1.5, float("inf"), b"\x00\xff", "ascii", "déjà"]


@pytest.mark.parametrize("value", ATOMIC_VALUES, ids=repr)
async def test_atomic_arguments_and_results_arrive_equal_and_of_the_same_type(value: Any) -> None:
    SEEN.clear()
    result = await run_inline(PassArguments, value, value)
    ((args, kwargs),) = SEEN
    assert args == (value,) and type(args[0]) is type(value)
    assert kwargs == {"key": value} and type(kwargs["key"]) is type(value)
    assert result == value and type(result) is type(value)


async def test_an_action_gets_a_copy_of_a_list_argument() -> None:
    SEEN.clear()
    assert await run_inline(ListArgument) == [1, 2]
    assert SEEN[0][0][0] == [1, 2, "added by the action"]


async def test_a_result_is_a_copy() -> None:
    assert await run_inline(ResultIsCopied) is True


async def test_an_argument_the_codec_refuses_stops_the_instance() -> None:
    # the arguments are part of the persisted state, as in production
    with pytest.raises(StateError):
        await run_inline(RefusedArgument)


async def test_a_result_the_codec_refuses_fails_the_action() -> None:
    assert await run_inline(RefusedResult) == "refused"
