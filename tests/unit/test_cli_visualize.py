"""``rappelx visualize``: DOT content, rendered SVG (or the DOT fallback), and errors."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rappelx._workflow import definition
from rappelx.cli._app import app

FLOWS = "rx_cli_vis_flows"
BROKEN = "rx_cli_vis_broken"

FLOWS_SOURCE = textwrap.dedent(
    """
    from __future__ import annotations

    import asyncio

    from rappelx import Workflow, action, workflow


    @action
    async def fetch(x: int) -> int:
        return x


    @action
    async def boom(x: int) -> int:
        raise KeyError(x)


    @workflow
    class VisLoop(Workflow):
        async def run(self, n: int) -> int:
            total = 0
            for i in range(n):
                if i % 2 == 0:
                    total += await fetch(i)
                else:
                    try:
                        await boom(i)
                    except LookupError:
                        total -= 1
            pair = await asyncio.gather(fetch(1), self.helper(2))
            return total + sum(pair)

        async def helper(self, x: int) -> int:
            return await fetch(x)


    class NotAWorkflow:
        pass
    """
)

BROKEN_SOURCE = textwrap.dedent(
    """
    from __future__ import annotations

    from rappelx import Workflow, workflow


    async def plain_coroutine() -> int:
        return 1


    @workflow
    class VisBroken(Workflow):
        async def run(self) -> int:
            return await plain_coroutine()
    """
)


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("flows")
    (directory / f"{FLOWS}.py").write_text(FLOWS_SOURCE)
    (directory / f"{BROKEN}.py").write_text(BROKEN_SOURCE)
    yield directory
    # The CLI put the directory on sys.path and imported the modules; undo that.
    while str(directory) in sys.path:
        sys.path.remove(str(directory))
    for name in (FLOWS, BROKEN):
        sys.modules.pop(name, None)


@pytest.fixture
def cli(flows_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(flows_dir)
    return CliRunner()


def line_of(text: str, source: str = FLOWS_SOURCE) -> int:
    """Line number of ``text`` in a module's source, as the compiler counts."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def gather_label() -> str:
    return f"gather · line {line_of('asyncio.gather')}\\nasyncio.gather(fetch(1), self.helper(2))"


def helper_entry_label() -> str:
    return f"entry · action · line {line_of('return await fetch(x)')}\\nfetch(x)"


_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')
_NODE = re.compile(r"^\s*(n\d+) \[(.*)\]$")
_EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?$")


def _attrs(text: str | None) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text or "")}


Nodes = dict[str, dict[str, str]]
Edges = list[tuple[str, str, dict[str, str]]]


def parse_dot(source: str) -> tuple[Nodes, Edges]:
    """Nodes by id and edges of the DOT text the graphviz package writes."""
    nodes: Nodes = {}
    edges: Edges = []
    for line in source.splitlines():
        if m := _EDGE.match(line):
            edges.append((m[1], m[2], _attrs(m[3])))
        elif m := _NODE.match(line):
            nodes[m[1]] = _attrs(m[2])
    return nodes, edges


def node_id(nodes: Nodes, label: str) -> str:
    found = [n for n, a in nodes.items() if a.get("label") == label]
    assert len(found) == 1, f"expected one node labelled {label!r}, got {found}: {nodes}"
    return found[0]


def edges_between(edges: Edges, src: str, dst: str) -> list[dict[str, str]]:
    return [a for s, d, a in edges if (s, d) == (src, dst)]


def visualize_dot(cli: CliRunner, *extra: str) -> str:
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop", *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_nodes_show_kind_line_and_label(cli: CliRunner) -> None:
    nodes, _ = parse_dot(visualize_dot(cli))
    fetch_i = node_id(nodes, f"action · line {line_of('await fetch(i)')}\\nfetch(i)")
    assert nodes[fetch_i]["shape"] == "box" and "rounded" in nodes[fetch_i]["style"]
    branch = node_id(nodes, f"branch · line {line_of('if i % 2')}\\nif i % 2 == 0")
    assert nodes[branch]["shape"] == "diamond"
    node_id(nodes, f"action · line {line_of('await boom(i)')}\\nboom(i)")
    node_id(nodes, gather_label())
    node_id(nodes, f"entry · inline · line {line_of('total = 0')}\\ntotal = 0")
    node_id(nodes, helper_entry_label())


