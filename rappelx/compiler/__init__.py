"""Workflow compiler: source -> AST -> normalized AST -> IR nodes -> DAG + version hash."""

from __future__ import annotations

from rappelx.compiler._compile import CompiledWorkflow, compile_workflow
from rappelx.compiler._graph import build_graph, node_key
from rappelx.compiler._ir import (
    Await,
    Branch,
    Catch,
    Exec,
    FinallyExit,
    Function,
    Jump,
    Node,
    Program,
    Return,
)

__all__ = [
    "Await",
    "Branch",
    "Catch",
    "CompiledWorkflow",
    "Exec",
    "FinallyExit",
    "Function",
    "Jump",
    "Node",
    "Program",
    "Return",
    "build_graph",
    "compile_workflow",
    "node_key",
]
