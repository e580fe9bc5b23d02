"""``dumps``, and its fast path: values that hold no object twice, packed in one C pass.

Most payloads (an action's arguments and result, a small scope) hold no object twice.
For them, :func:`dumps` needs no more than msgpack's C packer plus a look at each object.
The packer packs lists and dicts without calling back into Python, and would silently
copy one that occurs twice. So before a list or dict is packed, :class:`TreeEncoder`
walks it, noting every list and dict inside by ``id`` and refusing what msgpack would
change the type of (bytearray, memoryview and its own ExtType and Timestamp). Everything
else reaches the packer's ``default`` hook, which does the same for what it is given: it
notes objects that have an identity (sets, dataclasses, pydantic models, exceptions),
walks the lists and dicts they hold, and returns what ``_codec_encode`` returns for
them. So each object is looked at once, by either the walk or the hook, and the bytes
are those of the plain encoding.

The walk does not look into tuples, frozensets or objects it meets: the hook does, when
the packer gets to them. When an object turns up a second time (shared, or a cycle) or
msgpack would change a type, the walk says so and the hook stops the packer with
:class:`NotATree`; an exception means the value cannot be encoded. Either way
:func:`~._codec_graph.encode_graph` takes over: it finds the shared objects, writes
them once with references back, and reports errors with their path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from msgpack import ExtType, Packer, Timestamp

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, ClassInfo
from rappelx.runtime._codec_encode import (
    BUILTIN_ENCODERS,
    FROZENSET_MARKER,
    PYDANTIC_SLOTS,
    SET_MARKER,
    TUPLE_MARKER,
    enum_name,
    exception_content,
    object_state,
    pydantic_state,
)
from rappelx.runtime._codec_graph import encode_graph

__all__ = ["NotATree", "TreeEncoder", "dumps", "register_value_class"]


class NotATree(Exception):
    """Internal: the value holds an object twice, or something msgpack would change."""


# msgpack packs these itself, without the hook, but they decode as something else.
_CHANGED_BY_MSGPACK: Final = frozenset({bytearray, memoryview, ExtType, Timestamp})
# From this many items, one C-level pass over their types is cheaper than a Python loop.
_MANY: Final = 16


class TreeEncoder:
    """The walk and the packer's hook of :func:`dumps`, for one value at a time."""

    __slots__ = ("pack", "seen")

    def __init__(self) -> None:
        self.seen: set[int] = set()  # id() of every list, dict and object met so far
        packer = Packer(default=self._default, strict_types=True, use_bin_type=True, buf_size=1024)
        self.pack: Callable[[object], bytes] = packer.pack

    def close(self) -> None:
        """Let the packer (and its buffer) go now: it and this encoder refer to each other."""
        self.pack = _closed

    # ---------------------------------------------------------------------- the walk
    def walk(self, items: Collection[object]) -> bool:
        """Note and walk the lists and dicts among ``items``; check the rest is packable.

        Returns False (at once) if a list or dict was met before, or something is there
        that msgpack would change. (Not an exception: values that share a list or dict
        are common, and raising costs more than walking a small value.)
        Everything else among them is left to the hook, which looks at it when the packer
        gets to it. (This loop and the one in walk_mapping are twins, not one helper:
        they run once per item, where a call per item would double the cost.)
        """
        if len(items) >= _MANY and ATOMIC.issuperset(map(type, items)):
            return True
        seen = self.seen
        for item in items:
            cls = type(item)
            if cls in ATOMIC:
                continue
            if cls is dict:
                ref = id(item)
                if ref in seen:
                    return False
                seen.add(ref)
                if item and not self.walk_mapping(item):  # type: ignore[arg-type]
                    return False
            elif cls is list:
                ref = id(item)
                if ref in seen:
                    return False
                seen.add(ref)
                if item and not self.walk(item):  # type: ignore[arg-type]
                    return False
            elif cls in _CHANGED_BY_MSGPACK:
                return False
        return True

    def walk_mapping(self, mapping: Mapping[object, object]) -> bool:
        """:meth:`walk` for a dict's values, and a check of its keys (one loop for both)."""
        seen = self.seen
        for key, item in mapping.items():
            # Keys are hashable, so never lists or dicts, and the hook gets those msgpack
            # does not pack itself: only the types msgpack would change need checking.
            if type(key) is not str and type(key) in _CHANGED_BY_MSGPACK:
                return False
            cls = type(item)  # from here on, as in walk()
            if cls in ATOMIC:
                continue
            if cls is dict:
                ref = id(item)
                if ref in seen:
                    return False
                seen.add(ref)
                if item and not self.walk_mapping(item):  # type: ignore[arg-type]
                    return False
            elif cls is list:
                ref = id(item)
                if ref in seen:
                    return False
                seen.add(ref)
                if item and not self.walk(item):  # type: ignore[arg-type]
                    return False
            elif cls in _CHANGED_BY_MSGPACK:
                return False
        return True

    def _note(self, obj: object) -> None:
        ref = id(obj)
        if ref in self.seen:
            raise NotATree
        self.seen.add(ref)

    # ---------------------------------------------------------------------- the hook
    def _default(self, obj: Any) -> object:
        cls = type(obj)
        if cls is tuple:
            for item in obj:  # most tuples hold only atomic values: no call for them
                if type(item) not in ATOMIC:
                    if not self.walk(obj):
                        raise NotATree
                    break
            return [TUPLE_MARKER, *obj]
        encode = _LEAVES.get(cls)
        if encode is not None:
            return encode(obj)
        entry = _OBJECTS.get(cls)
        if entry is None:
            return self._other(obj)
        ref = id(obj)  # as _note() does, inline: this runs once per object
        if ref in self.seen:
            raise NotATree
        self.seen.add(ref)
        return entry[0](self, obj, entry[1])

    def _other(self, obj: Any) -> object:
        """Encode a set or frozenset, or an instance of a class met for the first time."""
        cls = type(obj)
        if cls is frozenset:
            if not self.walk(obj):
                raise NotATree
            return [FROZENSET_MARKER, *obj]
        if cls is set:
            self._note(obj)
            if not self.walk(obj):
                raise NotATree
            return [SET_MARKER, *obj]
        learned = _learn(cls)
        if not isinstance(learned, tuple):
            return learned(obj)
        self._note(obj)  # a class not kept by name (see _learn) is encoded all the same
        method, info = learned
        return method(self, obj, info)

    def _dataclass(self, obj: object, info: ClassInfo) -> object:
        state = obj.__dict__
        # Only the values need a look: attribute names are strings, which msgpack packs
        # as they are. The same holds for the other attribute maps below.
        if not self.walk(state.values()):
            raise NotATree
        return [info.marker, state]

    def _slotted(self, obj: object, info: ClassInfo) -> object:
        state = object_state(obj, info)
        if not self.walk(state.values()):
            raise NotATree
        return [info.marker, state]

    def _pydantic(self, model: object, info: ClassInfo) -> object:
        state: dict[str, Any] = pydantic_state(model)
        if not self.walk(state["fields"].values()):
            raise NotATree
        for slot in PYDANTIC_SLOTS:
            if state.get(slot) and not self.walk(state[slot].values()):
                raise NotATree
        return [info.marker, state]

    def _exception(self, exc: BaseException, info: ClassInfo) -> object:
        content = exception_content(exc, info)
        builtin_fields: dict[str, object] = content[-1]  # type: ignore[assignment]
        # content holds a copy of the args as a list: walk the real ones
        if not (
            self.walk(exc.args)
            and self.walk(exc.__dict__.values())
            and self.walk(builtin_fields.values())
        ):
            raise NotATree
        return [info.marker, *content]


