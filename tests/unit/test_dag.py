"""The compiled DAG: typed networkx graph, marked back-edges, validation, version hash.

Golden files in ``tests/unit/golden`` pin the full description of two bigger workflows.
After an intended compiler change, regenerate them with::

    RAPPELX_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_dag.py

and review the diff like any other change.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from rappelx import Workflow
from rappelx._workflow import definition
from rappelx.compiler import compile_workflow
from rappelx.compiler._graph import validate
from rappelx.exceptions import RappelxError
from tests.unit.compile_samples import golden_flows

SAMPLE_MODULES = (
    "awaits",
    "shortcircuit",
    "comprehensions",
    "assignments",
    "mangling",
    "scoping",
    "control",
    "exceptions",
    "gathers",
    "helpers",
    "golden_flows",
)
NODE_KINDS = {
    "inline",
    "branch",
    "action",
    "gather",
    "sleep",
    "call",
    "return",
    "jump",
    "catch",
    "finally",
}
EDGE_KINDS = {"next", "true", "false", "exception", "finally", "call", "data"}
GOLDEN = Path(__file__).parent / "golden"


def sample_workflows() -> list[Any]:
    found = []
    for name in SAMPLE_MODULES:
        module = importlib.import_module(f"tests.unit.compile_samples.{name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Workflow)
                and value.__module__ == module.__name__
            ):
                found.append(pytest.param(value, id=value.__name__))
    return found


WORKFLOWS = sample_workflows()


def control_edges(graph: nx.MultiDiGraph, *, back: bool) -> list[tuple[str, str]]:
    return [
        (u, v)
        for u, v, d in graph.edges(data=True)
        if d["kind"] != "data" and (back or not d["back"])
    ]


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize("cls", WORKFLOWS)
def test_labels_and_guards_show_the_users_names_not_the_compilers(cls: type) -> None:
    # Hoisting, loops, comprehensions and handlers introduce _rx_ temporaries; what a
    # drawing shows is the source they stand for (or words for rappelx's bookkeeping).
    graph = definition(cls).compiled.graph
    labels = [d["label"] for _, d in graph.nodes(data=True)]
    guards = [d["guard"] for _, _, d in graph.edges(data=True) if d.get("guard")]
    assert [text for text in labels + guards if "_rx_" in text] == []


def test_a_hoisted_await_is_shown_where_the_user_wrote_it() -> None:
    graph = definition(
        importlib.import_module("tests.unit.compile_samples.assignments").CsAugSubscript
    ).compiled.graph
    labels = {d["label"] for _, d in graph.nodes(data=True)}
    assert "data[note('key', 'a')] += await rec('inc', 10) + clobber(..." in labels


# ------------------------------------------------------------------ graph structure
@pytest.mark.parametrize("cls", WORKFLOWS)
def test_graph_is_a_typed_multidigraph(cls: type) -> None:
    graph = definition(cls).compiled.graph
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.graph["workflow"] == cls.__name__
    for node, data in graph.nodes(data=True):
        assert data["kind"] in NODE_KINDS, node
        assert isinstance(data["line"], int) and data["line"] > 0, node
        assert isinstance(data["label"], str) and data["label"], node
        assert node.startswith(f"{data['function']}:")
    for u, v, data in graph.edges(data=True):
        assert data["kind"] in EDGE_KINDS, (u, v)
        assert isinstance(data["back"], bool)
        if data["kind"] in ("true", "false"):
            assert graph.nodes[u]["kind"] == "branch"
            assert data["guard"], (u, v)
        if data["kind"] == "exception":
            assert graph.nodes[v]["kind"] == "catch"
        if data["kind"] == "call":
            assert (
                graph.nodes[v]["entry"] and graph.nodes[v]["function"] != graph.nodes[u]["function"]
            )
        if data["kind"] == "data":
            assert data["var"]


@pytest.mark.parametrize("cls", WORKFLOWS)
def test_acyclic_once_back_edges_are_removed(cls: type) -> None:
    graph = definition(cls).compiled.graph
    forward = nx.DiGraph(control_edges(graph, back=False))
    forward.add_nodes_from(graph.nodes)
    assert nx.is_directed_acyclic_graph(forward)
    for u, v, data in graph.edges(data=True):
        if data["back"]:
            # A loop back-edge closes a loop: its target leads forward to its source.
            assert nx.has_path(forward, v, u), (u, v)


@pytest.mark.parametrize("cls", WORKFLOWS)
def test_every_node_is_reachable_from_run(cls: type) -> None:
    graph = definition(cls).compiled.graph
    control = nx.DiGraph(control_edges(graph, back=True))
    control.add_nodes_from(graph.nodes)
    (entry,) = [n for n, d in graph.nodes(data=True) if d["entry"] and d["function"] == "run"]
    assert nx.descendants(control, entry) | {entry} == set(graph.nodes)


@pytest.mark.parametrize("cls", WORKFLOWS)
def test_validation_passes(cls: type) -> None:
    compiled = definition(cls).compiled
    validate(compiled.program, compiled.graph)


def test_loop_back_edges_are_marked() -> None:
    from tests.unit.compile_samples.control import CsNestedLoops, CsWhile

    for cls, loops in ((CsWhile, 1), (CsNestedLoops, 2)):
        graph = definition(cls).compiled.graph
        heads = {v for _, v, d in graph.edges(data=True) if d["back"]}
        assert len(heads) == loops
        assert not nx.is_directed_acyclic_graph(nx.DiGraph(control_edges(graph, back=True)))


def test_straight_line_workflow_has_no_back_edges() -> None:
    from tests.unit.compile_samples.awaits import CsKeywordArgs

    graph = definition(CsKeywordArgs).compiled.graph
    assert not any(d["back"] for *_, d in graph.edges(data=True))


def test_data_edges_link_a_write_to_its_reads() -> None:
    from tests.unit.compile_samples.awaits import CsSingle

    graph = definition(CsSingle).compiled.graph
    data = [(u, v, d["var"]) for u, v, d in graph.edges(data=True) if d["kind"] == "data"]
    (action,) = [n for n, d in graph.nodes(data=True) if d["kind"] == "action"]
    (ret,) = [n for n, d in graph.nodes(data=True) if d["kind"] == "return"]
    assert (action, ret, "value") in data


# ------------------------------------------------------------------ the validator itself
@pytest.fixture
def compiled_loop() -> Any:
    from tests.unit.compile_samples.control import CsForRange

    return definition(CsForRange).compiled


def test_validate_rejects_an_unmarked_cycle(compiled_loop: Any) -> None:
    graph = compiled_loop.graph.copy()
    for _, _, data in graph.edges(data=True):
        data["back"] = False
    with pytest.raises(RappelxError, match="unmarked cycle"):
        validate(compiled_loop.program, graph)


def test_validate_rejects_an_unreachable_node(compiled_loop: Any) -> None:
    graph = compiled_loop.graph.copy()
    graph.add_node("run:999", function="run", kind="inline", line=1, label="x", entry=False)
    with pytest.raises(RappelxError, match="unreachable"):
        validate(compiled_loop.program, graph)


def test_validate_rejects_an_edge_to_nowhere(compiled_loop: Any) -> None:
    graph = compiled_loop.graph.copy()
    source = next(iter(graph.nodes))
    graph.add_edge(source, "run:999", kind="next", back=False, guard="")
    with pytest.raises(RappelxError, match="no target"):
        validate(compiled_loop.program, graph)


# ------------------------------------------------------------------ version hash
BASE = """\
from __future__ import annotations