def test_one_cluster_per_function(cli: CliRunner) -> None:
    source = visualize_dot(cli)
    clusters = re.findall(r'subgraph cluster_\d+ \{\s*color=\S+ label="([^"]+)"', source)
    assert clusters == ["run()", "helper()"]
    helper_block = source[source.index('label="helper()"') :]
    assert "fetch(x)" in helper_block and "fetch(i)" not in helper_block


def test_branch_edges_carry_their_guard(cli: CliRunner) -> None:
    nodes, edges = parse_dot(visualize_dot(cli))
    branch = node_id(nodes, f"branch · line {line_of('if i % 2')}\\nif i % 2 == 0")
    out = {a["label"]: a for s, _, a in edges if s == branch}
    assert set(out) == {"true: i % 2 == 0", "false: i % 2 == 0"}
    assert out["true: i % 2 == 0"]["color"] != out["false: i % 2 == 0"]["color"]


def test_exception_edge_is_dashed_red(cli: CliRunner) -> None:
    nodes, edges = parse_dot(visualize_dot(cli))
    boom = node_id(nodes, f"action · line {line_of('await boom(i)')}\\nboom(i)")
    raising = [(d, a) for s, d, a in edges if s == boom and a.get("label") == "raise"]
    assert len(raising) == 1
    target, attrs = raising[0]
    assert attrs["style"] == "dashed" and attrs["color"] == "red"
    assert nodes[target]["label"].startswith("catch · line ")


def test_loop_back_edges_are_bold_blue_and_unconstrained(cli: CliRunner) -> None:
    nodes, edges = parse_dot(visualize_dot(cli))
    header = node_id(nodes, f"branch · line {line_of('for i in')}\\nfor i in range(n)")
    back = [a for _, d, a in edges if a.get("constraint") == "false"]
    # Every path through the body closes the loop at its header: after fetch(i), after
    # boom(i), after the except body. The compiler's re-raise node (no except matched)
    # has a back edge too in the IR, but control never takes it: it is not drawn.
    graph = definition(sys.modules[FLOWS].VisLoop).compiled.graph
    marked = [(s, d) for s, d, a in graph.edges(data=True) if a["back"]]
    taken = [(s, d) for s, d in marked if not graph.nodes[s]["raises"]]
    assert len(taken) >= 3 and len(back) == len(taken) == len(marked) - 1
    assert {d for _, d, a in edges if a.get("constraint") == "false"} == {header}
    assert all(a["style"] == "bold" and a["color"] == "blue" for a in back)
    forward = [a for _, d, a in edges if d == header and "constraint" not in a]
    assert len(forward) == 1 and "style" not in forward[0]


def test_call_edge_enters_the_helper(cli: CliRunner) -> None:
    nodes, edges = parse_dot(visualize_dot(cli))
    gather = node_id(nodes, gather_label())
    helper_entry = node_id(nodes, helper_entry_label())
    (call,) = edges_between(edges, gather, helper_entry)
    assert call["label"] == "call" and call["style"] == "dotted"


def test_data_edges_only_with_data_flow(cli: CliRunner) -> None:
    _, plain = parse_dot(visualize_dot(cli))
    _, with_data = parse_dot(visualize_dot(cli, "--data-flow"))
    data = [a for _, _, a in with_data if a.get("color") == "gray55"]
    assert data and all(a["style"] == "dotted" and a["constraint"] == "false" for a in data)
    assert "total" in {a["label"] for a in data}
    assert not [a for _, _, a in plain if a.get("color") == "gray55"]
    assert len(with_data) == len(plain) + len(data)


def test_dot_file_output(cli: CliRunner, flows_dir: Path) -> None:
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop", "-o", "out/loop.dot"])
    assert result.exit_code == 0, result.output
    text = (flows_dir / "out" / "loop.dot").read_text()
    assert text.startswith("// rappelx workflow VisLoop") and "digraph VisLoop {" in text
    assert "wrote out/loop.dot" in result.stderr


