"""Encoding values that share objects, and every value that fails to encode.

The first occurrence of a shared object becomes ``[SHARED marker, *content]``, where the
marker carries a ref number and the content is what the unshared form would hold; later
occurrences become a ``REF`` ext. The decoder creates the object when it reads the
marker, before the content, so objects inside can refer back to it: that is how cycles
work. Everything not shared is written exactly as the fast path
(``_codec_encode.py``) writes it.

The walker streams into one msgpack packer (array and map headers, then the elements),
so map keys need not be hashable once encoded. It is also where encode errors get their
path: a failure collects one label per level while it unwinds, so a value that encodes
pays nothing for paths.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

from msgpack import ExtType, Packer

from rappelx.exceptions import CodecError
from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, ClassInfo, EncodeFailure, new_ext
from rappelx.runtime._codec_encode import (
    BUILTIN_ENCODERS,
    FROZENSET_MARKER,
    SET_MARKER,
    TUPLE_MARKER,
    default,
    enum_name,
    exception_content,
    object_state,
    pack,
)
from rappelx.runtime._codec_scan import find_shared


def encode_graph(value: object) -> bytes:
    """Encode any value: the way for those that share objects or fail to encode.

    Raises:
        CodecError: Something in ``value`` is not supported; ``.path`` says where.
    """
    shared = find_shared(value)
    if shared is None:  # nothing shared after all (the fast path ran out of stack, say)
        try:
            return pack(value)
        except Exception:  # the graph encoder below reports what is wrong, with a path
            shared = set()
    try:
        return GraphEncoder(shared).encode(value)
    except EncodeFailure as failure:
        path = "value" + "".join(reversed(failure.labels))
        raise CodecError(f"cannot encode {path}: {failure.reason}", path=path) from None
    except RecursionError:
        raise CodecError(_TOO_DEEP, path="value") from None
    except Exception as exc:
        if "recursion limit" in str(exc):  # msgpack's own depth limit, as a ValueError
            raise CodecError(_TOO_DEEP, path="value") from None
        raise CodecError(f"cannot encode value: {type(exc).__name__}: {exc}", path="value") from exc


_TOO_DEEP: Final = (
    "cannot encode value: it is nested too deeply (over a few hundred levels); flatten it"
)


class GraphEncoder:
    """Writes one value as msgpack, keeping the identity of shared objects.

    Args:
        shared: ``id()`` of every tracked object that occurs more than once in the value.
    """

    def __init__(self, shared: set[int]) -> None:
        self._shared = shared
        self._refs: dict[int, int] = {}
        self._unfinished: set[int] = set()  # shared exception groups being written
        self._packer = Packer(
            default=default, strict_types=True, use_bin_type=True, autoreset=False, buf_size=1024
        )
        self._pack: Callable[[object], None] = self._packer.pack
        self._array: Callable[[int], None] = self._packer.pack_array_header

    def encode(self, root: object) -> bytes:
        """Return the encoded bytes of ``root``.

        Raises:
            EncodeFailure: Something in ``root`` is not supported (``labels`` say where).
        """
        self.write(root)
        return self._packer.bytes()  # type: ignore[no-any-return]

    def write(self, obj: object) -> None:
        """Append ``obj`` to the output."""
        cls = type(obj)
        if cls in ATOMIC:
            self._pack(obj)  # ints beyond 64 bits go through the default hook
            return
        method = _BY_TYPE.get(cls)
        if method is not None:
            method(self, obj)
        elif cls in c.LEAF_TYPES:
            self._pack(BUILTIN_ENCODERS[cls](obj))
        elif isinstance(obj, type):
            self._pack(c.class_ref(obj))
        else:
            info = c.class_info(cls)
            if info.code == c.ENUM:
                self._pack([info.marker, enum_name(obj)])  # type: ignore[arg-type]
            elif info.code == c.EXCEPTION:
                self._exception(obj, info)  # type: ignore[arg-type]
            else:
                self._object(obj, info)

    # ------------------------------------------------------------------- identity
    def _define(self, obj: object, code: int, name: bytes = b"") -> ExtType | None:
        """The marker to start ``obj`` with: SHARED (first time) or REF (later), if shared."""
        key = id(obj)
        if key not in self._shared:
            return None
        ref = self._refs.get(key)
        if ref is not None:
            if key in self._unfinished:
                raise EncodeFailure(
                    f"the {c.type_name(type(obj))} exception group contains itself; an "
                    f"exception group is rebuilt from its args, so it cannot"
                )
            return new_ext(c.REF, ref.to_bytes(4, "big"))
        ref = self._refs[key] = len(self._refs)
        return new_ext(c.SHARED, ref.to_bytes(4, "big") + bytes([code]) + name)

    def _start(self, marker: ExtType | None, length: int) -> None:
        """Write the array header and marker that open a ``[marker, *content]`` list."""
        self._array(length + 1)
        self._pack(marker)

    def _marked(self, marker: ExtType, items: Collection[object], label: str = "[{}]") -> None:
        """Write ``[marker, *items]``."""
        if _all_atomic(items):
            self._pack([marker, *items])  # all in C
            return
        self._start(marker, len(items))
        self._items(items, label)

    # ----------------------------------------------------------------- containers
    def _list(self, obj: list[object]) -> None:
        marker = self._define(obj, c.LIST)
        if marker is None:
            if _all_atomic(obj):
                self._pack(obj)  # all in C
                return
            self._array(len(obj))
            self._items(obj)
        elif marker.code == c.REF:
            self._pack(marker)
        else:
            self._marked(marker, obj)

    def _dict(self, obj: dict[object, object]) -> None:
        marker = self._define(obj, c.DICT)
        if marker is not None and marker.code == c.REF:
            self._pack(marker)
            return
        if marker is not None:
            self._start(marker, 1)
        self._mapping(obj)

    def _set(self, obj: set[object]) -> None:
        marker = self._define(obj, c.SET)
        if marker is not None and marker.code == c.REF:
            self._pack(marker)
            return
        self._marked(SET_MARKER if marker is None else marker, obj, "<item {}>")

    def _bytearray(self, obj: bytearray) -> None:
        marker = self._define(obj, c.BYTEARRAY)
        if marker is None:
            self._pack(new_ext(c.BYTEARRAY, bytes(obj)))
        elif marker.code == c.REF:
            self._pack(marker)
        else:
            self._pack([marker, bytes(obj)])

    def _tuple(self, obj: tuple[object, ...]) -> None:
        self._marked(TUPLE_MARKER, obj)

    def _frozenset(self, obj: frozenset[object]) -> None:
        self._marked(FROZENSET_MARKER, obj, "<item {}>")

    # -------------------------------------------------------------------- objects
    def _object(self, obj: object, info: ClassInfo) -> None:
        marker = self._define(obj, info.code, info.marker.data)
        if marker is not None and marker.code == c.REF:
            self._pack(marker)
            return
        state = object_state(obj, info)
        self._start(info.marker if marker is None else marker, 1)
        if info.code == c.PYDANTIC:
            self._pydantic(state)
        else:
            self._attrs(state)

    def _pydantic(self, state: dict[str, Any]) -> None:
        self._packer.pack_map_header(len(state))
        for key, value in state.items():
            self._pack(key)
            if key == "set" or value is None:
                self._pack(value)
            else:
                self._attrs(value)

    def _exception(self, exc: BaseException, info: ClassInfo) -> None:
        marker = self._define(exc, c.EXCEPTION, info.marker.data)
        if marker is not None and marker.code == c.REF:
            self._pack(marker)
            return
        message, args, attrs, cause, context, suppress, fields = exception_content(exc, info)
        group = isinstance(exc, BaseExceptionGroup) and marker is not None
        if group:
            self._unfinished.add(id(exc))
        self._start(info.marker if marker is None else marker, 7)
        self._pack(message)
        _labelled(self._sequence, args, ".args")
        self._attrs(attrs)  # type: ignore[arg-type]
        _labelled(self.write, cause, ".__cause__")
        _labelled(self.write, context, ".__context__")
        self._pack(suppress)
        self._attrs(fields)  # type: ignore[arg-type]
        if group:
            self._unfinished.discard(id(exc))

    # ------------------------------------------------------------------- children
    def _sequence(self, items: Collection[object]) -> None:
        self._array(len(items))
        self._items(items)

    def _items(self, items: Collection[object], label: str = "[{}]") -> None:
        if _all_atomic(items):
            for item in items:
                self._pack(item)
            return
        index = 0
        try:
            for index, item in enumerate(items):  # noqa: B007 -- the label needs it
                # Straight to the container's method: one Python frame less per level.
                (_BY_TYPE.get(type(item)) or GraphEncoder.write)(self, item)
        except EncodeFailure as failure:
            failure.labels.append(label.format(index))
            raise

    def _mapping(self, obj: dict[object, object]) -> None:
        if _all_atomic(obj) and _all_atomic(obj.values()):
            self._pack(obj)  # all in C
            return
        self._packer.pack_map_header(len(obj))
        for key, value in obj.items():
            label = "<key {}>"
            try:
                if type(key) in ATOMIC:
                    self._pack(key)
                else:
                    (_BY_TYPE.get(type(key)) or GraphEncoder.write)(self, key)
                label = "[{}]"
                (_BY_TYPE.get(type(value)) or GraphEncoder.write)(self, value)
            except EncodeFailure as failure:
                failure.labels.append(label.format(_short_repr(key)))
                raise

    def _attrs(self, attrs: dict[str, object]) -> None:
        if type(attrs) is dict and _all_atomic(attrs.values()):
            self._pack(attrs)  # all in C
            return
        self._packer.pack_map_header(len(attrs))
        for name, value in attrs.items():
            self._pack(name)
            try:
                self.write(value)
            except EncodeFailure as failure:
                failure.labels.append(f".{name}")
                raise


_BY_TYPE: Final[dict[type, Callable[[GraphEncoder, Any], None]]] = {
    list: GraphEncoder._list,
    dict: GraphEncoder._dict,
    set: GraphEncoder._set,
    bytearray: GraphEncoder._bytearray,
    tuple: GraphEncoder._tuple,
    frozenset: GraphEncoder._frozenset,
}


def _labelled(write: Callable[[Any], None], value: object, label: str) -> None:
    try:
        write(value)
    except EncodeFailure as failure:
        failure.labels.append(label)
        raise


def _all_atomic(items: Collection[object]) -> bool:
    return ATOMIC.issuperset(map(type, items))


def _short_repr(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."
