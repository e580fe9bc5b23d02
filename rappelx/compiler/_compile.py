"""From a workflow class to a :class:`CompiledWorkflow`."""

from __future__ import annotations

import ast
import inspect
import os
import sys
import textwrap
from dataclasses import dataclass, field, fields, replace
from typing import Any

import networkx as nx

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler import _statements  # noqa: F401  (registers the statement handlers)
from rappelx.compiler._checks import check_function
from rappelx.compiler._codegen import BlockCompiler, BlockRef
from rappelx.compiler._graph import build_graph, describe, prune, validate, version_hash
from rappelx.compiler._ir import Function, Node, Program, Return
from rappelx.compiler._lower import Ctx, FunctionLowerer
from rappelx.compiler._resolve import Env
from rappelx.compiler._symbols import function_locals, parameter_names
from rappelx.exceptions import CompileError
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


_INDEX: dict[str, tuple[tuple[float, int], list[str], dict[str, tuple[int, int]]]] = {}


def module_index(filename: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The lines of ``filename`` and the line span of every class in it, by qualname.

    Parsed once per file (and again if the file changes): a module usually defines several
    workflows, and each is then compiled from its own slice of the source.
    """
    stat = os.stat(filename)
    key = (stat.st_mtime, stat.st_size)
    cached = _INDEX.get(filename)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    with open(filename, encoding="utf-8") as handle:
        text = handle.read()
    spans: dict[str, tuple[int, int]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                spans[prefix + node.name] = (node.lineno, node.end_lineno or node.lineno)
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body, f"{prefix}{node.name}.<locals>.")

    visit(ast.parse(text, filename=filename).body, "")
    lines = text.splitlines(keepends=True)
    _INDEX[filename] = (key, lines, spans)
    return lines, spans


def _read_source(cls: type) -> _Source:
    filename = inspect.getsourcefile(cls) or inspect.getfile(cls)
    lines, spans = module_index(filename)
    span = spans.get(cls.__qualname__)
    if span is None:
        raise OSError(f"class {cls.__qualname__} not found in {filename}")
    start, end = span
    segment = lines[start - 1 : end]
    indent = len(segment[0]) - len(segment[0].lstrip())
    tree = ast.parse(textwrap.dedent("".join(segment)), filename=filename)
    ast.increment_lineno(tree, start - 1)
    if indent:
        for node in ast.walk(tree):
            if hasattr(node, "col_offset"):
                node.col_offset += indent
                end_col = getattr(node, "end_col_offset", None)
                if end_col is not None:
                    setattr(node, "end_col_offset", end_col + indent)  # noqa: B010
    classdef = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    return _Source(filename, [line.rstrip("\r\n") for line in lines], classdef)


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

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.name = self._mangle(node.name)
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AsyncFunctionDef:
        self.generic_visit(node)
        node.name = self._mangle(node.name)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._mangle(node.arg)
        return node


@dataclass(slots=True)
class _Origin:
    """A class in the workflow's MRO that defines methods, with its parsed source."""

    cls: type
    source: _Source
    methods: dict[str, ast.AsyncFunctionDef | ast.FunctionDef]
    reporter: diag.Reporter
    blocks: BlockCompiler
    module_globals: dict[str, Any]


def _origin(cls: type, problems: list[CompileError]) -> _Origin:
    try:
        source = _read_source(cls)
    except (OSError, TypeError, SyntaxError) as exc:
        raise CompileError(
            diag.NO_SOURCE.format(what=cls.__qualname__, reason=exc), code=diag.NO_SOURCE.code
        ) from exc
    classdef = _Mangler(source.classdef.name).visit(source.classdef)
    methods = {
        n.name: n for n in classdef.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)
    }
    return _Origin(
        cls=cls,
        source=source,
        methods=methods,
        reporter=diag.Reporter(source.filename, source.lines, problems),
        blocks=BlockCompiler(filename=source.filename),
        module_globals=sys.modules[cls.__module__].__dict__,
    )


