"""Hoist awaits out of expressions, keeping Python's evaluation order.

``a = await f() + await g()`` becomes::

    _rx_t0 = await f()
    _rx_t1 = await g()
    a = _rx_t0 + _rx_t1

Sub-expressions that Python evaluates before an await are hoisted into temporaries too
(``h()`` in ``foo(h(), await f())``), short-circuiting operators and conditional
expressions become ``if`` statements, and a list comprehension that awaits becomes a
``for`` loop — so side effects and exceptions happen in the order Python would produce
them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rappelx.compiler import _diagnostics as diag
from rappelx.compiler._symbols import contains_await

Stmts = list[ast.stmt]


def name(ident: str, store: bool = False) -> ast.Name:
    return ast.Name(id=ident, ctx=ast.Store() if store else ast.Load())


def assign(ident: str, value: ast.expr, anchor: ast.AST) -> ast.Assign:
    node = ast.Assign(targets=[name(ident, store=True)], value=value)
    return ast.copy_location(node, anchor)


# Builtins without side effects: a call of one on pure arguments may stay in place
# instead of being hoisted (its result, a range or a zip, may not even be persistable).
_PURE_BUILTINS = frozenset(
    "abs all any bool bytes dict divmod enumerate float frozenset hash int isinstance "
    "issubclass len list max min range repr reversed round set sorted str sum tuple type "
    "zip".split()
)


def _pure(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Constant | ast.Name | ast.Lambda):
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return (
            expr.func.id in _PURE_BUILTINS
            and all(_pure(a.value if isinstance(a, ast.Starred) else a) for a in expr.args)
            and all(_pure(k.value) for k in expr.keywords)
        )
    if isinstance(expr, ast.Tuple | ast.List):
        return all(_pure(e) for e in expr.elts)
    return False


@dataclass(slots=True)
class Slot:
    holder: Any
    key: Any

    def get(self) -> ast.expr:
        if isinstance(self.holder, list):
            value: ast.expr = self.holder[self.key]
            return value
        value = getattr(self.holder, self.key)
        return value

    def set(self, value: ast.expr) -> None:
        if isinstance(self.holder, list):
            self.holder[self.key] = value
        else:
            setattr(self.holder, self.key, value)


def _ordered_slots(node: ast.expr) -> Iterator[Slot]:
    """Child expressions of ``node`` in the order Python evaluates them."""
    if isinstance(node, ast.Dict):
        for i in range(len(node.values)):
            if node.keys[i] is not None:
                yield Slot(node.keys, i)
            yield Slot(node.values, i)
        return
    for field_name in node._fields:
        value = getattr(node, field_name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _unwrap(Slot(value, i), item)
        elif isinstance(value, ast.expr) and not (
            isinstance(node, ast.NamedExpr) and field_name == "target"
        ):
            yield from _unwrap(Slot(node, field_name), value)


def _unwrap(slot: Slot, item: Any) -> Iterator[Slot]:
    if isinstance(item, ast.Starred | ast.FormattedValue):
        # `*x` and the `{x}` of an f-string are not values of their own: hoist what is inside.
        yield Slot(item, "value")
    elif isinstance(item, ast.keyword):
        yield Slot(item, "value")
    elif isinstance(item, ast.expr):
        yield slot


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.mapping:
            return ast.copy_location(ast.Name(id=self.mapping[node.id], ctx=node.ctx), node)
        return node


@dataclass(slots=True)
class Hoister:
    """Linearizes expressions; ``fresh`` names temporaries, ``report`` records errors."""

    fresh: Callable[[str], str]
    report: Callable[..., None]
    #: What each temporary stands for, as the user wrote it (for labels in drawings).
    shown: dict[str, ast.expr] = field(default_factory=dict)

    def expr(self, node: ast.expr) -> tuple[Stmts, ast.expr]:
        """``(statements to run first, await-free replacement for node)``."""
        if not contains_await(node):
            return [], node
        if isinstance(node, ast.Await):
            return self._await(node)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.IfExp):
            return self._ifexp(node)
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            return self._chain(node)
        if isinstance(node, ast.ListComp):
            return self._listcomp(node)
        if isinstance(node, ast.SetComp | ast.DictComp | ast.GeneratorExp):
            kind = {ast.SetComp: "set comprehension", ast.DictComp: "dict comprehension"}.get(
                type(node), "generator expression"
            )
            self.report(node, diag.AWAIT_IN_COMPREHENSION, kind=kind)
            return [], ast.Constant(None)
        return self._generic(node)

    def call_args(self, call: ast.Call) -> tuple[Stmts, ast.Call]:
        """Hoist awaits out of a call's arguments (the callee itself stays in place)."""
        slots = [s for s in _ordered_slots(call) if not (s.holder is call and s.key == "func")]
        return self._hoist_slots(slots), call

    def slots(self, slots: list[Slot]) -> Stmts:
        """Hoist awaits out of ``slots`` (children of one node, in evaluation order)."""
        return self._hoist_slots(slots)

    def _await(self, node: ast.Await) -> tuple[Stmts, ast.expr]:
        if not isinstance(node.value, ast.Call):
            self.report(node, diag.NOT_AN_ACTION, found=f"'{ast.unparse(node.value)}'")
            return [], ast.Constant(None)
        pre, call = self.call_args(node.value)
        temp = self.fresh("t")
        self.shown[temp] = node
        pre.append(assign(temp, ast.copy_location(ast.Await(value=call), node), node))
        return pre, name(temp)

    def _generic(self, node: ast.expr) -> tuple[Stmts, ast.expr]:
        return self._hoist_slots(list(_ordered_slots(node)), call=node), node

    def _hoist_slots(self, slots: list[Slot], call: ast.expr | None = None) -> Stmts:
        awaiting = [i for i, s in enumerate(slots) if contains_await(s.get())]
        if not awaiting:
            return []
        pre: Stmts = []
        for slot in slots[: awaiting[-1] + 1]:
            child = slot.get()
            if contains_await(child):
                sub, replacement = self.expr(child)
                pre.extend(sub)
                slot.set(replacement)
            elif _pure(child):
                continue
            elif isinstance(call, ast.Call) and slot.holder is call and slot.key == "func":
                # Keep `obj.method` together: hoist `obj`, not the bound method.
                if isinstance(child, ast.Attribute) and not _pure(child.value):
                    temp = self.fresh("t")
                    self.shown[temp] = child.value
                    pre.append(assign(temp, child.value, child))
                    child.value = name(temp)
            else:
                temp = self.fresh("t")
                self.shown[temp] = child
                pre.append(assign(temp, child, child))
                slot.set(name(temp))
        return pre

    def _boolop(self, node: ast.BoolOp) -> tuple[Stmts, ast.expr]:
        temp = self.fresh("t")
        self.shown[temp] = node
        pre, first = self.expr(node.values[0])
        pre.append(assign(temp, first, node))

        def chain(values: list[ast.expr]) -> Stmts:
            if not values:
                return []
            sub, value = self.expr(values[0])
            body = [*sub, assign(temp, value, values[0]), *chain(values[1:])]
            test: ast.expr = name(temp)
            if isinstance(node.op, ast.Or):
                test = ast.UnaryOp(op=ast.Not(), operand=name(temp))
            return [ast.copy_location(ast.If(test=test, body=body, orelse=[]), values[0])]

        return [*pre, *chain(node.values[1:])], name(temp)

    def _ifexp(self, node: ast.IfExp) -> tuple[Stmts, ast.expr]:
        temp = self.fresh("t")
        self.shown[temp] = node
        pre, test = self.expr(node.test)
        body_pre, body = self.expr(node.body)
        else_pre, orelse = self.expr(node.orelse)
        branch = ast.If(
            test=test,
            body=[*body_pre, assign(temp, body, node.body)],
            orelse=[*else_pre, assign(temp, orelse, node.orelse)],
        )
        return [*pre, ast.copy_location(branch, node)], name(temp)

    def _chain(self, node: ast.Compare) -> tuple[Stmts, ast.expr]:
        # a < b < c  ==  (a < b) and (b < c), each operand evaluated once.
        result = self.fresh("t")
        self.shown[result] = node
        operands = [node.left, *node.comparators]
        pre, left = self.expr(operands[0])
        left_name = self.fresh("t")
        self.shown[left_name] = operands[0]
        pre.append(assign(left_name, left, operands[0]))

        def step(i: int, left_ident: str) -> Stmts:
            sub, right = self.expr(operands[i + 1])
            right_ident = self.fresh("t")
            self.shown[right_ident] = operands[i + 1]
            compare = ast.Compare(
                left=name(left_ident), ops=[node.ops[i]], comparators=[name(right_ident)]
            )
            out = [*sub, assign(right_ident, right, operands[i + 1]), assign(result, compare, node)]
            if i + 1 < len(node.ops):
                out.append(
                    ast.copy_location(
                        ast.If(test=name(result), body=step(i + 1, right_ident), orelse=[]), node
                    )
                )
            return out

        return [*pre, *step(0, left_name)], name(result)

    def _listcomp(self, node: ast.ListComp) -> tuple[Stmts, ast.expr]:
        result = self.fresh("c")
        self.shown[result] = node
        mapping: dict[str, str] = {}
        for generator in node.generators:
            if generator.is_async:
                self.report(generator, diag.ASYNC_FOR)
            for target in ast.walk(generator.target):
                if isinstance(target, ast.Name) and target.id not in mapping:
                    mapping[target.id] = self.fresh(f"v_{target.id}")
                    self.shown[mapping[target.id]] = name(target.id)
        first_iter = node.generators[0].iter
        renamer = _Renamer(mapping)
        renamed = renamer.visit(
            ast.ListComp(
                elt=node.elt,
                generators=[
                    ast.comprehension(
                        target=g.target,
                        iter=g.iter if i else ast.Constant(None),
                        ifs=g.ifs,
                        is_async=0,
                    )
                    for i, g in enumerate(node.generators)
                ],
            )
        )
        append = ast.Expr(
            value=ast.Call(
                func=ast.Attribute(value=name(result), attr="append", ctx=ast.Load()),
                args=[renamed.elt],
                keywords=[],
            )
        )
        body: Stmts = [ast.copy_location(append, node.elt)]
        for i in reversed(range(len(node.generators))):
            generator = renamed.generators[i]
            for condition in reversed(generator.ifs):
                body = [ast.copy_location(ast.If(test=condition, body=body, orelse=[]), condition)]
            iterable = first_iter if i == 0 else generator.iter
            loop = ast.For(target=generator.target, iter=iterable, body=body, orelse=[])
            body = [ast.copy_location(loop, node)]
        start = assign(result, ast.List(elts=[], ctx=ast.Load()), node)
        return [start, *body], name(result)
