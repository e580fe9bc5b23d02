"""Straight-line workflows: arguments, results of every shape, sequential actions."""

from __future__ import annotations

from typing import TypeVar

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case

T = TypeVar("T")


@action
async def add(a: int, b: int) -> int:
    return a + b


@action
async def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@action
async def split_pair(text: str) -> tuple[str, str]:
    left, _, right = text.partition(":")
    return left, right


@action
async def as_float(x: int) -> float:
    return float(x)


@action
async def noop() -> object:
    return None


@action
async def build_record(name: str, tags: list[str]) -> dict[str, object]:
    return {"name": name, "tags": tags, "size": len(tags), "unique": set(tags)}


@action
async def echo(value: T) -> T:
    return value


@workflow
class BasicsSingle(Workflow):
    """One action, result returned directly."""

    async def run(self) -> int:
        result = await add(2, 3)
        return result


@workflow
class BasicsChain(Workflow):
    """Each action's result feeds the next one."""

    async def run(self, start: int) -> int:
        a = await add(start, 1)
        b = await add(a, a)
        c = await add(b, -start)
        return c


@workflow
class BasicsKwargs(Workflow):
    """Keyword arguments to the workflow and to actions."""

    async def run(self, name: str, *, loud: bool = False) -> str:
        text = await greet(name=name, punctuation="!!" if loud else ".")
        return text


@workflow
class BasicsTupleResult(Workflow):
    """A tuple stays a tuple, unpacked and repacked."""

    async def run(self, text: str) -> tuple[str, str, int]:
        left, right = await split_pair(text)
        pair = await split_pair(text)
        return right, left, len(pair)


@workflow
class BasicsFloatVsInt(Workflow):
    """1.0 stays a float and 1 an int across awaits."""

    async def run(self) -> list[object]:
        f = await as_float(1)
        i = await add(0, 1)
        return [f, i, f == i, type(f).__name__, type(i).__name__]


@workflow
class BasicsNone(Workflow):
    """An action returning None, and a workflow returning None."""

    async def run(self) -> None:
        value = await noop()
        assert value is None
        await noop()


@workflow
class BasicsNestedContainers(Workflow):
    """Dicts with lists and sets inside survive as they are."""

    async def run(self, name: str) -> dict[str, object]:
        record = await build_record(name, ["a", "b", "a"])
        record["echo"] = await echo((1, [2, {"three": 3}], frozenset({4})))
        return record


@workflow
class BasicsEchoTypes(Workflow):
    """Values of many plain types round-trip through an action unchanged."""

    async def run(self) -> list[object]:
        values: list[object] = [None, True, 0, -(2**70), 1.5, "é", b"\x00\xff", (), [], {}]
        out = []
        for value in values:
            out.append(await echo(value))
        return out


@workflow
class BasicsArgsUnchanged(Workflow):
    """Workflow arguments of several types reach the body intact."""

    async def run(self, number: int, ratio: float, items: list[int], meta: dict[str, str]) -> str:
        total = await add(number, sum(items))
        return f"{total}|{ratio}|{sorted(meta.items())}"


@workflow
class BasicsPassOnly(Workflow):
    """A body with no await at all."""

    async def run(self, x: int) -> int:
        pass
        return x * 2


CASES = [
    Case("single", BasicsSingle),
    Case("chain", BasicsChain, (10,)),
    Case("kwargs_default", BasicsKwargs, ("ann",)),
    Case("kwargs_given", BasicsKwargs, ("bob",), {"loud": True}),
    Case("tuple_result", BasicsTupleResult, ("k:v",)),
    Case("float_vs_int", BasicsFloatVsInt),
    Case("none", BasicsNone),
    Case("nested_containers", BasicsNestedContainers, ("n",)),
    Case("echo_types", BasicsEchoTypes),
    Case("args_unchanged", BasicsArgsUnchanged, (3, 0.25, [1, 2, 3], {"b": "2", "a": "1"})),
    Case("pass_only", BasicsPassOnly, (21,)),
]