def compile_workflow(cls: type, workflow_name: str) -> CompiledWorkflow:
    """Compile ``cls.run`` and the async helpers it reaches; raise CompileError on problems."""
    problems: list[CompileError] = []
    origins: dict[type, _Origin] = {}

    def origin_of(name: str) -> _Origin | None:
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or owner in (Workflow_base(), object):
            return None
        if owner not in origins:
            origins[owner] = _origin(owner, problems)
        return origins[owner]

    main = origin_of("run") or _origin(cls, problems)
    run = main.methods.get("run")
    if not isinstance(run, ast.AsyncFunctionDef):
        found = "'run' is not an async def" if run else f"{cls.__qualname__} has no 'run' method"
        main.reporter.error(run or main.source.classdef, diag.BAD_RUN, what=found)
        main.reporter.raise_if_any()
    base = Workflow_base()
    helper_names = frozenset(
        name
        for name in dir(cls)
        if inspect.iscoroutinefunction(getattr(cls, name, None))
        and next(k for k in cls.__mro__ if name in k.__dict__) not in (base, object)
    )
    counter = [0]

    def fresh(kind: str) -> str:
        counter[0] += 1
        return f"_rx_{kind}{counter[0]}"

    lowered: dict[str, tuple[Function, _Origin]] = {}
    calls: dict[str, list[tuple[str, ast.AST]]] = {}
    todo = ["run"]
    while todo:
        fname = todo.pop()
        origin = origin_of(fname)
        if fname in lowered or origin is None:
            continue
        fn_ast = origin.methods[fname]
        assert isinstance(fn_ast, ast.AsyncFunctionDef)
        function, made_calls = _lower_function(fn_ast, helper_names, origin, fresh)
        lowered[fname] = (function, origin)
        calls[fname] = made_calls
        todo.extend(callee for callee, _ in made_calls if callee not in lowered)
    _check_recursion(calls, main.reporter)
    main.reporter.raise_if_any()
    real_methods = {name: getattr(cls, name) for name in lowered if name != "run"}
    runtime = {**RUNTIME, "_rx_helper": helper_factory(real_methods)}
    made = {
        origin.cls: origin.blocks.compile(origin.module_globals, runtime)
        for origin in origins.values()
    }
    functions = {
        name: prune(_bind_blocks(f, made[origin.cls])) for name, (f, origin) in lowered.items()
    }
    functions = _reachable_functions(functions)
    program = Program(workflow=workflow_name, functions=functions, filename=main.source.filename)
    graph = build_graph(program, data_flow=False)
    validate(program, graph)
    return CompiledWorkflow(
        program=program, version=version_hash(program), source_lines=main.source.lines
    )


def Workflow_base() -> type:
    from rappelx._workflow import Workflow

    return Workflow


def _lower_function(
    fn_ast: ast.AsyncFunctionDef,
    helpers: frozenset[str],
    origin: _Origin,
    fresh: Any,
) -> tuple[Function, list[tuple[str, ast.AST]]]:
    reporter, blocks, module_globals = origin.reporter, origin.blocks, origin.module_globals
    check_function(fn_ast, reporter.error)
    params = parameter_names(fn_ast.args)
    user_locals = function_locals(fn_ast)
    env = Env(
        module_globals=module_globals,
        locals_=frozenset(user_locals),
        self_name=params[0] if params else None,
        helpers=helpers,
        sync_methods=frozenset(k for k in origin.methods if k not in helpers),
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


def _reachable_functions(functions: dict[str, Function]) -> dict[str, Function]:
    """Drop helpers that are only called from code that can never run."""
    seen = {"run"}
    todo = ["run"]
    while todo:
        for node in functions[todo.pop()].nodes.values():
            for callee in getattr(node, "callees", ()):
                if callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
    return {name: f for name, f in functions.items() if name in seen}


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
