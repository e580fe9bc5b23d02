"""The codec: exact round trips, shared objects and cycles, exceptions, safety, errors."""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import math
import subprocess
import sys
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgpack import ExtType

from rappelx.exceptions import CodecError, WorkflowFailed
from rappelx.runtime import _codec_classes as codes
from rappelx.runtime._codec import dumps, loads
from rappelx.runtime._codec_graph import GraphEncoder


# ------------------------------------------------------------------ test classes
class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    READ = "r"


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


@dataclass
class Point:
    x: int
    y: int


@dataclass(frozen=True)
class Frozen:
    name: str
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class Slotted:
    a: int
    b: list[int]


@dataclass
class Line:
    start: Point
    end: Point
    label: str | None = None
    computed: int = field(init=False, default=0)


@dataclass
class Node:
    value: int
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None


INIT_CALLS: list[str] = []


@dataclass
class Watched:
    value: int

    def __post_init__(self) -> None:
        INIT_CALLS.append("post_init")


class Model(pydantic.BaseModel):
    name: str
    when: datetime
    point: tuple[int, int] = (0, 0)


class Outer(pydantic.BaseModel):
    inner: Model
    items: list[int]


class Loose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    a: int
    _secret: str = pydantic.PrivateAttr(default="s")


class Validated(pydantic.BaseModel):
    value: int

    @pydantic.field_validator("value")
    @classmethod
    def _record(cls, value: int) -> int:
        INIT_CALLS.append("validator")
        return value


class Numbers(pydantic.RootModel[list[int]]):
    pass


class PaymentError(Exception):
    """Has a constructor whose signature differs from its args."""

    def __init__(self, order_id: str, amount: int) -> None:
        super().__init__(f"payment for {order_id} failed ({amount} cents)")
        self.order_id = order_id
        self.amount = amount
        INIT_CALLS.append("PaymentError.__init__")


class NeedsArgs(Exception):
    def __init__(self, required: str) -> None:
        super().__init__()
        self.required = required


@dataclass
class DataError(Exception):
    code: int


class MyList(list[int]):
    pass


class MyStr(str):
    pass