def _closed(value: object) -> bytes:
    raise RuntimeError("TreeEncoder used after close()")


_Leaf = Callable[[Any], object]
_Method = Callable[[TreeEncoder, Any, ClassInfo], object]
_Entry = tuple[_Method, ClassInfo]

# Values with no identity and nothing inside to walk: encoded on their own.
_LEAVES: dict[type, _Leaf] = {
    cls: encode for cls, encode in BUILTIN_ENCODERS.items() if cls not in (tuple, set, frozenset)
}
# Instances of user classes with an identity, by class: how to walk and encode them.
_OBJECTS: dict[type, _Entry] = {}
_METHODS: Final[dict[int, _Method]] = {
    c.DATACLASS: TreeEncoder._dataclass,
    c.PYDANTIC: TreeEncoder._pydantic,
    c.EXCEPTION: TreeEncoder._exception,
}


def _learn(cls: type) -> _Leaf | _Entry:
    """Sort out how to encode instances of ``cls``; remember it if ``cls`` is kept by name.

    Returns:
        The encoder of a leaf value (an Enum member, a class), or the method and class
        info for an object with an identity.

    Raises:
        EncodeFailure: Instances of ``cls`` cannot be encoded.
    """
    if issubclass(cls, type):  # the value is itself a class: cls is its metaclass
        _LEAVES[cls] = c.class_ref
        return c.class_ref
    info = c.class_info(cls)
    if info.code == c.ENUM:
        marker = info.marker
        leaf: _Leaf = lambda member: [marker, enum_name(member)]  # noqa: E731
        if c.is_cached(cls):
            _LEAVES[cls] = leaf
        return leaf
    method = _METHODS[info.code]
    if info.code == c.DATACLASS and (info.slot_fields or not info.has_dict):
        method = TreeEncoder._slotted
    entry = (method, info)
    if c.is_cached(cls):  # classes not found by name (local ones) are not kept alive
        _OBJECTS[cls] = entry
    return entry