def test_output_path_from_environment(cli: CliRunner, flows_dir: Path) -> None:
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop"], env={"RAPPELX_OUTPUT": "env.gv"})
    assert result.exit_code == 0, result.output
    assert "digraph VisLoop" in (flows_dir / "env.gv").read_text()
    assert result.stdout == ""


def test_svg_or_dot_fallback(cli: CliRunner, flows_dir: Path) -> None:
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop", "-o", "loop.svg"])
    assert result.exit_code == 0, result.output
    if shutil.which("dot") is not None:
        svg = (flows_dir / "loop.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "fetch(i)" in svg and "run()" in svg and "helper()" in svg
        assert 'stroke="red"' in svg and "stroke-dasharray" in svg
    else:
        assert not (flows_dir / "loop.svg").exists()
        assert "digraph VisLoop" in (flows_dir / "loop.dot").read_text()
        assert "'dot' program is not installed" in result.stderr


def test_missing_dot_binary_falls_back_to_dot_text(
    cli: CliRunner, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rappelx.cli._visualize.shutil.which", lambda name: None)
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop", "-o", "nodot.png"])
    assert result.exit_code == 0, result.output
    assert not (flows_dir / "nodot.png").exists()
    nodes, _ = parse_dot((flows_dir / "nodot.dot").read_text())
    node_id(nodes, f"action · line {line_of('await boom(i)')}\\nboom(i)")
    assert "'dot' program is not installed" in result.stderr
    assert "wrote DOT text to nodot.dot instead" in result.stderr
    assert "dot -Tpng nodot.dot -o nodot.png" in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("rx_no_such_module:Flow", "error: no module named 'rx_no_such_module'"),
        (
            f"{FLOWS}:Missing",
            f"error: module '{FLOWS}' has no attribute 'Missing'; workflows defined there: VisLoop",
        ),
        (f"{FLOWS}:NotAWorkflow", f"error: {FLOWS}:NotAWorkflow is not a workflow"),
        (f"{FLOWS}:fetch", f"error: {FLOWS}:fetch is not a workflow"),
        (FLOWS, "error: expected MODULE:Class"),
    ],
)
def test_lookup_errors_exit_1_without_traceback(cli: CliRunner, target: str, message: str) -> None:
    result = cli.invoke(app, ["visualize", target])
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_compile_error_is_reported_with_its_location(cli: CliRunner, flows_dir: Path) -> None:
    result = cli.invoke(app, ["visualize", f"{BROKEN}:VisBroken"])
    assert result.exit_code == 1
    first, cause = result.stderr.splitlines()[:2]
    assert first == (
        f"error: module '{BROKEN}' defines a workflow rappelx cannot compile; "
        "fix the construct named below"
    )
    location = rf"{BROKEN}\.py:{line_of('return await plain', BROKEN_SOURCE)}:\d+: RX\d{{3}} "
    assert re.match(rf"  caused by: CompileError: .*{location}", cause), cause
    assert "Traceback" not in result.stderr


def test_unknown_output_format(cli: CliRunner, flows_dir: Path) -> None:
    result = cli.invoke(app, ["visualize", f"{FLOWS}:VisLoop", "-o", "loop.jpeg"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot tell the format of loop.jpeg: use one of .dot")
    assert not (flows_dir / "loop.jpeg").exists()


def test_a_block_that_always_raises_has_no_next_edge_and_leaves_no_orphans(
    cli: CliRunner,
) -> None:
    # In VisLoop the compiler's "no except matched: raise" node continues nowhere; the
    # drawing omits its next edge, and every node drawn is an entry or has an edge in.
    nodes, edges = parse_dot(visualize_dot(cli))
    (reraise,) = [n for n, a in nodes.items() if "no except matched: raise" in a["label"]]
    assert [d for s, d, a in edges if s == reraise and a.get("label") != "raise"] == []
    targets = {d for _, d, _ in edges}
    assert [n for n, a in nodes.items() if n not in targets and "entry" not in a["label"]] == []
