"""The workflow DAG: a networkx graph of the IR, its validation and its version hash."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import replace
from typing import Any

import networkx as nx

from rappelx.compiler._ir import Await, Exec, Function, Node, Program
from rappelx.compiler._symbols import bound_names
from rappelx.exceptions import RappelxError


def prune(function: Function) -> Function:
    """Drop nodes that cannot run (code after a return, say) and mark loop back-edges."""
    reachable: set[int] = set()
    back: set[tuple[int, int]] = set()
    on_stack: set[int] = set()
    # Iterative DFS: an edge to a node still on the stack closes a loop.
    stack: list[tuple[int, list[int]]] = []

    def children(node_id: int) -> list[int]:
        node = function.nodes[node_id]
        out = [target for target, _ in node.successors()]
        if node.handler is not None:
            out.append(node.handler)
        return out

    reachable.add(function.entry)
    on_stack.add(function.entry)
    stack.append((function.entry, children(function.entry)))
    while stack:
        node_id, todo = stack[-1]
        if not todo:
            stack.pop()
            on_stack.discard(node_id)
            continue
        child = todo.pop(0)
        if child in on_stack:
            back.add((node_id, child))
        elif child not in reachable:
            reachable.add(child)
            on_stack.add(child)
            stack.append((child, children(child)))
    nodes = {i: n for i, n in function.nodes.items() if i in reachable}
    return replace(function, nodes=nodes, back_edges=frozenset(back))


def node_key(function: str, node_id: int) -> str:
    return f"{function}:{node_id}"


def build_graph(program: Program, *, data_flow: bool = True) -> nx.MultiDiGraph:
    """The DAG as a networkx multigraph with typed nodes and edges.

    Node attributes: ``function``, ``kind``, ``line``, ``label``. Edge attribute ``kind``:
    ``next``/``true``/``false`` (state machine, ``true``/``false`` carry the guard),
    ``exception``, ``finally``, ``call`` (into a helper), ``data`` (a variable written by
    one node and read by another); ``back=True`` marks loop back-edges.
    """
    graph = nx.MultiDiGraph(workflow=program.workflow)
    for function in program.functions.values():
        for node in function.nodes.values():
            graph.add_node(
                node_key(function.name, node.id),
                function=function.name,
                kind=node.kind,
                line=node.line,
                label=node.label,
                entry=node.id == function.entry,
                raises=isinstance(node, Exec) and node.raises,
            )
    for function in program.functions.values():
        for node in function.nodes.values():
            _add_edges(graph, program, function, node)
        if data_flow:
            _add_data_edges(graph, function)
    return graph


def _add_edges(graph: nx.MultiDiGraph, program: Program, function: Function, node: Node) -> None:
    src = node_key(function.name, node.id)
    for target, kind in node.successors():
        graph.add_edge(
            src,
            node_key(function.name, target),
            kind=kind,
            back=(node.id, target) in function.back_edges,
            guard=_guard(node) if kind in ("true", "false") else "",
        )
    if node.handler is not None:
        graph.add_edge(
            src,
            node_key(function.name, node.handler),
            kind="exception",
            back=(node.id, node.handler) in function.back_edges,
            guard="",
        )
    if isinstance(node, Await):
        for callee in node.callees:
            helper = program.functions[callee]
            graph.add_edge(src, node_key(callee, helper.entry), kind="call", back=False, guard="")


def _guard(node: Node) -> str:
    """A branch's test as the user wrote it: its source, unless hoisting replaced an
    await in it with a temporary; then the label, which shows the await again."""
    source: str = getattr(node, "source", "")
    if "_rx_" not in source:
        return source
    if node.label.startswith("for "):  # a loop header: are there items left?
        return f"items left in {node.label.split(' in ', 1)[1]}"
    if node.label.startswith(("if ", "while ")):
        return node.label.split(" ", 1)[1]
    return node.label


def _add_data_edges(graph: nx.MultiDiGraph, function: Function) -> None:
    writes: dict[str, list[int]] = {}
    reads: dict[str, list[int]] = {}
    for node in function.nodes.values():
        source = getattr(node, "source", "")
        try:
            tree = ast.parse(source) if source else None
        except SyntaxError:
            tree = None
        if tree is not None:
            for var in bound_names(tree.body) if isinstance(node, Exec) else ():
                writes.setdefault(var, []).append(node.id)
            for var in _loaded_names(tree):
                reads.setdefault(var, []).append(node.id)
        if isinstance(node, Await) and node.target:
            writes.setdefault(node.target, []).append(node.id)
    for var, writers in writes.items():
        for reader in reads.get(var, ()):
            for writer in writers:
                if writer != reader:
                    graph.add_edge(
                        node_key(function.name, writer),
                        node_key(function.name, reader),
                        kind="data",
                        var=var,
                        back=False,
                        guard="",
                    )


def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def validate(program: Program, graph: nx.MultiDiGraph) -> None:
    """Every edge lands on a node, every node is reachable, and control flow is a DAG
    once loop back-edges are removed. A failure here is a compiler bug."""
    control = nx.DiGraph()
    control.add_nodes_from(graph.nodes)
    for src, dst, data in graph.edges(data=True):
        if dst not in graph.nodes or "function" not in graph.nodes[dst]:
            raise RappelxError(f"internal compiler error: edge {src} -> {dst} has no target")
        if data["kind"] != "data" and not data["back"]:
            control.add_edge(src, dst)
    if not nx.is_directed_acyclic_graph(control):
        cycle = nx.find_cycle(control)
        raise RappelxError(f"internal compiler error: unmarked cycle {cycle}")
    roots = [n for n, d in graph.nodes(data=True) if d["entry"] and d["function"] == "run"]
    reachable = set(roots)
    for root in roots:
        reachable |= nx.descendants(control, root)
    missing = set(graph.nodes) - reachable
    if missing:
        raise RappelxError(f"internal compiler error: unreachable nodes {sorted(missing)}")


def describe(program: Program, *, lines: bool) -> dict[str, Any]:
    """A JSON-friendly description of the IR (what the version hash is computed over)."""
    functions: dict[str, Any] = {}
    for name in sorted(program.functions):
        function = program.functions[name]
        nodes = []
        for node_id in sorted(function.nodes):
            node = function.nodes[node_id]
            entry: dict[str, Any] = {
                "id": node.id,
                "kind": node.kind,
                "source": getattr(node, "source", node.label),
                "next": node.successors(),
                "handler": node.handler,
            }
            for attr in ("target", "return_exceptions", "var", "depth", "callees"):
                if hasattr(node, attr):
                    entry[attr] = getattr(node, attr)
            for attr in ("outer", "finally_stack"):
                if hasattr(node, attr):
                    entry[attr] = [list(x) for x in getattr(node, attr)]
            if lines:
                entry["line"] = node.line
            nodes.append(entry)
        functions[name] = {"params": list(function.params), "entry": function.entry, "nodes": nodes}
    return {"workflow": program.workflow, "functions": functions}


def version_hash(program: Program) -> str:
    """Hash of the IR without line numbers: moving code or editing comments keeps it."""
    text = json.dumps(describe(program, lines=False), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