def register_value_class(cls: type, encoder: Callable[[ExtType], _Leaf]) -> None:
    """Encode instances of ``cls`` as values: no identity kept, no walk, no per-class plan.

    For rappelx's own frozen dataclasses that only ever hold atomic values, such as the
    ``range`` a loop runs over. ``encoder(marker)`` returns the function that encodes an
    instance as ``[marker, {field: value, ...}]`` (every field, in order): the bytes of
    any dataclass instance, in one call. Being immutable, an instance that turned up
    twice would be written twice (the graph path still writes it once).
    """
    _LEAVES[cls] = encoder(c.class_info(cls).marker)


_IDLE: list[TreeEncoder] = []  # encoders not in use; list.pop and append are thread-safe
_MAX_IDLE: Final = 4
# A packer keeps the largest buffer it ever needed: after big values, make a new one.
_MAX_KEPT: Final = 64 * 1024


def dumps(value: object) -> bytes:
    """Encode ``value`` to bytes.

    Args:
        value: Any supported value (see :mod:`rappelx.runtime._codec`), nested up to a
            few hundred levels deep.

    Returns:
        The msgpack-based encoding; ``loads`` turns it back into an equal value of the
        same types, with shared objects shared.

    Raises:
        CodecError: Something in ``value`` is not supported; ``.path`` says where, like
            ``value['user'].conn``.
    """
    try:
        encoder = _IDLE.pop()
    except IndexError:
        encoder = TreeEncoder()
    data = None
    packing = False
    try:
        cls = type(value)
        content = value
        if cls is list:
            plain = encoder.walk(value)  # type: ignore[arg-type]
        elif cls is dict:
            plain = encoder.walk_mapping(value)  # type: ignore[arg-type]
        elif cls is tuple:  # what the hook would do, without a call from C: (args, kwargs)
            plain = encoder.walk(value)  # type: ignore[arg-type]
            content = [TUPLE_MARKER, *value]  # type: ignore[misc]
        else:
            plain = cls not in _CHANGED_BY_MSGPACK
        if plain:
            packing = True
            pack = encoder.pack  # an attribute holding a function: no method lookup
            data = pack(content)
    except Exception:  # NotATree from the hook, or the value cannot be encoded
        data = None
    encoder.seen.clear()
    if (packing and (data is None or len(data) > _MAX_KEPT)) or len(_IDLE) >= _MAX_IDLE:
        encoder.close()  # its buffer may have grown: let it go
    else:
        _IDLE.append(encoder)
    if data is None:
        return encode_graph(value)  # shared objects, or an error to report with a path
    return data
