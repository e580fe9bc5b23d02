"""From a workflow class to a :class:`CompiledWorkflow`."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import networkx as nx

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._checks import check_function
from rappelx.compiler._codegen import BlockCompiler, BlockRef
from rappelx.compiler._graph import build_graph, describe, prune, validate, version_hash
from rappelx.compiler._ir import Function, Node, Program, Return
from rappelx.compiler._lower import Ctx, FunctionLowerer
from rappelx.compiler._resolve import Env
from rappelx.compiler._symbols import function_locals, parameter_names
from rappelx.runtime._specs import RUNTIME, helper_factory


@dataclass(slots=True)
class CompiledWorkflow:
    """The compiler's output for one workflow class."""

    program: Program
    version: str
    source_lines: list[str]
    _graph: nx.MultiDiGraph | None = field(default=None, repr=False)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The DAG (built on first use, with data-flow edges)."""
        if self._graph is None:
            self._graph = build_graph(self.program)
        return self._graph

    def describe(self) -> dict[str, Any]:
        return describe(self.program, lines=True)


@dataclass(slots=True)
class _Source:
    filename: str
    lines: list[str]
    classdef: ast.ClassDef


def _read_source(cls: type, reporter_for: Any) -> _Source:
    filename = inspect.getsourcefile(cls) or inspect.getfile(cls)
    lines, start = inspect.getsourcelines(cls)
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip())
    tree = ast.parse(dedented, filename=filename)
    ast.increment_lineno(tree, start - 1)
    if indent:
        for node in ast.walk(tree):
            if hasattr(node, "col_offset"):
                node.col_offset += indent
                end = getattr(node, "end_col_offset", None)
                if end is not None:
                    setattr(node, "end_col_offset", end + indent)  # noqa: B010
    classdef = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    with open(filename, encoding="utf-8") as handle:
        file_lines = handle.read().splitlines()
    return _Source(filename, file_lines, classdef)


class _Mangler(ast.NodeTransformer):
    """Apply Python's private-name mangling (``__x`` -> ``_Cls__x``) as the class body would."""

    def __init__(self, class_name: str) -> None:
        self.prefix = "_" + class_name.lstrip("_")

    def _mangle(self, ident: str) -> str:
        if ident.startswith("__") and not ident.endswith("__") and "." not in ident:
            return self.prefix + ident
        return ident

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._mangle(node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.Attribute:
        self.generic_visit(node)
        node.attr = self._mangle(node.attr)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._mangle(node.arg)
        return node


def compile_workflow(cls: type, workflow_name: str) -> CompiledWorkflow:
    """Compile ``cls.run`` and the async helpers it reaches; raise CompileError on problems."""
    try:
        source = _read_source(cls, None)
    except (OSError, TypeError, SyntaxError) as exc:
        from rappelx.exceptions import CompileError

        raise CompileError(
            diag.NO_SOURCE.format(what=cls.__qualname__, reason=exc), code=diag.NO_SOURCE.code
        ) from exc
    reporter = diag.Reporter(source.filename, source.lines)
    classdef = _Mangler(source.classdef.name).visit(source.classdef)
    methods = {
        n.name: n for n in classdef.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)
    }
    run = methods.get("run")
    if not isinstance(run, ast.AsyncFunctionDef):
        found = "'run' is not an async def" if run else f"{cls.__qualname__} has no 'run' method"
        reporter.error(run or classdef, diag.BAD_RUN, what=found)
        reporter.raise_if_any()
    helpers = {k: v for k, v in methods.items() if isinstance(v, ast.AsyncFunctionDef)}
    module_globals = sys.modules[cls.__module__].__dict__
    blocks = BlockCompiler(filename=source.filename)
    counter = [0]

    def fresh(kind: str) -> str:
        counter[0] += 1
        return f"_rx_{kind}{counter[0]}"

    lowered: dict[str, Function] = {}
    calls: dict[str, list[tuple[str, ast.AST]]] = {}
    todo = ["run"]
    while todo:
        fname = todo.pop()
        if fname in lowered:
            continue
        fn_ast = helpers[fname]
        function, made_calls = _lower_function(
            fn_ast, helpers, methods, module_globals, blocks, reporter, fresh
        )
        lowered[fname] = function
        calls[fname] = made_calls
        todo.extend(callee for callee, _ in made_calls if callee not in lowered)
    _check_recursion(calls, reporter)
    reporter.raise_if_any()
    real_methods = {name: getattr(cls, name) for name in lowered if name != "run"}
    runtime = {**RUNTIME, "_rx_helper": helper_factory(real_methods)}
    made = blocks.compile(module_globals, runtime)
    functions = {name: prune(_bind_blocks(f, made)) for name, f in lowered.items()}
    program = Program(workflow=workflow_name, functions=functions, filename=source.filename)
    graph = build_graph(program, data_flow=False)
    validate(program, graph)
    return CompiledWorkflow(
        program=program, version=version_hash(program), source_lines=source.lines
    )


def _lower_function(
    fn_ast: ast.AsyncFunctionDef,
    helpers: dict[str, ast.AsyncFunctionDef],
    methods: Mapping[str, ast.AST],
    module_globals: dict[str, Any],
    blocks: BlockCompiler,
    reporter: diag.Reporter,
    fresh: Any,
) -> tuple[Function, list[tuple[str, ast.AST]]]:
    check_function(fn_ast, reporter.error)
    params = parameter_names(fn_ast.args)
    user_locals = function_locals(fn_ast)
    env = Env(
        module_globals=module_globals,
        locals_=frozenset(user_locals),
        self_name=params[0] if params else None,
        helpers=frozenset(helpers),
        sync_methods=frozenset(k for k in methods if k not in helpers),
    )
    lowerer = FunctionLowerer(
        env=env,
        locals_=set(user_locals),
        blocks=blocks,
        report=reporter.error,
        fresh_name=fresh,
    )
    last = fn_ast.body[-1]
    end_line = getattr(last, "end_lineno", None) or last.lineno
    end = lowerer.emit(Return(id=lowerer.reserve(), line=end_line, label="return None", fn=None))
    entry = lowerer.block(list(fn_ast.body), end, Ctx())
    function = Function(name=fn_ast.name, params=tuple(params), entry=entry, nodes=lowerer.nodes)
    return function, lowerer.calls


def _bind_blocks(function: Function, made: list[Any]) -> Function:
    nodes: dict[int, Node] = {}
    for node_id, node in function.nodes.items():
        changes = {
            f.name: made[getattr(node, f.name).index]
            for f in fields(node)
            if isinstance(getattr(node, f.name), BlockRef)
        }
        nodes[node_id] = replace(node, **changes) if changes else node
    return replace(function, nodes=nodes)


def _check_recursion(calls: dict[str, list[tuple[str, ast.AST]]], reporter: diag.Reporter) -> None:
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    path: list[str] = []

    def visit(fname: str) -> None:
        state[fname] = 1
        path.append(fname)
        for callee, site in calls.get(fname, []):
            if state.get(callee) == 1:
                cycle = " -> ".join([*path[path.index(callee) :], callee])
                reporter.error(site, diag.RECURSION, cycle=cycle)
            elif callee not in state:
                visit(callee)
        path.pop()
        state[fname] = 2

    visit("run")
