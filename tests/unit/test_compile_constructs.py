"""Table tests per construct: what a compiled workflow returns, what ran, and its DAG.

Each row names a sample workflow in ``tests/unit/compile_samples`` (the compiler reads
source with ``inspect``, so samples live in real modules), the arguments, the expected
result, the expected call log (actions and inline helper calls, in order) and the
expected shape of the DAG. Each row is checked three ways: ``run_inline``, plain asyncio
Python (the oracle: the expectation itself must be right), and the compiled graph.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pytest

from rappelx._workflow import definition
from rappelx.testing import run_inline, run_plain
from tests.unit.compile_samples.actions import LOG

SAMPLES = "tests.unit.compile_samples"
SUSPENDING = ("action", "gather", "sleep", "call")
STRUCTURAL = frozenset({"branch", "catch", "finally", "jump"})


@dataclass(frozen=True)
class Raises:
    """The workflow raises exactly ``exc_type`` with ``args``."""

    exc_type: type[BaseException]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Shape:
    """The expected DAG, summarized.

    Attributes:
        awaits: Exact number of suspension nodes by kind (action, gather, sleep, call)
            over ``run`` and every helper it reaches.
        kinds: Exactly which structural node kinds appear (branch, catch, finally, jump).
        loops: How many loops await: distinct targets of marked back-edges.
    """

    awaits: Mapping[str, int]
    kinds: frozenset[str] = frozenset()
    loops: int = 0


@dataclass(frozen=True)
class Row:
    """One construct sample and everything expected of it."""

    sample: str  # "module.Class" under tests/unit/compile_samples
    result: Any
    log: list[str]
    shape: Shape
    args: tuple[Any, ...] = ()
    ordered: bool = True  # False: concurrent gather fibers interleave, compare as a multiset
    plain_args: tuple[Any, ...] | None = None  # arguments for the plain run, when different
    note: str = ""


def act(n: int = 1, **more: int) -> dict[str, int]:
    return {"action": n, **more} if n else dict(more)


BR = frozenset({"branch"})
TRY = frozenset({"branch", "catch"})

ROWS: list[Row] = [
    # ---- awaits, alone and nested in expressions (hoisted in evaluation order)
    Row("awaits.CsSingle", 3, ["a"], Shape(act()), args=(3,)),
    Row("awaits.CsReturnAwait", 7, ["r"], Shape(act())),
    Row("awaits.CsBinOp", 9, ["left", "right", "inline"], Shape(act(2))),
    Row("awaits.CsCallArgs", (1, 2, 3), ["h", "g", "k", "combine"], Shape(act())),
    Row("awaits.CsActionArgs", (1, 2), ["h", "g", "pair"], Shape(act(2))),
    Row("awaits.CsKeywordArgs", (1, 2), ["b", "a", "pair"], Shape(act(3))),
    Row("awaits.CsMethodReceiver", [3], ["recv", "v"], Shape(act())),
    Row("awaits.CsDictLiteral", {"a": 1, "b": 2}, ["k1", "v1", "v2"], Shape(act(3))),
    Row(
        "awaits.CsSubscriptTarget",
        {"a": 1},
        ["value", "key"],
        Shape(act(2)),
        note="Python evaluates the value before the target's subscript",
    ),
    Row("awaits.CsIfAwait", "yes", ["test"], Shape(act(), BR), args=(True,)),
    Row("awaits.CsIfAwait", "no", ["test"], Shape(act(), BR), args=(False,)),
    Row("awaits.CsAugName", 5, ["x"], Shape(act())),
    Row("awaits.CsAnnotated", 5, ["n"], Shape(act())),
    Row("awaits.CsAssertPass", "passed", ["ok"], Shape(act(2), BR)),
    Row(
        "awaits.CsAssertFail",
        Raises(AssertionError, ("bad",)),
        ["check", "message"],
        Shape(act(2), BR),
    ),
    Row("awaits.CsUnaryNot", "negated", ["a", "inside"], Shape(act(2), BR)),
    Row("awaits.CsFStringAwaits", "<1|2>", ["one", "two"], Shape(act(2))),
    Row("fstrings.CsFString", "1-m-  2", ["one", "mid", "two"], Shape(act(2))),
    # ---- short-circuit: the skipped action ("never") must not run
    Row("shortcircuit.CsAndSkips", 0, ["a"], Shape(act(2), BR)),
    Row("shortcircuit.CsAndRuns", 3, ["a", "b"], Shape(act(2), BR)),
    Row("shortcircuit.CsOrSkips", 3, ["a"], Shape(act(2), BR)),
    Row("shortcircuit.CsOrRuns", 5, ["a", "b"], Shape(act(2), BR)),
    Row("shortcircuit.CsBoolNested", 7, ["a", "b", "c"], Shape(act(3), BR)),
    Row("shortcircuit.CsTernary", 1, ["cond", "yes"], Shape(act(3), BR), args=(True,)),
    Row("shortcircuit.CsTernary", 2, ["cond", "no"], Shape(act(3), BR), args=(False,)),
    Row("shortcircuit.CsChainAll", True, ["a", "b", "c"], Shape(act(3), BR)),
    Row("shortcircuit.CsChainStops", False, ["a", "b"], Shape(act(3), BR)),
    Row("shortcircuit.CsChainMixed", True, ["low", "mid", "high"], Shape(act())),
    # ---- list comprehensions that await: one element after another
    Row(
        "comprehensions.CsCompFilter",
        [20, 40],
        ["p1", "p2", "x2", "p3", "p4", "x4"],
        Shape(act(), BR, loops=1),
        args=([1, 2, 3, 4],),
    ),
    Row("comprehensions.CsCompNested", ["ax", "bx"], ["ax", "bx"], Shape(act(), BR, loops=2)),
    Row("comprehensions.CsCompNoLeak", ("outer", [1, 2]), ["1", "2"], Shape(act(), BR, loops=1)),
    Row(
        "comprehensions.CsCompInline",
        {"squares": {0: 0, 1: 3, 2: 6}, "odd": {1, 3, 5}, "total": 3},
        ["base"],
        Shape(act()),
        note="set/dict comprehensions and generators without await stay inline",
    ),
    # ---- assignments of every shape
    Row("assignments.CsAugSubscript", {"a": 11}, ["key", "inc"], Shape(act())),
    Row("assignments.CsAugAttribute", 6, ["obj", "inc"], Shape(act())),
    Row("assignments.CsUnpack", (1, 2, [3, 4]), ["t"], Shape(act())),
    Row("assignments.CsChainedAssign", ([1, 2], True), ["v"], Shape(act())),
    Row("assignments.CsWalrusIf", 6, ["n"], Shape(act(), BR)),
    Row("assignments.CsWalrusInline", ([4, 6], 6), ["between"], Shape(act()), args=([1, 2, 3],)),
    Row("assignments.CsDelName", "UnboundLocalError", ["x", "after"], Shape(act(2), TRY)),
    Row("assignments.CsDelSubscript", {"b": 2}, ["k", "after"], Shape(act(2))),
    Row(
        "assignments.CsAugSelfAttribute",
        3,
        ["c0", "c1", "c2"],
        Shape(act(), BR, loops=1),
        note="self.count += await ...: the workflow object itself must not become a temporary",
    ),
    Row(
        "mangling.CsMangledAttr",
        (4, 5, True, False),
        ["x", "after"],
        Shape(act(2)),
    ),
    Row("mangled_helper.CsMangledHelper", 5, ["m"], Shape(act(1, call=1))),
    # ---- closures, lambdas, aliasing, loops over mutated lists
    Row("closures.CsClosures", [10, 11, 12, 20], ["base", "after"], Shape(act(2))),
    Row("scoping.CsLateBinding", (1, 2), ["base", "after"], Shape(act(2))),
    Row("scoping.CsLambdaAfterLast", [3, 2, 1], ["sign"], Shape(act()), args=([1, 3, 2],)),
    Row("scoping.CsAliasing", ([1, 2], True, True), ["x", "y"], Shape(act(2))),
    Row(
        "scoping.CsLoopAppend",
        [1, 2, 3, 4],
        ["i1", "i2", "i3", "i4"],
        Shape(act(), BR, loops=1),
    ),
    Row("scoping.CsLoopRemove", ([1, 3], [2, 4]), ["i1", "i3"], Shape(act(), BR, loops=1)),
    # ---- control flow
    Row("control.CsElif", "big", ["big?", "big"], Shape(act(3), BR), args=(7,)),
    Row("control.CsElif", "mid", ["big?", "mid"], Shape(act(3), BR), args=(3,)),
    Row("control.CsElif", "small", ["big?"], Shape(act(3), BR), args=(1,)),
    Row("control.CsForRange", 6, ["r0", "r1", "r2", "r3"], Shape(act(), BR, 1), args=(4,)),
    Row("control.CsForRange", 0, [], Shape(act(), BR, 1), args=(0,)),
    Row(
        "control.CsForIterables",
        [(0, "a"), (1, "b"), 2, 1, 1, 2, "y", "x", 0, 2],
        ["e0", "e1", "db", "da", "za", "zb", "y", "x", "g0", "g2"],
        Shape(act(5), BR, loops=5),
        args=({"b": 2, "a": 1},),
    ),
    Row(
        "control.CsBreakContinueElse",
        ([0, 2], "broke"),
        ["c0", "c2", "c3"],
        Shape(act(), BR, 1),
        args=(3,),
    ),
    Row(
        "control.CsBreakContinueElse",
        ([0, 2, 3, 4], "exhausted"),
        ["c0", "c2", "c3", "c4"],
        Shape(act(), BR, 1),
        args=(99,),
    ),
    Row("control.CsWhile", 103, ["w0", "w1", "w2", "w3"], Shape(act(), BR, 1)),
    Row(
        "control.CsNestedLoops",
        [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)],
        ["00", "10", "11", "20", "21", "22"],
        Shape(act(), BR, loops=2),
    ),
    Row("control.CsReturnInLoop", 200, ["t0", "t1", "t2"], Shape(act(), BR, 1)),
    # ---- exceptions
    Row(
        "exceptions.CsExceptTuple",
        ("caught", "ValueError", ("boom",)),
        ["boom"],
        Shape(act(), TRY),
    ),
    Row("exceptions.CsExceptHierarchy", "lookup KeyError", ["k"], Shape(act(), TRY)),
    Row(
        "exceptions.CsElseFinally",
        "done",
        ["body", "handler", "finally"],
        Shape(act(5), TRY | {"finally"}),
        args=(True,),
    ),
    Row(
        "exceptions.CsElseFinally",
        "done",
        ["body", "else", "finally"],
        Shape(act(5), TRY | {"finally"}),
        args=(False,),
    ),
    Row(
        "exceptions.CsBareRaise",
        Raises(ValueError, ("inner",)),
        ["inner", "cleanup"],
        Shape(act(2), TRY),
    ),
    Row(
        "exceptions.CsRaiseFrom",
        (("wrapped",), "ValueError", "ValueError"),
        ["inner"],
        Shape(act(), TRY),
    ),
    Row(
        "exceptions.CsContext",
        ("ValueError", ("first",), True),
        ["first", "handling"],
        Shape(act(2), TRY),
    ),
    Row(
        "exceptions.CsFinallyReturn",
        "from body",
        ["body", "finally"],
        Shape(act(2), frozenset({"catch", "finally"})),
    ),
    Row(
        "exceptions.CsFinallyOverrides",
        "swallowed",
        ["body", "finally"],
        Shape(act(2), frozenset({"catch"})),
    ),
    Row(
        "exceptions.CsBreakThroughFinally",
        ["body0", "finally0", "body1", "finally1"],
        ["b0", "f0", "b1", "f1"],
        Shape(act(), frozenset({"branch", "catch", "finally", "jump"}), loops=1),
    ),
    Row(
        "exceptions.CsHandlerNameCleared",
        "UnboundLocalError",
        ["x", "in handler"],
        Shape(act(2), TRY),
    ),
    Row(
        "exceptions.CsFinallyContext",
        "ValueError",
        ["pending", "finally"],
        Shape(act(2), TRY | {"finally"}),
    ),
    Row(
        "exceptions.CsUncaught",
        Raises(KeyError, ("escapes",)),
        ["before", "escapes"],
        Shape(act(2)),
    ),
    # ---- gather and sleep
    Row("gathers.CsGatherActions", (1, 2), ["a", "b"], Shape(act(0, gather=1))),
    Row(
        "gathers.CsGatherStar",
        [0, 4, 9],
        ["x0", "x2", "x3"],
        Shape(act(0, gather=1)),
        args=(4,),
    ),
    Row("gathers.CsGatherEmpty", [], [], Shape(act(0, gather=1))),
    Row(
        "gathers.CsGatherHelpers",
        [2, "#2", "negative", 0],
        ["d1", "e1", "l2", "z"],
        Shape(act(3, gather=1), BR),
        ordered=False,
    ),
    Row(
        "gathers.CsGatherReturnExceptions",
        [1, "ValueError", "KeyError"],
        ["ok", "bad", "worse"],
        Shape(act(0, gather=1)),
    ),
    Row(
        "gathers.CsGatherLowestFailure",
        "KeyError",
        ["ok", "first", "second"],
        Shape(act(0, gather=1), TRY),
    ),
    Row("gathers.CsGatherRunAction", [1, 2], ["policy", "plain"], Shape(act(0, gather=1))),
    Row(
        "gathers.CsSleep",
        ("woke", None),
        ["delay"],
        Shape(act(1, sleep=2)),
        args=(3600,),
        plain_args=(0.01,),
        note="an hour of durable sleep passes on the virtual clock",
    ),
    # ---- helpers and run_action
    Row("helpers.CsHelperEarlyReturn", [2, -1], ["pos2"], Shape(act(1, call=2), BR)),
    Row("helpers.CsHelperChain", 33, ["inner3", "inner3"], Shape(act(1, call=3))),
    Row("helpers.CsRunAction", 2, ["policy"], Shape(act()), args=(2,)),
]


def load(sample: str) -> type:
    module, _, cls = sample.rpartition(".")
    found: type = getattr(importlib.import_module(f"{SAMPLES}.{module}"), cls)
    return found


def row_id(row: Row) -> str:
    return f"{row.sample}{row.args!r}" if row.args else row.sample


def typed(value: Any) -> Any:
    """``value`` with the exact type of every part, so 1 != 1.0 and (1,) != [1]."""
    if isinstance(value, list | tuple):
        return (type(value), [typed(v) for v in value])
    if isinstance(value, dict):
        return (dict, [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, set | frozenset):
        return (type(value), sorted(map(repr, value)))
    return (type(value), value)


async def outcome(run: Any) -> tuple[Any, list[str]]:
    """The result (or ``Raises``) of awaiting ``run``, and the call log it wrote."""
    LOG.clear()
    try:
        result: Any = typed(await run)
    except Exception as exc:
        result = Raises(type(exc), exc.args)
    return result, list(LOG)


def expected_outcome(row: Row) -> tuple[Any, list[str]]:
    result = row.result if isinstance(row.result, Raises) else typed(row.result)
    return result, row.log


def comparable(found: tuple[Any, list[str]], ordered: bool) -> tuple[Any, list[str]]:
    return found if ordered else (found[0], sorted(found[1]))


@pytest.mark.parametrize("row", ROWS, ids=row_id)
async def test_run_inline(row: Row) -> None:
    cls = load(row.sample)
    found = await outcome(run_inline(cls, *row.args))
    assert comparable(found, row.ordered) == comparable(expected_outcome(row), row.ordered)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
async def test_plain_python_agrees(row: Row) -> None:
    """The table itself is right: plain asyncio Python gives the same result and log."""
    cls = load(row.sample)
    args = row.plain_args if row.plain_args is not None else row.args
    found = await outcome(run_plain(cls, *args))
    assert comparable(found, row.ordered) == comparable(expected_outcome(row), row.ordered)


def shape_of(graph: nx.MultiDiGraph) -> Shape:
    kinds = Counter(data["kind"] for _, data in graph.nodes(data=True))
    heads = {dst for _, dst, data in graph.edges(data=True) if data["back"]}
    return Shape(
        awaits={k: kinds[k] for k in SUSPENDING if kinds[k]},
        kinds=frozenset(kinds) & STRUCTURAL,
        loops=len(heads),
    )


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_dag_shape(row: Row) -> None:
    shape = shape_of(definition(load(row.sample)).compiled.graph)
    assert shape == row.shape


# ------------------------------------------------------------------ structure in detail
def graph_of(sample: str) -> nx.MultiDiGraph:
    return definition(load(sample)).compiled.graph


def edges(graph: nx.MultiDiGraph, node: str, kind: str) -> list[str]:
    return [dst for _, dst, data in graph.out_edges(node, data=True) if data["kind"] == kind]


def nodes_of(graph: nx.MultiDiGraph, kind: str, function: str = "run") -> list[str]:
    return [
        n
        for n, data in graph.nodes(data=True)
        if data["kind"] == kind and data["function"] == function
    ]


def entry(graph: nx.MultiDiGraph, function: str) -> str:
    (found,) = [n for n, d in graph.nodes(data=True) if d["entry"] and d["function"] == function]
    return str(found)


def straight_line(graph: nx.MultiDiGraph) -> list[str]:
    """Labels of the nodes on ``run``'s path from entry while there is one way on."""
    labels: list[str] = []
    node = entry(graph, "run")
    while True:
        labels.append(graph.nodes[node]["label"])
        onward = edges(graph, node, "next")
        if len(onward) != 1:
            return labels
        node = onward[0]


