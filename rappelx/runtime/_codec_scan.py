"""Find the objects that occur more than once in a value, for the graph encoder.

msgpack's C packer copies a list each time it meets it and recurses until its depth
limit on a cycle. When the fast path (``_codec_tree.py``) finds an object twice, this
scan finds all of them, so the graph encoder can write each once. It visits what the
encoders visit, each object once: builtin containers inline, the children of long ones
checked with one C-level pass over their types, and only those holding more than plain
scalars looked into.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

from msgpack import ExtType, Timestamp

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, LEAF_TYPES, EncodeFailure
from rappelx.runtime._codec_encode import PYDANTIC_SLOTS, object_state

_Children = Callable[[Any], Collection[object]]


class _Plan:
    """What the scan does with instances of one type."""

    __slots__ = ("children", "tracked")

    def __init__(self, tracked: bool, children: _Children | None) -> None:
        self.tracked = tracked
        self.children = children


_SKIP: Final = ATOMIC | LEAF_TYPES
_LEAF: Final = _Plan(False, None)
# msgpack packs these itself but decodes them as another type (bytearray -> bytes) or
# as something the codec does not produce: only the graph encoder handles or refuses them.
_NEEDS_GRAPH: Final = _Plan(True, None)
_PLANS: dict[type, _Plan] = {  # list, dict and tuple are handled inline
    set: _Plan(True, lambda obj: obj),
    frozenset: _Plan(False, lambda obj: obj),
    bytearray: _NEEDS_GRAPH,
    memoryview: _NEEDS_GRAPH,
    ExtType: _NEEDS_GRAPH,
    Timestamp: _NEEDS_GRAPH,
}


def find_shared(root: object) -> set[int] | None:
    """Return the ids of tracked objects met more than once in ``root``.

    Returns:
        None when the value can go straight to the msgpack packer; otherwise the set of
        shared ids (possibly empty) for the graph encoder.
    """
    seen: set[int] = set()
    shared: set[int] = set()
    needs_graph = False
    stack: list[object] = [root]
    push = stack.append
    while stack:
        obj = stack.pop()
        cls = type(obj)
        if cls in _SKIP:
            continue
        # The builtin containers inline, the rest by plan.
        if cls is dict or cls is list:
            ref = id(obj)
            if ref in seen:
                shared.add(ref)
                continue
            seen.add(ref)
            if cls is dict:
                for key, value in obj.items():  # type: ignore[attr-defined]
                    if type(key) not in _SKIP:
                        push(key)
                    if type(value) not in _SKIP:
                        push(value)
                continue
            children: Collection[object] = obj  # type: ignore[assignment]
        elif cls is tuple:
            children = obj  # type: ignore[assignment]
        else:
            plan = _PLANS.get(cls) or _plan_for(cls)
            if plan.tracked:
                ref = id(obj)
                if ref in seen:
                    shared.add(ref)
                    continue
                seen.add(ref)
            if plan.children is None:
                needs_graph = needs_graph or plan is _NEEDS_GRAPH
                continue
            children = plan.children(obj)
        if len(children) >= _MANY:
            if not ATOMIC.issuperset(map(type, children)):
                stack.extend(children)
        else:
            for child in children:
                if type(child) not in _SKIP:
                    push(child)
    return shared if shared or needs_graph else None


# From this many children, one C-level pass over their types is cheaper than a loop.
_MANY: Final = 16


def _plan_for(cls: type) -> _Plan:
    if issubclass(cls, type):  # a class as a value: stored by reference
        _PLANS[cls] = _LEAF
        return _LEAF
    try:
        info = c.class_info(cls)
    except EncodeFailure:
        return _LEAF  # the encoder reports it, with its path
    if info.code == c.ENUM:
        plan = _LEAF
    elif info.code == c.EXCEPTION:
        plan = _Plan(True, lambda exc: _exception_children(exc, info))
    elif info.code == c.PYDANTIC:
        plan = _Plan(True, _pydantic_children)
    elif info.slot_fields:
        plan = _Plan(True, lambda obj: object_state(obj, info).values())
    else:
        plan = _Plan(True, lambda obj: obj.__dict__.values())
    if c.is_cached(cls):
        _PLANS[cls] = plan
    return plan


def _exception_children(exc: BaseException, info: c.ClassInfo) -> list[object]:
    children = [*exc.args, *exc.__dict__.values(), exc.__cause__, exc.__context__]
    children += [descriptor.__get__(exc) for _, descriptor in info.builtin_fields]
    return children


def _pydantic_children(model: object) -> list[object]:
    state: dict[str, Any] = object_state(model, c.class_info(type(model)))
    children = list(state["fields"].values())
    for slot in PYDANTIC_SLOTS:
        if state.get(slot):
            children.extend(state[slot].values())
    return children
