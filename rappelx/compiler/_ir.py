"""IR nodes: the vocabulary of a compiled workflow.

Each workflow function (``run`` and every async helper it reaches) becomes a
:class:`Function`: a table of nodes addressed by integer id. Nodes are frozen and point at
their successors by id, so the engine can walk them without a graph library; the
networkx DAG in ``_graph.py`` is built from the same nodes for validation, hashing and
visualization.

Every node may carry ``handler``: the id of the :class:`Catch` node that receives an
exception raised while the node runs (``None``: the exception leaves the function), and
``context``: inside an ``except`` body, the variable holding the exception being handled,
which becomes ``__context__`` of an exception raised there, as in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
Block = Callable[[Scope], Any]
FinallyStack = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Fields every node has."""

    id: int
    line: int
    label: str
    handler: int | None = None
    context: str | None = None  # inside an except handler: the variable holding its exception

    kind = "node"

    def successors(self) -> list[tuple[int, str]]:
        """``(node id, edge kind)`` pairs this node may continue to."""
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec(Node):
    """Inline Python: run ``fn(scope)`` and continue at ``next``.

    ``raises``: the block ends in a ``raise`` at its top level, so ``next`` is never
    taken (drawings leave that edge out).
    """

    fn: Block
    next: int
    source: str
    raises: bool = False
    kind = "inline"

    def successors(self) -> list[tuple[int, str]]:
        return [(self.next, "next")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch(Node):
    """Evaluate ``fn(scope)``; continue at ``true`` if it is truthy, else at ``false``."""

    fn: Block
    true: int
    false: int
    source: str
    kind = "branch"

    def successors(self) -> list[tuple[int, str]]:
        return [(self.true, "true"), (self.false, "false")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Await(Node):
    """A suspension point: ``fn(scope)`` builds what to wait for.

    ``what`` says which: ``action`` (an ActionCall), ``gather`` (a list of ActionCall and
    HelperCall), ``sleep`` (``(delay, result)``) or ``call`` (a HelperCall run in this
    fiber). The awaited value is stored in ``target`` (if any), then ``next`` runs.
    """

    fn: Block
    what: str
    target: str | None
    next: int
    source: str
    return_exceptions: bool = False
    callees: tuple[str, ...] = ()

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.what

    def successors(self) -> list[tuple[int, str]]:
        return [(self.next, "next")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Return(Node):
    """Return ``fn(scope)`` (or None), through any enclosing ``finally`` blocks.

    ``finally_stack`` lists the enclosing try/finally blocks, innermost last, as
    ``(pending variable, entry node)``.
    """

    fn: Block | None
    finally_stack: FinallyStack = ()
    source: str = "return"
    kind = "return"

    def successors(self) -> list[tuple[int, str]]:
        return [(self.finally_stack[-1][1], "finally")] if self.finally_stack else []


@dataclass(frozen=True, slots=True, kw_only=True)
class Jump(Node):
    """``break``/``continue`` that leaves ``finally`` blocks on its way to ``target``.

    ``depth`` is how many finally blocks enclose the loop itself.
    """

    target: int
    depth: int
    finally_stack: FinallyStack
    kind = "jump"

    def successors(self) -> list[tuple[int, str]]:
        return [(self.finally_stack[-1][1], "finally")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Catch(Node):
    """Exception landing pad: store the exception in ``var`` and continue at ``next``."""

    var: str
    next: int
    kind = "catch"

    def successors(self) -> list[tuple[int, str]]:
        return [(self.next, "next")]


@dataclass(frozen=True, slots=True, kw_only=True)
class FinallyExit(Node):
    """End of a ``finally`` body: resume what was pending when it was entered.

    The pending completion in ``var`` is ``None`` (fall through to ``next``),
    ``("r", value)`` (return), ``("x", exc)`` (re-raise) or ``("j", target, depth)``
    (break/continue). ``outer`` is the finally stack around the try statement.
    """

    var: str
    outer: FinallyStack
    next: int
    kind = "finally"

    def successors(self) -> list[tuple[int, str]]:
        out = [(self.next, "next")]
        if self.outer:
            out.append((self.outer[-1][1], "finally"))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    """One compiled workflow function: ``run`` or an async helper method."""

    name: str
    params: tuple[str, ...]
    entry: int
    nodes: dict[int, Node]
    back_edges: frozenset[tuple[int, int]] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True, kw_only=True)
class Program:
    """Everything the engine needs to run one workflow."""

    workflow: str
    functions: dict[str, Function]
    filename: str