def control_graph(graph: nx.MultiDiGraph) -> nx.DiGraph:
    control = nx.DiGraph()
    control.add_nodes_from(graph.nodes)
    control.add_edges_from((u, v) for u, v, d in graph.edges(data=True) if d["kind"] != "data")
    return control


@pytest.mark.parametrize(
    ("sample", "actions"),
    [
        ("awaits.CsBinOp", ["rec('left', 2)", "rec('right', 5)"]),
        ("awaits.CsKeywordArgs", ["rec('b', 2)", "rec('a', 1)", "pair(b=await rec('b', 2)"]),
        ("awaits.CsDictLiteral", ["rec('k1', 'a')", "rec('v1', 1)", "rec('v2', 2)"]),
        ("awaits.CsSubscriptTarget", ["rec('value', 1)", "rec('key', 'a')"]),
    ],
)
def test_hoisted_awaits_in_evaluation_order(sample: str, actions: list[str]) -> None:
    graph = graph_of(sample)
    labels = straight_line(graph)
    found = [label for label in labels if label.startswith(("rec(", "pair("))]
    assert len(found) == len(actions)
    for label, prefix in zip(found, actions, strict=True):
        assert label.startswith(prefix)


def test_if_with_await_is_a_branch_to_each_arm() -> None:
    graph = graph_of("control.CsElif")
    # The test is hoisted into a temporary; the label shows the await it stands for.
    (test,) = [
        n for n in nodes_of(graph, "branch") if "await rec('big?'" in graph.nodes[n]["label"]
    ]
    assert graph.nodes[test]["label"] == "if await rec('big?', n > 5)"
    assert all("_rx_" not in graph.nodes[n]["label"] for n in graph.nodes)
    (true,) = edges(graph, test, "true")
    (false,) = edges(graph, test, "false")
    assert graph.nodes[true]["label"] == "rec('big', 'big')"
    assert graph.nodes[false]["kind"] == "branch"  # the elif
    assert graph.nodes[false]["label"] == "if n > 2"