from rappelx import Workflow
from tests.unit.compile_samples.actions import pair, rec


class HashProbe(Workflow):
    async def run(self, n: int) -> int:
        total = await rec("a", n)
        if total > 1:
            total += await rec("b", 1)
        return total
"""

COSMETIC = {
    "comments": BASE.replace(
        "        total = await rec", "        # fetch first\n        total = await rec"
    ).replace("return total", "return total  # done"),
    "blank lines": BASE.replace("        if total", "\n\n        if total"),
    "moved down": BASE.replace("class HashProbe", "# spacer\n\n\n\n\nclass HashProbe"),
    "reformatted call": BASE.replace(
        'rec("a", n)', 'rec(\n            "a",\n            n,\n        )'
    ),
}
SEMANTIC = {
    "constant": BASE.replace('rec("a", n)', 'rec("c", n)'),
    "operator": BASE.replace("total > 1", "total >= 1"),
    "other action": BASE.replace('rec("b", 1)', 'pair("b", 1)'),
    "variable name": BASE.replace("total", "sum_"),
    "extra await": BASE.replace(
        "        return total", '        await rec("x")\n        return total'
    ),
}


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Compile ``HashProbe`` from a source text; return its version hash."""
    sys.path.insert(0, str(tmp_path))
    names: list[str] = []

    def version(source: str) -> str:
        name = f"rx_hash_probe_{len(names)}"
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
        names.append(name)
        module = importlib.import_module(name)
        return compile_workflow(module.HashProbe, "HashProbe").version

    yield version
    sys.path.remove(str(tmp_path))
    for name in names:
        sys.modules.pop(name, None)


