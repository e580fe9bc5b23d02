"""How fast is the codec? Prints µs per dumps+loads round trip, next to plain msgpack.

Run with ``.venv/bin/python benchmarks/bench_codec.py``. Each payload is timed through
``rappelx.runtime._codec`` (dumps, loads, and the round trip) and, in the same run, through
``msgpack.packb``/``unpackb`` of the equivalent native structure (dataclasses as dicts).
Figures are medians of several repeats; the ratio is codec / msgpack round trip. Cases (e)
and (f) are the small payloads of the engine's hot path: an action's ``(args, kwargs)``
and a small variable scope.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgpack

from rappelx.runtime._codec import dumps, loads

REPEATS = 7


@dataclass
class Address:
    street: str
    city: str
    postcode: str


@dataclass
class Customer:
    id: int
    name: str
    email: str
    address: Address


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    price_cents: int


@dataclass
class Order:
    id: int
    customer: Customer
    items: list[Item]
    note: str | None
    paid: bool


def _scalars() -> dict[str, object]:
    return {
        "user_id": "u-123456",
        "attempt": 3,
        "score": 0.75,
        "active": True,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "count": 1000,
        "ratio": 1.5,
        "tag": "priority",
        "note": None,
    }


def _order() -> Order:
    address = Address("1 Analytical Way", "London", "NW1")
    customer = Customer(7, "Ada Lovelace", "ada@example.com", address)
    items = [Item(f"SKU-{i}", i % 3 + 1, 100 * i) for i in range(10)]
    return Order(42, customer, items, "leave at the door", paid=False)


def _per_call_us(func: Callable[[], object]) -> float:
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    runs = timer.repeat(repeat=REPEATS, number=number)
    return statistics.median(runs) / number * 1e6


def _round_trip(value: object) -> Callable[[], object]:
    return lambda: loads(dumps(value))


def _msgpack_round_trip(value: object) -> Callable[[], object]:
    return lambda: msgpack.unpackb(msgpack.packb(value))


def main() -> None:
    """Time each payload and print one line per payload."""
    order = _order()
    cases = [
        ("(a) 10-key dict of scalars/strings", _scalars(), _scalars()),
        ("(b) list of 1,000 ints", list(range(1000)), list(range(1000))),
        ("(c) nested dataclass order (14 objects)", order, dataclasses.asdict(order)),
    ]
    shared = [1, 2, 3]
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    graph = {"when": when, "ids": (1, 2, 3), "a": shared, "b": shared}
    flat = {"when": when.timestamp(), "ids": [1, 2, 3], "a": shared, "b": shared}
    cases.append(("(d) shared list + datetime + tuple", graph, flat))
    cases.append(("(e) action arguments ((1,), {})", ((1,), {}), [[1], {}]))
    scope = [{"x": 1, "_rx_t1": 2, "total": 5}, (1,), {}, {}]
    cases.append(("(f) small scope [dict, (1,), {}, {}]", scope, [scope[0], [1], {}, {}]))
    print(f"rappelx codec vs msgpack, µs per call, median of {REPEATS} repeats")
    columns = ("dumps", "loads", "codec", "msgpack", "ratio", "bytes")
    print(f"{'payload':40} " + " ".join(f"{column:>7}" for column in columns))
    for name, value, native in cases:
        data = dumps(value)
        assert loads(data) == value
        encode = _per_call_us(functools.partial(dumps, value))
        decode = _per_call_us(functools.partial(loads, data))
        ours = _per_call_us(_round_trip(value))
        theirs = _per_call_us(_msgpack_round_trip(native))
        print(
            f"{name:40} {encode:7.2f} {decode:7.2f} {ours:7.2f} {theirs:7.2f} "
            f"{ours / theirs:7.2f} {len(data):7d}"
        )


if __name__ == "__main__":
    main()
