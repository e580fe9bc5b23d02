"""The workflow DAG as a graphviz drawing: one cluster per function, styled by kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import graphviz
import networkx as nx

from rappelx._workflow import WorkflowDef

__all__ = ["to_dot"]

#: Longest source snippet shown in a node or on an edge.
MAX_TEXT = 60

_NODE_STYLE: Mapping[str, Mapping[str, str]] = {
    "action": {"shape": "box", "style": "rounded,filled", "fillcolor": "lightblue"},
    "gather": {"shape": "box3d", "style": "filled", "fillcolor": "lightcyan"},
    "call": {"shape": "component", "style": "filled", "fillcolor": "lavender"},
    "sleep": {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "lightyellow"},
    "inline": {"shape": "box", "style": "solid"},
    "branch": {"shape": "diamond", "style": "filled", "fillcolor": "khaki"},
    "return": {"shape": "box", "style": "rounded,bold", "peripheries": "2"},
    "jump": {"shape": "cds"},
    "catch": {"shape": "house", "style": "filled", "fillcolor": "mistyrose"},
    "finally": {"shape": "invhouse", "style": "filled", "fillcolor": "thistle"},
}

_EDGE_STYLE: Mapping[str, Mapping[str, str]] = {
    "next": {},
    "true": {"color": "darkgreen", "fontcolor": "darkgreen"},
    "false": {"color": "darkorange3", "fontcolor": "darkorange3"},
    "exception": {"style": "dashed", "color": "red", "fontcolor": "red", "label": "raise"},
    "finally": {"style": "dashed", "color": "purple", "fontcolor": "purple", "label": "finally"},
    "call": {"style": "dotted", "color": "navy", "penwidth": "2", "label": "call"},
    "data": {"style": "dotted", "color": "gray55", "fontcolor": "gray40", "constraint": "false"},
}

# Loop back-edges are drawn on top of their kind's style, and must not pull the layout.
_BACK_STYLE = {"style": "bold", "color": "blue", "fontcolor": "blue", "constraint": "false"}


def to_dot(wf: WorkflowDef, *, data_flow: bool = False) -> graphviz.Digraph:
    """Draw ``wf``'s DAG.

    Nodes show their kind, source line and label; each function (``run`` and its
    helpers) is a cluster. Edge kinds are told apart by colour and line style; loop
    back-edges are bold blue and do not constrain the layout.

    Args:
        wf: The compiled workflow.
        data_flow: Also draw data edges (a variable written by one node, read by another).
    """
    graph = _drawn(wf.compiled.graph)
    ids = {key: f"n{index}" for index, key in enumerate(graph.nodes)}
    dot = graphviz.Digraph(name=wf.name, comment=f"rappelx workflow {wf.name} {wf.version}")
    dot.attr(label=_escape(f"{wf.name} (version {wf.version})"), labelloc="t", fontsize="16")
    dot.attr("node", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="9")
    for position, function in enumerate(_functions(graph)):
        with dot.subgraph(name=f"cluster_{position}") as cluster:
            cluster.attr(label=_escape(f"{function}()"), style="rounded", color="gray50")
            for key, attrs in graph.nodes(data=True):
                if attrs["function"] == function:
                    cluster.node(ids[key], label=_node_label(attrs), **_NODE_STYLE[attrs["kind"]])
    for src, dst, attrs in graph.edges(data=True):
        if attrs["kind"] != "data" or data_flow:
            dot.edge(ids[src], ids[dst], **_edge_attrs(attrs))
    return dot


def _drawn(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """``graph`` without the edges control never takes (out of a block that always
    raises) and without the nodes only those edges led to."""
    shown = graph.copy()
    shown.remove_edges_from(
        [(u, v, k) for u, v, k, kind in graph.edges(keys=True, data="kind")
         if kind == "next" and graph.nodes[u].get("raises")]
    )  # fmt: skip
    control = nx.DiGraph((u, v) for u, v, kind in shown.edges(data="kind") if kind != "data")
    roots = [n for n, entry in shown.nodes(data="entry") if entry]
    control.add_nodes_from(roots)
    live = set(roots).union(*(nx.descendants(control, root) for root in roots))
    shown.remove_nodes_from([n for n in graph.nodes if n not in live])
    return shown


def _functions(graph: Any) -> list[str]:
    # ``run`` first, then the helpers in the order the compiler met them.
    names = list(dict.fromkeys(attrs["function"] for _, attrs in graph.nodes(data=True)))
    return sorted(names, key=lambda name: name != "run")


def _node_label(attrs: Mapping[str, Any]) -> str:
    head = f"{attrs['kind']} · line {attrs['line']}"
    if attrs.get("entry"):
        head = f"entry · {head}"
    return f"{_escape(head)}\\n{_escape(_shorten(attrs['label']))}"


def _edge_attrs(attrs: Mapping[str, Any]) -> dict[str, str]:
    style = dict(_EDGE_STYLE.get(attrs["kind"], {}))
    if attrs["kind"] in ("true", "false"):
        guard = attrs.get("guard") or ""
        style["label"] = f"{attrs['kind']}: {guard}" if guard else attrs["kind"]
    elif attrs["kind"] == "data":
        style["label"] = attrs.get("var", "")
    if attrs.get("back"):
        style.update(_BACK_STYLE)
        style["label"] = " ".join(filter(None, ["loop", style.get("label", "")]))
    if "label" in style:
        style["label"] = _escape(_shorten(style["label"]))
    return style


def _shorten(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"


def _escape(text: str) -> str:
    # graphviz leaves backslashes alone so that \n and \l work; source text must not
    # produce escapes of its own.
    return text.replace("\\", "\\\\")
