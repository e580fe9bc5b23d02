"""Find the objects that occur more than once in a value, before encoding it.

msgpack's C packer copies a list each time it meets it and recurses forever on a cycle.
This scan decides whether the value can go to the packer as is (nothing shared, nothing
msgpack would silently change the type of) or needs the graph encoder. It visits what
the encoders visit, in bulk where it can: a container of plain scalars is checked with
one C-level pass over its element types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from msgpack import ExtType, Timestamp

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, LEAF_TYPES, TRACKED_BUILTINS, EncodeFailure
from rappelx.runtime._codec_encode import object_state

# msgpack packs these itself but decodes them as another type (bytearray -> bytes) or
# as something the codec does not produce; only the graph encoder handles or rejects them.
_NEEDS_GRAPH_ENCODER: Final[frozenset[type]] = frozenset(
    {bytearray, memoryview, ExtType, Timestamp}
)
_SEQUENCES: Final[frozenset[type]] = frozenset({list, tuple, set, frozenset})


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
    while stack:
        obj = stack.pop()
        cls = type(obj)
        if cls in ATOMIC or cls in LEAF_TYPES:
            continue
        if cls in TRACKED_BUILTINS:
            if id(obj) in seen:
                shared.add(id(obj))
                continue
            seen.add(id(obj))
        if cls is dict:
            _push(stack, obj)  # type: ignore[arg-type]
            _push(stack, obj.values())  # type: ignore[attr-defined]
        elif cls in _SEQUENCES:
            _push(stack, obj)  # type: ignore[arg-type]
        elif cls in _NEEDS_GRAPH_ENCODER:
            needs_graph = True
        else:
            children = _object_children(obj, cls, seen, shared)
            if children is not None:
                stack.extend(children)
    return shared if shared or needs_graph else None


def _push(stack: list[object], items: Iterable[object]) -> None:
    if not ATOMIC.issuperset(map(type, items)):
        stack.extend(items)


def _object_children(
    obj: object, cls: type, seen: set[int], shared: set[int]
) -> Iterable[object] | None:
    try:
        info = c.class_info(cls)
    except EncodeFailure:
        return None  # the encoder reports it, with its path
    if info.code == c.ENUM:
        return None
    if id(obj) in seen:
        shared.add(id(obj))
        return None
    seen.add(id(obj))
    if info.code == c.EXCEPTION:
        exc: Any = obj
        return [*exc.args, *exc.__dict__.values(), exc.__cause__, exc.__context__]
    state = object_state(obj, info)
    if info.code == c.PYDANTIC:
        return _pydantic_children(state)
    return state.values()


def _pydantic_children(state: dict[str, Any]) -> list[object]:
    children = list(state["fields"].values())
    for slot in ("__pydantic_extra__", "__pydantic_private__"):
        if state.get(slot):
            children.extend(state[slot].values())
    return children
