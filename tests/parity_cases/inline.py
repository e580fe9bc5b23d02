"""Inline code between awaits: every assignment shape, comprehensions, values of many types.

Also aliasing: the scope is one object graph, so two names bound to one object still share
it after an await.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case

LIMIT = 3
T = TypeVar("T")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: int
    tags: list[str] = field(default_factory=list)

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@dataclass(frozen=True)
class Frozen:
    name: str
    size: int


class Order(BaseModel):
    id: int
    items: list[str]
    note: str | None = None


@action
async def inc(x: int) -> int:
    return x + 1


@action
async def echo(value: T) -> T:
    return value


@action
async def make_point(x: int, y: int) -> Point:
    return Point(x, y)


@action
async def make_order(order_id: int) -> Order:
    return Order(id=order_id, items=["a", "b"])


@workflow
class InlineComprehensions(Workflow):
    """List, dict, set comprehensions and generator expressions between awaits."""

    async def run(self, xs: list[int]) -> tuple[object, ...]:
        base = await inc(0)
        squares = [x * x + base for x in xs if x != 2]
        index = {x: i for i, x in enumerate(squares)}
        parities = {x % 2 for x in xs}
        total = sum(x for x in squares)
        nested = [[i * j for j in range(i)] for i in range(LIMIT)]
        last = await inc(total)
        return squares, index, parities, total, nested, last


@workflow
class InlineLambdas(Workflow):
    """Lambdas used within one step (sort keys, map, a named lambda deleted before an await)."""

    async def run(self, words: list[str]) -> tuple[list[str], list[int], int]:
        first = await echo(words)
        by_length = sorted(first, key=lambda w: (len(w), w))
        lengths = list(map(lambda w: len(w) * 2, by_length))
        pick = lambda n: n + LIMIT  # noqa: E731
        picked = pick(lengths[0])  # type: ignore[no-untyped-call]
        del pick
        return by_length, lengths, await inc(picked)


@workflow
class InlineFStrings(Workflow):
    """f-strings with format specs, conversions, nested fields and = debugging."""

    async def run(self, name: str, ratio: float) -> list[str]:
        count = await inc(41)
        width = 8
        return [
            f"{name!r:>{width}}|{count:#x}|{ratio:.2%}",
            f"{count=}",
            f"{'nested ' + name.upper()}{{literal}}",
        ]


@workflow
class InlineAssignShapes(Workflow):
    """Tuple unpacking, starred targets, chained assignment, swaps, d[k] = v, augmented."""

    async def run(self) -> dict[str, object]:
        a, (b, c) = await inc(1), (await inc(2), 4)
        first, *middle, last = [a, b, c, await inc(10)]
        x = y = await inc(5)
        x, y = y + 1, x
        table: dict[str, Any] = {}
        table["a"] = a
        table["pair"] = [first, last]
        table["pair"][0] += 100
        table["middle"] = middle
        table["xy"] = (x, y)
        counts = {"n": 1}
        counts["n"] += await inc(1)
        table["counts"] = counts
        return table


@workflow
class InlineAttributes(Workflow):
    """``obj.attr = v`` and augmented attribute assignment on a dataclass across awaits."""

    async def run(self) -> tuple[Point, int, Frozen]:
        point = await make_point(1, 2)
        point.x = await inc(point.x)
        point.y += 10
        point.tags.append(f"at {point.x},{point.y}")
        frozen = Frozen("f", 1)
        bigger = replace(frozen, size=await inc(frozen.size))
        return point, point.norm1(), bigger


@workflow
class InlineDelete(Workflow):
    """``del`` of a name, a dict key, a list slice and an element."""

    async def run(self) -> tuple[object, ...]:
        items = list(range(8))
        mapping = {"keep": 1, "drop": 2}
        temp = await inc(0)
        del mapping["drop"]
        del items[1:3]
        del items[-1]
        await inc(temp)
        del temp
        try:
            return temp, items, mapping
        except NameError:
            return "temp deleted", items, mapping


@workflow
class InlineAliasing(Workflow):
    """Two names bound to one list, mutated after an await, still share it."""

    async def run(self) -> tuple[list[int], list[int], bool, list[list[int]]]:
        a = [1]
        b = a
        rows = [a, a]
        await inc(0)
        b.append(await inc(1))
        a += [3]
        await inc(2)
        rows[0].append(4)
        return a, b, a is b and rows[1] is a, rows


@workflow
class InlineAliasedDataclass(Workflow):
    """One dataclass reachable by two paths, mutated through one after awaits."""

    async def run(self) -> tuple[Point, Point, bool]:
        point = Point(0, 0)
        holder: dict[str, Any] = {"point": point, "same": [point]}
        point.x = await inc(point.x)
        await inc(0)
        holder["point"].y = await inc(5)
        return point, holder["same"][0], holder["same"][0] is point


@workflow
class InlineRichTypes(Workflow):
    """Enum, Decimal, dates with time zones, timedelta, UUID, sets and frozensets."""

    async def run(self) -> list[object]:
        tz = timezone(timedelta(hours=5, minutes=30))
        values: list[object] = [
            Color.GREEN,
            Decimal("1.10") + Decimal("2.205"),
            date(2024, 2, 29),
            datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=tz),
            datetime(2024, 1, 2, tzinfo=UTC),
            timedelta(days=1, microseconds=5),
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            {1, 2},
            frozenset({"x"}),
        ]
        del tz  # a bare tzinfo is not a persistable value; datetimes carrying one are
        await inc(0)
        echoed = [await echo(v) for v in values]
        same = [type(v).__name__ for v in echoed]
        offsets = [v.utcoffset() for v in echoed if isinstance(v, datetime)]
        return [*values, *echoed, same, offsets]


@workflow
class InlineNonStringKeys(Workflow):
    """Dicts keyed by ints, tuples, bools, None and enums, and sets of tuples, across awaits."""

    async def run(self) -> tuple[object, ...]:
        table: dict[Any, str] = {1: "int", (1, "a"): "tuple", None: "none", Color.RED: "enum"}
        table[True] = "bool overwrites 1"
        pairs = {(1, 2), (2, 1)}
        await inc(0)
        table[2.5] = "float"
        echoed = await echo(table)
        return table, pairs, echoed, list(echoed)


@workflow
class InlinePydantic(Workflow):
    """A pydantic model returned by an action, copied, mutated and returned."""

    async def run(self, order_id: int) -> tuple[Order, Order, dict[str, object]]:
        order = await make_order(order_id)
        order.note = f"checked {await inc(order.id)}"
        copy = order.model_copy(update={"items": [*order.items, "c"]})
        return order, copy, copy.model_dump()


@workflow
class InlineBuiltinsAndMethods(Workflow):
    """Calls to builtins, string and dict methods, slicing and conditional expressions."""

    async def run(self, text: str) -> dict[str, object]:
        words = (await echo(text)).split()
        counts: dict[str, int] = {}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        top = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        return {
            "reversed": words[::-1],
            "top": top,
            "joined": "-".join(w.capitalize() for w in words[:LIMIT]),
            "chars": len(text) if text else None,
            "divmod": divmod(await inc(16), 5),
            "round": round(2.675, 2),
            "any_all": (any(w.startswith("b") for w in words), all(words)),
        }


CASES = [
    Case("comprehensions", InlineComprehensions, ([1, 2, 3, 4],)),
    Case("lambdas", InlineLambdas, (["ccc", "a", "bb", "aa"],)),
    Case("fstrings", InlineFStrings, ("ann", 0.123)),
    Case("assign_shapes", InlineAssignShapes),
    Case("attributes", InlineAttributes),
    Case("delete", InlineDelete),
    Case("aliasing", InlineAliasing),
    Case("aliased_dataclass", InlineAliasedDataclass),
    Case("rich_types", InlineRichTypes),
    Case("non_string_keys", InlineNonStringKeys),
    Case("pydantic", InlinePydantic, (7,)),
    Case("builtins_methods", InlineBuiltinsAndMethods, ("b a c b a b",)),
]