def test_short_circuit_skipped_action_is_off_the_main_path() -> None:
    graph = graph_of("shortcircuit.CsAndSkips")
    (never,) = [n for n in nodes_of(graph, "action") if "never" in graph.nodes[n]["label"]]
    (branch,) = nodes_of(graph, "branch")
    (true,) = edges(graph, branch, "true")
    control = control_graph(graph)
    assert never == true or never in nx.descendants(control, true)
    (ret,) = nodes_of(graph, "return")
    control.remove_node(never)
    assert nx.has_path(control, entry(graph, "run"), ret)


def test_loop_back_edge_returns_to_the_loop_head() -> None:
    graph = graph_of("control.CsForRange")
    back = [(u, v) for u, v, d in graph.edges(data=True) if d["back"]]
    assert len(back) == 1
    source, head = back[0]
    assert graph.nodes[head]["kind"] == "branch"
    assert graph.nodes[head]["label"] == "for i in range(n)"
    (body_action,) = nodes_of(graph, "action")
    assert nx.has_path(graph, edges(graph, head, "true")[0], body_action)
    assert nx.has_path(graph, body_action, source)


def test_try_has_catch_nodes_and_exception_edges() -> None:
    graph = graph_of("exceptions.CsExceptTuple")
    (boom,) = nodes_of(graph, "action")
    (catch,) = edges(graph, boom, "exception")
    assert graph.nodes[catch]["kind"] == "catch"
    (dispatch,) = edges(graph, catch, "next")
    assert graph.nodes[dispatch]["kind"] == "branch"
    assert graph.nodes[dispatch]["label"] == "except (KeyError, ValueError)"