def test_version_is_stable_across_recompiles(probe: Callable[[str], str]) -> None:
    first = probe(BASE)
    assert probe(BASE) == first
    from tests.unit.compile_samples.awaits import CsSingle

    again = compile_workflow(CsSingle, "CsSingle")
    assert again.version == definition(CsSingle).version


@pytest.mark.parametrize("change", sorted(COSMETIC))
def test_version_ignores_comments_and_layout(change: str, probe: Callable[[str], str]) -> None:
    assert probe(COSMETIC[change]) == probe(BASE)


@pytest.mark.parametrize("change", sorted(SEMANTIC))
def test_version_changes_with_the_code(change: str, probe: Callable[[str], str]) -> None:
    assert probe(SEMANTIC[change]) != probe(BASE)


def test_version_is_the_same_in_another_process() -> None:
    script = (
        "from rappelx._workflow import definition\n"
        "from tests.unit.compile_samples.golden_flows import GoldenOrder\n"
        "print(definition(GoldenOrder).version)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env=env,
        timeout=60,
    )
    assert out.stdout.strip() == definition(golden_flows.GoldenOrder).version


def test_declared_version_prefixes_the_hash(tmp_path: Path) -> None:
    source = BASE.replace("from rappelx import Workflow", "from rappelx import Workflow, workflow")
    source = source.replace("class HashProbe", '@workflow(version="7")\nclass HashProbeDeclared')
    (tmp_path / "rx_declared_probe.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("rx_declared_probe")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("rx_declared_probe", None)
    wf = definition(module.HashProbeDeclared)
    assert wf.version == f"7-{wf.compiled.version}"
    assert len(wf.compiled.version) == 16 and int(wf.compiled.version, 16) >= 0


# ------------------------------------------------------------------ golden files
def golden_text(cls: type) -> str:
    """``describe()`` (with lines) and the control edges, one node or edge per line."""
    compiled = definition(cls).compiled
    described = compiled.describe()
    out = [f"workflow {described['workflow']} version {compiled.version}"]
    for name, function in described["functions"].items():
        out.append(f"function {name}({', '.join(function['params'])}) entry {function['entry']}")
        out.extend(json.dumps(node, sort_keys=True, default=str) for node in function["nodes"])
    out.append("control edges")
    for u, v, data in sorted(compiled.graph.edges(data=True), key=lambda e: (e[0], e[1])):
        if data["kind"] != "data":
            out.append(f"{u} -> {v} {data['kind']}{' back' if data['back'] else ''}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("cls", [golden_flows.GoldenOrder, golden_flows.GoldenPoll])
def test_golden_description(cls: type) -> None:
    path = GOLDEN / f"{cls.__name__}.txt"
    current = golden_text(cls)
    if os.environ.get("RAPPELX_REGEN_GOLDEN") == "1":
        path.write_text(current, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with RAPPELX_REGEN_GOLDEN=1 to create it"
    assert current == path.read_text(encoding="utf-8"), (
        f"the DAG of {cls.__name__} changed; if that is intended, regenerate with "
        "RAPPELX_REGEN_GOLDEN=1 and review the diff"
    )