# ------------------------------------------------------------------ helpers
def same(a: object, b: object) -> bool:
    """Equal, with exactly the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b))  # type: ignore[arg-type]
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))  # type: ignore[arg-type]
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(  # order kept
            same(k1, k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, set | frozenset):
        assert isinstance(b, set | frozenset)
        return a == b and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, datetime | time):
        return a == b and a.tzinfo == b.tzinfo and repr(a) == repr(b)  # type: ignore[union-attr]
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, BaseException):
        assert isinstance(b, BaseException)
        return same(a.args, b.args) and same(a.__dict__, b.__dict__)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        fields = [f.name for f in dataclasses.fields(a)]
        return all(same(getattr(a, name), getattr(b, name)) for name in fields)
    return a == b


def round_trip(value: object) -> object:
    return loads(dumps(value))


def crafted(*values: object) -> bytes:
    """A payload built by hand, as an attacker or a corrupt disk could."""
    return msgpack.packb(values[0] if len(values) == 1 else list(values), use_bin_type=True)


# ------------------------------------------------------------------ round trips
ROUND_TRIPS = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    2**200,
    -(2**200) + 7,
    1.0,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    "",
    "héllo ✓",
    b"",
    b"\x00\xff",
    bytearray(b"mutable"),
    [],
    [1, "a", None],
    (),
    (1,),
    (1, (2, [3, (4,)])),
    {},
    {"b": 1, "a": 2},
    {1: "int", 2.5: "float", (1, "t"): "tuple", None: 0, b"k": 1, frozenset({1}): 2},
    {Color.RED: "enum key", Frozen("k"): "dataclass key", date(2024, 1, 1): "date key"},
    set(),
    {1, 2, "x", (3, 4)},
    frozenset(),
    frozenset({"a", frozenset({"b"})}),
    datetime(2024, 5, 1, 12, 30, 15, 123456),
    datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=1), "CET")),
    datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    datetime.min,
    datetime.max,
    date(1, 1, 1),
    date(2024, 2, 29),
    time(23, 59, 59, 999999),
    time(8, 0, tzinfo=timezone(timedelta(hours=9))),
    time(1, 0, fold=1),
    timedelta(0),
    timedelta(days=-3, seconds=7, microseconds=9),
    timedelta.max,
    UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.10"),
    Decimal("-0"),
    Decimal("NaN"),
    Decimal("-Infinity"),
    Decimal("1E+400"),
    Color.RED,
    Color.GREEN,
    Level.HIGH,
    Mode.READ,
    Perm.R,
    Perm.R | Perm.X,
    Perm(0),
    Point(1, 2),
    Frozen("f", ("a", "b")),
    Slotted(1, [2, 3]),
    Line(Point(0, 0), Point(3, 4), "diagonal"),
    [Point(1, 1), {"p": Point(2, 2)}, (Point(3, 3),)],
    Model(name="m", when=datetime(2024, 1, 1, tzinfo=UTC), point=(1, 2)),
    Outer(inner=Model(name="i", when=datetime(2020, 2, 2)), items=[1, 2]),
    Numbers([1, 2, 3]),
]


def _ids(value: object) -> str:
    return f"{type(value).__name__}:{value!r}"[:60]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=_ids)
def test_round_trip_keeps_value_and_exact_types(value):
    assert same(round_trip(value), value)


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=_ids)
def test_round_trip_inside_a_graph_with_shared_objects(value):
    # A shared list sends the whole value through the graph encoder instead.
    shared: list[int] = [0]
    result = round_trip({"value": value, "a": shared, "b": shared})

    assert same(result["value"], value)  # type: ignore[index]
    assert result["a"] is result["b"]  # type: ignore[index]


def test_classes_of_the_supported_kinds_are_stored_by_reference():
    from rappelx import RetryPolicy

    policy = RetryPolicy(attempts=3, exceptions=(ConnectionError, PaymentError))
    classes = [ValueError, Point, Color, Model, ExceptionGroup]

    result = round_trip({"policy": policy, "classes": classes, "shared": [classes, classes]})

    assert result["policy"] == policy  # type: ignore[index]
    assert result["classes"] == classes  # type: ignore[index]


def test_other_classes_are_refused_as_values():
    with pytest.raises(
        CodecError, match=r"value\['cls'\]: the class socket.socket is not supported"
    ):
        dumps({"cls": __import__("socket").socket})
    with pytest.raises(CodecError, match="is not an exception class, Enum, dataclass"):
        loads(crafted(ExtType(codes.CLASS, b"subprocess:Popen")))


def test_one_stays_int_one_point_zero_stays_float_true_stays_bool():
    result = round_trip([1, 1.0, True, (1,), [1]])

    assert [type(x) for x in result] == [int, float, bool, tuple, list]  # type: ignore[attr-defined]


def test_pydantic_model_keeps_fields_set_extra_and_private_attributes():
    model = Loose(a=1, extra_field=[1, 2])
    model._secret = "changed"

    result = round_trip(model)

    assert isinstance(result, Loose)
    assert result.a == 1
    assert result.model_extra == {"extra_field": [1, 2]}
    assert result._secret == "changed"
    assert result.model_fields_set == {"a", "extra_field"}
    assert result == model


def test_dataclass_keeps_non_init_fields_and_extra_attributes():
    line = Line(Point(0, 0), Point(1, 1))
    line.computed = 5
    line.note = "added later"  # type: ignore[attr-defined]

    result = round_trip(line)

    assert result == line
    assert result.note == "added later"  # type: ignore[attr-defined]


def test_decoding_runs_no_init_post_init_or_validators():
    values = [Watched(1), Validated(value=2), PaymentError("o1", 5)]
    payload = dumps(values)
    INIT_CALLS.clear()

    result = loads(payload)

    assert INIT_CALLS == []
    assert result[:2] == values[:2]  # type: ignore[index]
    assert result[2].order_id == "o1"  # type: ignore[index]


# ------------------------------------------------------------------ sharing and cycles
def test_shared_list_stays_shared():
    a = [1]
    result = round_trip({"p": a, "q": a})

    assert result == {"p": [1], "q": [1]}
    assert result["p"] is result["q"]  # type: ignore[index]


def test_list_containing_itself():
    a: list[object] = [1]
    a.append(a)

    result = round_trip(a)

    assert result[0] == 1  # type: ignore[index]
    assert result[1] is result  # type: ignore[index]


def test_dict_cycle_and_set_and_bytearray_shared():
    d: dict[str, object] = {}
    d["self"] = d
    s = {1, 2}
    buf = bytearray(b"x")

    result = round_trip([d, s, s, buf, (buf,)])

    assert result[0]["self"] is result[0]  # type: ignore[index]
    assert result[1] is result[2] and result[1] == {1, 2}  # type: ignore[index]
    assert result[3] is result[4][0] and type(result[3]) is bytearray  # type: ignore[index]


def test_dataclass_tree_with_parent_pointers():
    root = Node(0)
    for i in (1, 2):
        root.children.append(Node(i, parent=root))

    result = round_trip({"root": root, "first": root.children[0]})

    new_root = result["root"]  # type: ignore[index]
    assert [child.value for child in new_root.children] == [1, 2]
    assert all(child.parent is new_root for child in new_root.children)
    assert result["first"] is new_root.children[0]  # type: ignore[index]


def test_shared_frozen_dataclass_used_as_key_and_value():
    key = Frozen("k")
    result = round_trip({key: key, "other": [key]})

    (new_key, *_) = result  # type: ignore[misc]
    assert result[new_key] is new_key  # type: ignore[index]
    assert result["other"][0] is new_key  # type: ignore[index]


def test_shared_pydantic_model_and_list_inside_it():
    model = Outer(inner=Model(name="i", when=datetime(2020, 1, 1)), items=[1])
    result = round_trip([model, model, model.items])

    assert result[0] is result[1]  # type: ignore[index]
    assert result[2] is result[0].items  # type: ignore[index]


def test_tuple_in_a_cycle_through_a_list():
    a: list[object] = []
    t = (a,)
    a.append(t)

    result = round_trip(t)

    assert type(result) is tuple
    assert result[0][0][0] is result[0]  # type: ignore[index]


def test_exception_referring_to_itself_through_an_attribute():
    error = PaymentError("o", 1)
    error.related = [error]  # type: ignore[attr-defined]

    result = round_trip(error)

    assert result.related[0] is result  # type: ignore[attr-defined]


def test_exception_group_containing_itself_is_refused():
    inner: list[BaseException] = [ValueError(1)]
    group = ExceptionGroup("g", inner)
    group.loop = [group]  # type: ignore[attr-defined]

    with pytest.raises(CodecError, match="exception group contains itself"):
        dumps(group)


def _sharing_cases() -> list[tuple[str, object, Callable[[Any], tuple[object, object]]]]:
    """Values holding one object twice where the second is reached through the packer's
    hook (tuples, sets, objects), not only through lists and dicts."""
    a = [1]
    d = {"k": 1}
    s = {1}
    point = Point(1, 2)
    key = Frozen("k")
    held = (a,)
    error = ValueError(a)
    error.extra = a  # type: ignore[attr-defined]
    base = KeyError("k")
    first, second = ValueError(1), ValueError(2)
    first.__cause__ = second.__context__ = base
    node = Node(0)
    node.children.append(node)
    loose = Loose(a=1, extra_field=[1])
    outer = Outer(inner=Model(name="i", when=datetime(2020, 1, 1)), items=[1])
    return [
        ("list in a tuple and a list", ((a,), [a]), lambda r: (r[0][0], r[1][0])),
        ("list in two tuples", [(a,), (0, a)], lambda r: (r[0][0], r[1][1])),
        ("one tuple twice, holding a list", [held, held], lambda r: (r[0][0], r[1][0])),
        ("dict in a tuple and a dict", ((d,), {"x": d}), lambda r: (r[0][0], r[1]["x"])),
        ("set in two tuples", ((s,), (s,)), lambda r: (r[0][0], r[1][0])),
        ("dataclass in a tuple and a list", (point, [point]), lambda r: (r[0], r[1][0])),
        ("list in a slotted dataclass", [Slotted(1, a), a], lambda r: (r[0].b, r[1])),
        ("dict in a dataclass field", (Point(d, 0), d), lambda r: (r[0].x, r[1])),
        ("dataclass as a key and in a tuple", ({key: 1}, (key,)), lambda r: (*r[0], r[1][0])),
        ("list in exception args and attribute", error, lambda r: (r.args[0], r.extra)),
        ("exception as cause and context", [first, second], _cause_and_context),
        ("dataclass in a cycle", node, lambda r: (r.children[0], r)),
        ("list in a pydantic field", [outer, outer.items], lambda r: (r[0].items, r[1])),
        (
            "list in a pydantic model's extra",
            [loose, loose.model_extra["extra_field"]],
            lambda r: (r[0].model_extra["extra_field"], r[1]),
        ),
    ]


def _cause_and_context(result: Any) -> tuple[object, object]:
    return result[0].__cause__, result[1].__context__


@pytest.mark.parametrize(
    ("value", "pick"), [pytest.param(v, p, id=name) for name, v, p in _sharing_cases()]
)
def test_objects_reached_through_tuples_sets_and_objects_stay_shared(value, pick):
    result = round_trip(value)

    one, other = pick(result)
    assert one is other
    assert type(one) is type(pick(value)[0])


# msgpack would pack these itself and hand back something else: the codec must not let it.
@pytest.mark.parametrize(
    "value",
    [
        (bytearray(b"t"),),
        {"k": (1, bytearray(b"t"))},
        Point(bytearray(b"f"), 0),
        ValueError(bytearray(b"a")),
        [{1: [bytearray(b"deep")]}],
    ],
    ids=repr,
)
def test_bytearray_stays_bytearray_wherever_it_is(value):
    assert same(round_trip(value), value)


@pytest.mark.parametrize(
    "value",
    [
        {memoryview(b"k"): 1},
        (1, memoryview(b"t")),
        frozenset({memoryview(b"f")}),
        {ExtType(4, b"\x01"): "key"},
        (ExtType(5, b""),),
        {"s": {msgpack.Timestamp(1)}},
        Point(msgpack.Timestamp(1), 0),
    ],
    ids=repr,
)
def test_values_msgpack_would_change_are_refused_wherever_they_are(value):
    with pytest.raises(CodecError, match="is not supported"):
        dumps(value)


def test_same_bytes_whether_or_not_the_value_shares_objects():
    # The graph encoder writes unshared objects exactly as the fast path does.
    for value in ROUND_TRIPS:
        assert dumps(value) == GraphEncoder(set()).encode(value), value


def test_encoders_and_decoders_are_clean_after_failures():
    plain = [{"x": (1, 2)}, {3}, Point(1, 2)]
    expected = dumps(plain)
    shared = [1]
    for bad in [{"a": shared, "b": shared}, [object()], (1, {memoryview(b"x"): 1})]:
        try:
            dumps(bad)
        except CodecError:
            pass
        with pytest.raises(CodecError):
            loads(dumps([1, 2])[:-1])
        assert dumps(plain) == expected
        assert same(loads(expected), plain)


def test_dumps_and_loads_from_many_threads_at_once():
    values = [((i,), {"k": [i] * (i % 5)}, Point(i, i)) for i in range(50)]
    expected = [dumps(value) for value in values]

    def work(offset: int) -> bool:
        ok = True
        for _ in range(20):
            for index in range(len(values)):
                j = (index + offset) % len(values)
                data = dumps(values[j])
                ok = ok and data == expected[j] and same(loads(data), values[j])
        return ok

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, range(6)))


# ------------------------------------------------------------------ exceptions
def test_exception_with_other_constructor_signature_round_trips():
    error = PaymentError("order-7", 250)

    result = round_trip(error)

    assert type(result) is PaymentError
    assert result.args == ("payment for order-7 failed (250 cents)",)
    assert (result.order_id, result.amount) == ("order-7", 250)  # type: ignore[attr-defined]
    assert str(result) == str(error)


def test_exception_whose_init_needs_arguments_it_does_not_keep():
    result = round_trip(NeedsArgs("r"))

    assert type(result) is NeedsArgs
    assert result.args == ()
    assert result.required == "r"  # type: ignore[attr-defined]


def test_cause_context_and_suppress_context_are_kept_traceback_dropped():
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as caught:
        error = caught
    try:
        try:
            raise OSError("first")
        except OSError:
            raise RuntimeError("second")  # noqa: B904
    except RuntimeError as caught:
        implicit = caught

    result = round_trip([error, implicit])

    outer, second = result  # type: ignore[misc]
    assert type(outer.__cause__) is KeyError and outer.__cause__.args == ("inner",)
    assert outer.__suppress_context__ is True
    assert outer.__context__ is outer.__cause__  # one object, shared
    assert outer.__traceback__ is None
    assert type(second.__context__) is OSError and second.__cause__ is None
    assert second.__suppress_context__ is False


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        (FileNotFoundError(2, "No such file", "/x"), ("errno", "strerror", "filename")),
        (StopIteration(42), ("value",)),
        (SystemExit(3), ("code",)),
        (ImportError("no module", name="mod", path="/p"), ("name", "path", "msg")),
        (NameError("n", name="missing"), ("name",)),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), ("encoding", "object", "start")),
        (SyntaxError("bad", ("f.py", 3, 4, "x = ", 3, 5)), ("filename", "lineno", "text")),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_builtin_exceptions_keep_their_builtin_fields(error, fields):
    result = round_trip(error)

    assert type(result) is type(error)
    assert result.args == error.args
    assert str(result) == str(error)
    for name in fields:
        assert getattr(result, name) == getattr(error, name), name


def test_exception_group_notes_and_dataclass_exceptions():
    group = ExceptionGroup("several", [ValueError(1), PaymentError("o", 2)])
    group.add_note("a note")
    data_error = DataError(7)

    group_result, data_result = round_trip([group, data_error])  # type: ignore[misc]

    assert type(group_result) is ExceptionGroup
    assert group_result.message == "several"
    assert [type(e) for e in group_result.exceptions] == [ValueError, PaymentError]
    assert group_result.__notes__ == ["a note"]
    assert type(data_result) is DataError and data_result.code == 7


def test_decoded_exceptions_keep_the_class_hierarchy():
    with pytest.raises(LookupError):
        raise round_trip(KeyError("k"))  # type: ignore[misc]


def _payload_of_vanished_exception(tmp_module_name: str) -> bytes:
    module = types.ModuleType(tmp_module_name)
    exec(  # the test defines a module on the fly, as a worker's user module would be
        "class VanishingError(Exception):\n"
        "    def __init__(self, what):\n"
        "        super().__init__(f'lost {what}')\n",
        module.__dict__,
    )
    sys.modules[tmp_module_name] = module
    try:
        error = module.VanishingError("data")
        try:
            raise error from ValueError("root cause")
        except Exception as caught:
            return dumps({"error": caught, "again": caught})
    finally:
        del sys.modules[tmp_module_name]


def test_exception_of_a_module_not_imported_decodes_to_workflow_failed():
    payload = _payload_of_vanished_exception("rx_codec_test_vanishing")

    result = loads(payload)

    error = result["error"]  # type: ignore[index]
    assert type(error) is WorkflowFailed
    assert error.error_type == "rx_codec_test_vanishing.VanishingError"
    assert error.message == "lost data"
    assert type(error.__cause__) is ValueError
    assert result["again"] is error  # type: ignore[index]


def test_exception_class_defined_in_a_function_decodes_to_workflow_failed():
    class LocalError(Exception):
        pass

    result = round_trip(LocalError("here"))

    assert type(result) is WorkflowFailed
    assert result.error_type.endswith("LocalError")
    assert result.message == "here"


def test_exception_payload_naming_a_non_exception_class_decodes_to_workflow_failed():
    content = ["msg", [], {}, None, None, False, {}]
    payload = crafted([ExtType(codes.EXCEPTION, b"subprocess:Popen"), *content])

    result = loads(payload)

    assert type(result) is WorkflowFailed
    assert result.error_type == "subprocess.Popen"


# ------------------------------------------------------------------ safety
@pytest.mark.parametrize("code", [codes.DATACLASS, codes.PYDANTIC, codes.ENUM])
@pytest.mark.parametrize("name", [b"os:system", b"subprocess:Popen", b"builtins:eval"])
def test_payload_naming_a_callable_is_refused(code, name):
    before = set(sys.modules)

    with pytest.raises(CodecError, match="cannot decode"):
        loads(crafted([ExtType(code, name), {}]))

    assert set(sys.modules) == before


def test_payload_naming_a_module_not_imported_is_refused_without_importing_it():
    name = next(
        n
        for n in sorted(sys.stdlib_module_names)
        if n not in sys.modules and not n.startswith("_") and importlib.util.find_spec(n)
    )
    before = set(sys.modules)

    with pytest.raises(CodecError, match=f"module {name} is not imported in this process"):
        loads(crafted([ExtType(codes.DATACLASS, f"{name}:Anything".encode()), {}]))

    assert set(sys.modules) == before
    assert name not in sys.modules


def test_shared_marker_naming_a_callable_is_refused():
    marker = ExtType(codes.SHARED, (0).to_bytes(4, "big") + bytes([codes.DATACLASS]) + b"os:system")

    with pytest.raises(CodecError, match="os.system"):
        loads(crafted([marker, {}]))


def test_lookup_never_runs_module_getattr():
    calls: list[str] = []
    module = types.ModuleType("rx_codec_test_lazy")
    module.__getattr__ = lambda name: calls.append(name)  # type: ignore[method-assign]
    sys.modules["rx_codec_test_lazy"] = module
    try:
        with pytest.raises(CodecError, match="has no Thing"):
            loads(crafted([ExtType(codes.DATACLASS, b"rx_codec_test_lazy:Thing"), {}]))
    finally:
        del sys.modules["rx_codec_test_lazy"]

    assert calls == []


def test_payload_claiming_the_wrong_kind_is_refused():
    point_name = f"{__name__}:Point".encode()

    with pytest.raises(CodecError, match="is not a pydantic model"):
        loads(crafted([ExtType(codes.PYDANTIC, point_name), {"fields": {}, "set": []}]))
    with pytest.raises(CodecError, match="is not an Enum"):
        loads(crafted([ExtType(codes.ENUM, point_name), "x"]))


def test_enum_member_that_no_longer_exists():
    with pytest.raises(CodecError, match="no such member"):
        loads(crafted([ExtType(codes.ENUM, f"{__name__}:Color".encode()), "PURPLE"]))


def test_decoding_never_imports_pydantic():
    script = (
        "import sys, dataclasses\n"
        "from rappelx.runtime._codec import dumps, loads\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    x: int\n"
        "value = {'p': P(1), 'e': ValueError(2), 's': {1}}\n"
        "assert loads(dumps(value))['p'] == P(1)\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ corrupt bytes
CORRUPT = [
    b"",
    b"\xc1",  # never used in msgpack
    dumps({"a": [1, 2, 3]})[:-1],  # truncated
    dumps([1]) + b"\x00",  # trailing data
    crafted(ExtType(99, b"")),  # unknown ext type
    crafted([ExtType(codes.REF, (5).to_bytes(4, "big"))]),  # reference to nothing
    crafted({"k": ExtType(codes.TUPLE, b"")}),  # marker out of place
    crafted([ExtType(codes.DATETIME, b""), 1]),  # wrong number of fields
    crafted(ExtType(codes.DECIMAL, b"not a number")),
    crafted([ExtType(codes.DATACLASS, f"{__name__}:Point".encode()), [1, 2]]),
    crafted([ExtType(codes.DATETIME, b""), 2024, 1, 1, 0, 0, 0, 0, 0, "No/Such_Zone"]),
]


@pytest.mark.parametrize("data", CORRUPT, ids=lambda d: repr(d)[:40])
def test_corrupt_bytes_raise_codec_error(data):
    with pytest.raises(CodecError, match="cannot decode"):
        loads(data)


def test_loads_of_something_that_is_not_bytes():
    with pytest.raises(CodecError, match="cannot decode"):
        loads("not bytes")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_codec_error(data):
    try:
        loads(data)
    except CodecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_damaged_payloads_decode_or_raise_codec_error(position, byte):
    payload = bytearray(dumps({"p": Point(1, 2), "t": (1, {2}), "e": KeyError("k")}))
    payload[position % len(payload)] = byte
    try:
        loads(bytes(payload))
    except CodecError:
        pass


# ------------------------------------------------------------------ encode errors
class Holder:
    def __init__(self, conn: object) -> None:
        self.conn = conn


@dataclass
class User:
    name: str
    conn: object


def _local_dataclass() -> object:
    @dataclass
    class Local:
        x: int

    return Local(1)


ENCODE_ERRORS = [
    ({"user": User("u", object())}, "value['user'].conn", "object of type object is not supported"),
    ([1, [2, Holder(1)]], "value[1][1]", "test_codec.Holder is not supported; use plain data"),
    ((0, {"k": (1, lambda: 0)}), "value[1]['k'][1]", "function is not supported"),
    ({"s": {1, 2, object()}}, "value['s']<item", "object of type object"),
    ({object(): 1}, "value<key <object object", "not supported"),
    (ValueError(object()), "value.args[0]", "object of type object"),
    ({"l": MyList([1])}, "value['l']", "(a subclass of list) is not supported"),
    ([MyStr("s")], "value[0]", "(a subclass of str) is not supported"),
    ({"local": _local_dataclass()}, "value['local']", "defined inside a function"),
    ({"m": memoryview(b"x")}, "value['m']", "memoryview is not supported"),
]


@pytest.mark.parametrize(
    ("value", "path", "message"), [pytest.param(*case, id=case[1]) for case in ENCODE_ERRORS]
)
def test_encode_errors_name_the_path_and_the_type(value, path, message):
    with pytest.raises(CodecError) as caught:
        dumps(value)

    assert caught.value.path.startswith(path)
    assert str(caught.value).startswith(f"cannot encode {caught.value.path}: ")
    assert message in str(caught.value)


def test_unsupported_time_zone_is_named():
    class Odd(tzinfo):
        def utcoffset(self, dt: object) -> timedelta:
            return timedelta(0)

    with pytest.raises(CodecError, match=r"value\['d'\]: time zone .* is not supported"):
        dumps({"d": datetime(2024, 1, 1, tzinfo=Odd())})


def test_error_path_inside_a_graph():
    shared = [object()]
    with pytest.raises(CodecError) as caught:
        dumps({"a": shared, "b": shared})

    assert caught.value.path == "value['a'][0]"


def test_nesting_too_deep_is_a_codec_error():
    value: list[object] = []
    for _ in range(2000):
        value = [value]

    with pytest.raises(CodecError, match="nested too deeply"):
        dumps(value)


# ------------------------------------------------------------------ properties
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**130), max_value=2**130)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.decimals(allow_nan=False)
    | st.sampled_from([Color.RED, Level.LOW, Mode.READ, Perm.R | Perm.W])
)
_hashables = st.recursive(
    _leaves.filter(lambda v: not (isinstance(v, float) and math.isnan(v))),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=4,
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_hashables, inner, max_size=4)
        | st.sets(_hashables, max_size=3)
        | st.builds(Point, inner, inner)
        | st.builds(lambda a: PaymentError(str(a), 1), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_round_trip_property(value):
    assert same(round_trip(value), value)


@settings(max_examples=100, deadline=None)
@given(st.lists(_values, min_size=1, max_size=3))
def test_sharing_property(values):
    pool = [list(values), dict(enumerate(values))]
    graph = [pool[0], pool[1], pool[0], {"again": pool[1]}]

    result = round_trip(graph)

    assert result[0] is result[2]  # type: ignore[index]
    assert result[1] is result[3]["again"]  # type: ignore[index]
    assert same(result[0], pool[0])  # type: ignore[index]
