"""A hypothesis strategy that writes random workflow modules for the parity oracle.

Each program is one ``@workflow`` class with 0-2 async helper methods and a ``run`` body of
nested ``if``/``for``/``while``/``try``/``except``/``else``/``finally``, gathers,
``break``/``continue``/``return``/``raise``, over the actions in ``_genlib``. Integer
variables ``v0..v3`` flow between statements and a ``log`` list records what happened,
so ``run`` returns ``(log, v0, v1, v2, v3)`` unless it returns or raises earlier.

Programs always terminate: ``for`` loops run over at most a handful of items, every
``while`` counts a fresh counter up to a small bound (the increment is the first statement
of the body, so ``continue`` cannot skip it), and helper ``h{i}`` only calls ``h{j}`` with
``j < i``.

The oracle is plain asyncio, whose gather raises the failure that happens *first*; that is
the lowest position only when no element suspends. So actions never suspend, sleeps occur
only in ``run``, and a helper that awaits a gather is never itself an element of a gather.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

NAME_PLACEHOLDER = "__WORKFLOW_NAME__"

HEADER = """\
from __future__ import annotations

import asyncio

from rappelx import RetryPolicy, Workflow, workflow
from tests.parity_cases._genlib import FAST, GenError, add, is_even, mul, probe
"""

HANDLER_TYPES = (
    "ValueError",
    "KeyError",
    "LookupError",
    "GenError",
    "(ValueError, KeyError)",
    "ArithmeticError",
    "IndexError",
    "(GenError, LookupError)",
    "Exception",
    "AssertionError",
)
RAISE_FORMS = ("ValueError({})", "KeyError({})", 'GenError({}, "wf")', "IndexError({})")
MAX_DEPTH_RUN = 3
MAX_DEPTH_HELPER = 2


@dataclass(frozen=True)
class GeneratedProgram:
    """A generated workflow module: its source, class name and ``run`` argument."""

    source: str
    class_name: str
    module_name: str
    x: int


@dataclass(frozen=True)
class Scope:
    """What the statement being generated may use.

    Attributes:
        variables: Integer variables it may assign and read.
        readable: Read-only integers (loop targets, while counters).
        depth: Current nesting depth of compound statements.
        max_depth: No compound statements at or beyond this depth.
        in_loop: ``break``/``continue`` are allowed.
        in_handler: Inside an ``except`` body: a bare ``raise`` is allowed.
        exc_name: Name bound by the innermost ``except ... as``, if any.
        helpers: Helper methods this code may call (``h0`` .. ``h{helpers-1}``).
        in_run: Generating ``run`` (it has ``log``) rather than a helper.
    """

    variables: tuple[str, ...]
    readable: tuple[str, ...] = ()
    depth: int = 0
    max_depth: int = MAX_DEPTH_RUN
    in_loop: bool = False
    in_handler: bool = False
    exc_name: str | None = None
    helpers: int = 0
    in_run: bool = True

    @property
    def leaves(self) -> tuple[str, ...]:
        return self.variables + self.readable

    def nested(self, **changes: Any) -> Scope:
        return replace(self, depth=self.depth + 1, **changes)


def indent(lines: list[str]) -> list[str]:
    return ["    " + line if line else "" for line in lines]


class _Builder:
    """Draws one program; every choice goes through ``draw`` so hypothesis can shrink it."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw
        self._fresh = itertools.count()
        self._suspending: set[int] = set()

    # -- primitives -------------------------------------------------------------------

    def num(self, low: int, high: int) -> int:
        return int(self._draw(st.integers(low, high)))

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return str(self._draw(st.sampled_from(options)))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._fresh)}"

    # -- expressions ------------------------------------------------------------------

    def expr(self, s: Scope, budget: int = 2, awaits: bool = True) -> str:
        """An int-valued expression (possibly raising, possibly awaiting)."""
        if budget <= 0:
            return self.pick(s.leaves) if self.num(0, 3) else str(self.num(0, 9))
        kinds = ["var", "const", "arith", "add", "mul", "probe", "builtin", "ternary"]
        kinds += ["listcomp", "gather_sum", "gather_comp", "helper", "lookup", "log"]
        if not awaits:
            # Await-free and raise-free: used for arguments of gather elements, where a
            # failure after the first element was created would leave it never awaited.
            kinds = ["var", "const", "arith", "builtin", "ternary"]
        kind = self.pick(kinds)
        sub = budget - 1
        if kind == "var":
            return self.pick(s.leaves)
        if kind == "const":
            return str(self.num(0, 9))
        if kind == "arith":
            op = self.pick(["+", "-", "*"])
            return f"({self.expr(s, sub, awaits)} {op} {self.expr(s, sub, awaits)}) % 1000"
        if kind in ("add", "mul"):
            return f"await {kind}({self.expr(s, sub)}, {self.expr(s, sub)})"
        if kind == "probe":
            return f"await probe({self.expr(s, sub)}, {self.num(0, 2)})"
        if kind == "builtin":
            fn = self.pick(["max", "min", "abs"])
            if fn == "abs":
                return f"abs({self.expr(s, sub, awaits)})"
            return f"{fn}({self.expr(s, sub, awaits)}, {self.expr(s, sub, awaits)})"
        if kind == "ternary":
            return (
                f"({self.expr(s, sub, awaits)} if {self.cond(s, sub, awaits)} "
                f"else {self.expr(s, sub, awaits)})"
            )
        if kind == "lookup":
            return self.lookup(s, sub, awaits)
        return self.awaiting_expr(kind, s, sub)

    def lookup(self, s: Scope, budget: int, awaits: bool) -> str:
        """Inline code that raises for some values (IndexError, KeyError, ZeroDivision)."""
        inner = self.expr(s, budget, awaits)
        form = self.pick(["index", "key", "div"])
        if form == "index":
            return f"[1, 2, 3, 4][{inner} % 5]"
        if form == "key":
            return f"{{0: 5, 1: 6, 2: 7, 3: 8}}[{inner} % 5]"
        return f"(100 // ({inner} % 5))"

    def awaiting_expr(self, kind: str, s: Scope, budget: int) -> str:
        if kind == "listcomp":
            c = self.fresh("c")
            inner = replace(s, readable=(*s.readable, c))
            item = f"await add({c}, {self.expr(inner, budget)})"
            return f"sum([{item} for {c} in range({self.num(0, 3)})])"
        if kind == "gather_sum":
            calls = ", ".join(self.call(s, budget) for _ in range(self.num(1, 3)))
            return f"sum(await asyncio.gather({calls}))"
        if kind == "gather_comp":
            c = self.fresh("c")
            inner = replace(s, readable=(*s.readable, c))
            fn = self.pick(["add", "mul", "probe"])
            second = str(self.num(0, 2)) if fn == "probe" else self.expr(inner, budget, False)
            n = self.num(0, 3)
            return f"sum(await asyncio.gather(*[{fn}({c}, {second}) for {c} in range({n})]))"
        if kind == "helper" and s.helpers:
            return f"await {self.helper_call(s, budget)}"
        if kind == "log" and s.in_run:
            return "len(log)"
        return self.pick(s.leaves)

    def helper_call(
        self, s: Scope, budget: int, awaits: bool = True, choices: list[int] | None = None
    ) -> str:
        index = int(self._draw(st.sampled_from(choices))) if choices else self.num(0, s.helpers - 1)
        args = f"{self.expr(s, budget, awaits)}, {self.expr(s, budget, awaits)}"
        return f"self.h{index}({args})"

    def call(self, s: Scope, budget: int) -> str:
        """One element of a gather: an action call, a run_action call or a helper call."""
        kind = self.pick(["add", "mul", "probe", "run_action", "helper"])
        # A helper that suspends (it awaits a gather) would let plain asyncio finish the
        # gather's elements out of position order, so the oracle would not be the rule.
        calm = [i for i in range(s.helpers) if i not in self._suspending]
        if kind == "helper" and calm:
            return self.helper_call(s, budget, awaits=False, choices=calm)
        if kind == "run_action":
            inner = f"probe({self.expr(s, budget, False)}, {self.num(0, 2)})"
            if self.num(0, 1):
                # probe is deterministic, so a retry fails the same way: parity holds.
                return f"self.run_action({inner}, retry=RetryPolicy(attempts=2), backoff=FAST)"
            return f"self.run_action({inner})"
        if kind == "probe":
            return f"probe({self.expr(s, budget, False)}, {self.num(0, 2)})"
        name = "mul" if kind == "mul" else "add"
        return f"{name}({self.expr(s, budget, False)}, {self.expr(s, budget, False)})"

    def cond(self, s: Scope, budget: int = 2, awaits: bool = True) -> str:
        kinds = ["compare", "even", "await_even", "and", "or", "not", "in"]
        if not awaits:
            kinds = ["compare", "even"]
        kind = self.pick(kinds) if budget > 0 else "compare"
        sub = budget - 1
        if kind == "compare":
            op = self.pick([">", "==", "<=", "!="])
            return f"{self.expr(s, sub, awaits)} {op} {self.expr(s, sub, awaits)}"
        if kind == "even":
            return f"{self.expr(s, sub, awaits)} % 2 == 0"
        if kind == "await_even":
            return f"await is_even({self.expr(s, sub)})"
        if kind in ("and", "or"):
            return f"({self.cond(s, sub)} {kind} {self.cond(s, sub)})"
        if kind == "not":
            return f"not {self.cond(s, sub)}"
        return f"{self.expr(s, sub)} in ({self.expr(s, sub)}, {self.expr(s, sub)})"

    # -- statements -------------------------------------------------------------------

    def block(self, s: Scope, longest: int = 3) -> list[str]:
        """1..longest statements; a terminal statement (return, raise...) ends the block."""
        return self.block_and_end(s, longest)[0]

    def block_and_end(self, s: Scope, longest: int) -> tuple[list[str], bool]:
        """A block, and whether it ends with a terminal statement."""
        lines: list[str] = []
        for _ in range(self.num(1, longest)):
            stmt, terminal = self.statement(s)
            lines.extend(stmt)
            if terminal:
                return lines, True
        return lines, False

    def statement(self, s: Scope) -> tuple[list[str], bool]:
        kinds = ["assign", "assign", "augassign", "log", "gather", "gather_exc", "assert"]
        kinds += ["raise", "return", "pass"]
        if s.in_run:
            # Not in helpers: a helper that suspends inside a gather would let plain
            # asyncio finish elements out of position order.
            kinds += ["sleep"]
        if s.depth < s.max_depth:
            kinds += ["if", "if", "for", "while", "try", "try"]
        if s.in_loop:
            kinds += ["break", "continue"]
        if s.in_handler:
            kinds += ["reraise"]
        kind = self.pick(kinds)
        if kind in ("if", "for", "while", "try"):
            return self.compound(kind, s), False
        return self.simple(kind, s)

    def simple(self, kind: str, s: Scope) -> tuple[list[str], bool]:
        target = self.pick(s.variables)
        if kind == "assign":
            return [f"{target} = {self.expr(s)}"], False
        if kind == "augassign":
            return [f"{target} += {self.expr(s)}", f"{target} %= 1000"], False
        if kind == "log":
            return [self.record(s)], False
        if kind == "gather":
            return self.gather(s), False
        if kind == "gather_exc":
            return self.gather_exceptions(s), False
        if kind == "assert":
            # Mostly true, so that most programs get past their asserts.
            check = f"{self.cond(s)} or {self.expr(s, 1)} % 4 != 0"
            return [f'assert {check}, "assertion {self.num(0, 99)}"'], False
        if kind == "pass":
            return ["pass"], False
        if kind == "sleep":
            return [f"await asyncio.sleep({self.pick(['0', '0.0', '0.001'])})"], False
        if kind in ("break", "continue"):
            return [kind], True
        if kind == "reraise":
            return ["raise"], True
        if kind == "return":
            return [self.return_statement(s)], True
        return self.raise_statement(s), True

    def record(self, s: Scope) -> str:
        """Make the program's path observable: an entry in ``log`` (run) or a variable."""
        if s.exc_name and self.num(0, 1):
            value = f'f"{{type({s.exc_name}).__name__}}{{{s.exc_name}.args}}"'
        else:
            value = f'"L{self.num(0, 99)}:" + str({self.expr(s)})'
        if s.in_run:
            return f"log.append({value})"
        return f"{self.pick(s.variables)} = len({value}) % 1000"

    def return_statement(self, s: Scope) -> str:
        if not s.in_run:
            return f"return {self.expr(s)}"
        if self.num(0, 3):
            return "return log, v0, v1, v2, v3"
        return f"return {self.expr(s)}"

    def raise_statement(self, s: Scope) -> list[str]:
        exc = self.pick(RAISE_FORMS).format(self.expr(s, 1))
        if s.exc_name and self.num(0, 1):
            return [f"raise {exc} from {s.exc_name}"]
        return [f"raise {exc}"]

    def gather(self, s: Scope) -> list[str]:
        n = self.num(1, 3)
        targets = [self.pick(s.variables) for _ in range(n)]
        calls = ", ".join(self.call(s, 1) for _ in range(n))
        if n == 1:
            return [f"[{targets[0]}] = await asyncio.gather({calls})"]
        return [f"{', '.join(targets)} = await asyncio.gather({calls})"]

    def gather_exceptions(self, s: Scope) -> list[str]:
        g = self.fresh("g")
        if self.num(0, 1):
            calls = ", ".join(self.call(s, 1) for _ in range(self.num(1, 3)))
        else:
            c = self.fresh("c")
            calls = f"*[probe({c}, {self.num(0, 2)}) for {c} in range({self.num(0, 4)})]"
        summary = f"[r if isinstance(r, int) else f'{{type(r).__name__}}{{r.args}}' for r in {g}]"
        first = f"{g} = await asyncio.gather({calls}, return_exceptions=True)"
        if s.in_run:
            return [first, f"log.append({summary})"]
        return [first, f"{self.pick(s.variables)} = len(str({summary})) % 1000"]

    def compound(self, kind: str, s: Scope) -> list[str]:
        if kind == "if":
            return self.if_statement(s)
        if kind == "for":
            return self.for_statement(s)
        if kind == "while":
            return self.while_statement(s)
        return self.try_statement(s)

    def if_statement(self, s: Scope) -> list[str]:
        inner = s.nested()
        lines = [f"if {self.cond(s)}:", *indent(self.block(inner))]
        for _ in range(self.num(0, 2)):
            lines += [f"elif {self.cond(s)}:", *indent(self.block(inner))]
        if self.num(0, 1):
            lines += ["else:", *indent(self.block(inner))]
        return lines

    def for_statement(self, s: Scope) -> list[str]:
        i = self.fresh("i")
        form = self.pick(["range", "list", "enumerate", "items", "mutated", "zip", "reversed"])
        prologue: list[str] = []
        readable: tuple[str, ...] = (i,)
        if form == "range":
            header = f"for {i} in range({self.num(0, 3)}):"
        elif form == "list":
            header = f"for {i} in [{', '.join(self.expr(s, 1) for _ in range(self.num(0, 3)))}]:"
        elif form == "enumerate":
            j = self.fresh("j")
            readable = (i, j)
            items = ", ".join(self.expr(s, 1) for _ in range(self.num(1, 3)))
            header = f"for {i}, {j} in enumerate([{items}]):"
        elif form == "items":
            j = self.fresh("j")
            readable = (i, j)
            header = f"for {i}, {j} in {{0: {self.expr(s, 1)}, 1: {self.expr(s, 1)}}}.items():"
        elif form == "zip":
            j = self.fresh("j")
            readable = (i, j)
            items = ", ".join(self.expr(s, 1) for _ in range(self.num(0, 3)))
            header = f"for {i}, {j} in zip(range({self.num(0, 3)}), [{items}]):"
        elif form == "reversed":
            header = f"for {i} in reversed(range({self.num(0, 3)})):"
        else:
            seq = self.fresh("items")
            prologue = [f"{seq} = [{self.expr(s, 1)}, {self.num(0, 9)}]"]
            header = f"for {i} in {seq}:"
            growth = [f"if len({seq}) < 5:", f"    {seq}.append(({i} + 1) % 1000)"]
        inner = s.nested(in_loop=True, readable=(*s.readable, *readable))
        body = self.block(inner)
        if form == "mutated":
            body = growth + body
        return [*prologue, header, *indent(body), *self.loop_else(s)]

    def while_statement(self, s: Scope) -> list[str]:
        w = self.fresh("w")
        bound = self.num(0, 3)
        condition = f"{w} < {bound}"
        if self.num(0, 2) == 0:
            condition += f" and {self.cond(s, 1)}"
        inner = s.nested(in_loop=True, readable=(*s.readable, w))
        body = [f"{w} += 1", *self.block(inner)]
        return [f"{w} = 0", f"while {condition}:", *indent(body), *self.loop_else(s)]

    def loop_else(self, s: Scope) -> list[str]:
        if self.num(0, 3):
            return []
        return ["else:", *indent(self.block(s.nested()))]

    def try_statement(self, s: Scope) -> list[str]:
        inner = s.nested()
        lines = ["try:", *indent(self.block(inner))]
        handlers = self.num(0, 2)
        for _ in range(handlers):
            exc_type = self.pick(HANDLER_TYPES)
            name = self.fresh("e") if self.num(0, 1) else None
            header = f"except {exc_type} as {name}:" if name else f"except {exc_type}:"
            handler_scope = inner.nested(in_handler=True, exc_name=name)
            lines += [header, *indent(self.block(replace(handler_scope, depth=inner.depth)))]
        if handlers and self.num(0, 2) == 0:
            lines += ["else:", *indent(self.block(inner))]
        if not handlers or self.num(0, 1):
            lines += ["finally:", *indent(self.block(inner))]
        return lines

    # -- whole program ----------------------------------------------------------------

    def helper(self, index: int) -> list[str]:
        s = Scope(
            variables=("v0", "v1", "v2"),
            max_depth=MAX_DEPTH_HELPER,
            helpers=index,
            in_run=False,
        )
        lines, ended = self.block_and_end(s, 4)
        body = [f"v2 = {self.num(0, 9)}", *lines]
        if not ended:
            body.append(f"return {self.expr(s)}")
        text = "\n".join(body)
        if "asyncio.gather" in text or any(f"self.h{j}(" in text for j in self._suspending):
            self._suspending.add(index)
        return [f"async def h{index}(self, v0: int, v1: int) -> int:", *indent(body)]

    def program(self) -> list[str]:
        helper_count = self.num(0, 2)
        methods: list[str] = []
        for index in range(helper_count):
            methods += [*self.helper(index), ""]
        s = Scope(variables=("v0", "v1", "v2", "v3"), helpers=helper_count)
        start = [f"v{k} = {self.num(0, 9)}" for k in range(1, 4)]
        lines, ended = self.block_and_end(s, 6)
        body = ["log: list[object] = []", "v0 = x", *start, *lines]
        if not ended:
            body.append("return log, v0, v1, v2, v3")
        methods += ["async def run(self, x: int) -> object:", *indent(body)]
        return ["@workflow", f"class {NAME_PLACEHOLDER}(Workflow):", *indent(methods)]


@st.composite
def programs(draw: Callable[[st.SearchStrategy[Any]], Any]) -> GeneratedProgram:
    """Strategy for :class:`GeneratedProgram`: a random, terminating workflow module."""
    builder = _Builder(draw)
    body = "\n".join(builder.program()) + "\n"
    x = builder.num(0, 20)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    class_name = f"Gen_{digest}"
    source = HEADER + "\n\n" + body.replace(NAME_PLACEHOLDER, class_name)
    return GeneratedProgram(
        source=source, class_name=class_name, module_name=f"rx_gen_{digest}", x=x
    )