def test_try_finally_every_await_in_the_body_has_an_exception_edge() -> None:
    graph = graph_of("exceptions.CsElseFinally")
    body = [
        n for n in nodes_of(graph, "action") if graph.nodes[n]["label"].startswith("fail('body'")
    ]
    assert len(body) == 1
    (catch,) = edges(graph, body[0], "exception")
    assert graph.nodes[catch]["kind"] == "catch"
    (fin,) = nodes_of(graph, "finally")
    assert nx.has_path(graph, catch, fin)


def test_gather_of_helpers_has_call_edges_to_each_helper_entry() -> None:
    graph = graph_of("gathers.CsGatherHelpers")
    (gather,) = nodes_of(graph, "gather")
    targets = edges(graph, gather, "call")
    assert sorted(targets) == sorted(
        [entry(graph, "double"), entry(graph, "label"), entry(graph, "label")]
    )
    assert all(graph.nodes[t]["entry"] for t in targets)


def test_awaited_helper_has_a_call_edge() -> None:
    graph = graph_of("helpers.CsHelperChain")
    (call,) = nodes_of(graph, "call")
    assert edges(graph, call, "call") == [entry(graph, "outer")]
    inner_calls = nodes_of(graph, "call", function="outer")
    assert len(inner_calls) == 2
    assert all(edges(graph, c, "call") == [entry(graph, "inner")] for c in inner_calls)
