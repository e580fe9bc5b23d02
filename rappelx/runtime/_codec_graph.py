"""Encoding values that share objects, and every value that fails to encode.

The first occurrence of a shared object becomes ``[SHARED marker, *content]``, where the
marker carries a ref number and the content is what the unshared form would hold; later
occurrences become a ``REF`` ext. The decoder creates the object when it reads the
marker, before the content, so objects inside can refer back to it: that is how cycles
work. Everything not shared is written exactly as the fast path
(``_codec_encode.py``) writes it.

This walker is also where encode errors get their path: a failure collects one label
per level while it unwinds, so a value that encodes pays nothing for paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from msgpack import ExtType

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, ClassInfo, EncodeFailure
from rappelx.runtime._codec_encode import (
    BUILTIN_ENCODERS,
    FROZENSET_MARKER,
    PYDANTIC_SLOTS,
    SET_MARKER,
    TUPLE_MARKER,
    enum_name,
    exception_content,
    object_state,
    pack,
)


class GraphEncoder:
    """Converts one value to msgpack-native data and ext types, keeping identity.

    Args:
        shared: ``id()`` of every tracked object that occurs more than once in the value.
    """

    def __init__(self, shared: set[int]) -> None:
        self._shared = shared
        self._refs: dict[int, int] = {}
        self._unfinished: set[int] = set()  # shared exception groups being converted

    def encode(self, root: object) -> bytes:
        """Return the encoded bytes of ``root``.

        Raises:
            EncodeFailure: Something in ``root`` is not supported (``labels`` say where).
        """
        return pack(self.convert(root))

    def convert(self, obj: object) -> object:
        """Return ``obj`` as msgpack-native data, ext types and marker lists."""
        cls = type(obj)
        if cls in ATOMIC:
            return obj  # ints beyond 64 bits are left to pack()'s default hook
        method = _BY_TYPE.get(cls)
        if method is not None:
            return method(self, obj)
        if cls in c.LEAF_TYPES:
            return BUILTIN_ENCODERS[cls](obj)
        info = c.class_info(cls)
        if info.code == c.ENUM:
            return [info.marker, enum_name(obj)]  # type: ignore[arg-type]
        if info.code == c.EXCEPTION:
            return self._exception(obj, info)  # type: ignore[arg-type]
        return self._object(obj, info)

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
            return ExtType(c.REF, ref.to_bytes(4, "big"))
        ref = self._refs[key] = len(self._refs)
        return ExtType(c.SHARED, ref.to_bytes(4, "big") + bytes([code]) + name)

    # ----------------------------------------------------------------- containers
    def _list(self, obj: list[object]) -> object:
        marker = self._define(obj, c.LIST)
        if marker is None:
            return self._items(obj)
        if marker.code == c.REF:
            return marker
        return [marker, *self._items(obj)]

    def _dict(self, obj: dict[object, object]) -> object:
        marker = self._define(obj, c.DICT)
        if marker is None:
            return self._mapping(obj)
        if marker.code == c.REF:
            return marker
        return [marker, self._mapping(obj)]

    def _set(self, obj: set[object]) -> object:
        marker = self._define(obj, c.SET)
        if marker is not None and marker.code == c.REF:
            return marker
        return [SET_MARKER if marker is None else marker, *self._items(obj, "<item {}>")]

    def _bytearray(self, obj: bytearray) -> object:
        marker = self._define(obj, c.BYTEARRAY)
        if marker is None:
            return ExtType(c.BYTEARRAY, bytes(obj))
        if marker.code == c.REF:
            return marker
        return [marker, bytes(obj)]

    def _tuple(self, obj: tuple[object, ...]) -> object:
        return [TUPLE_MARKER, *self._items(obj)]

    def _frozenset(self, obj: frozenset[object]) -> object:
        return [FROZENSET_MARKER, *self._items(obj, "<item {}>")]

    # -------------------------------------------------------------------- objects
    def _object(self, obj: object, info: ClassInfo) -> object:
        marker = self._define(obj, info.code, info.marker.data)
        if marker is not None and marker.code == c.REF:
            return marker
        state = object_state(obj, info)
        body = self._pydantic(state) if info.code == c.PYDANTIC else self._attrs(state)
        return [info.marker if marker is None else marker, body]

    def _pydantic(self, state: dict[str, Any]) -> dict[str, object]:
        body: dict[str, object] = {"fields": self._attrs(state["fields"]), "set": state["set"]}
        for slot in PYDANTIC_SLOTS:
            if slot in state:
                body[slot] = None if state[slot] is None else self._attrs(state[slot])
        return body

    def _exception(self, exc: BaseException, info: ClassInfo) -> object:
        marker = self._define(exc, c.EXCEPTION, info.marker.data)
        if marker is not None and marker.code == c.REF:
            return marker
        message, args, attrs, cause, context, suppress, fields = exception_content(exc, info)
        group = isinstance(exc, BaseExceptionGroup) and marker is not None
        if group:
            self._unfinished.add(id(exc))
        content = [
            message,
            _labelled(self._items, args, ".args"),
            self._attrs(attrs),  # type: ignore[arg-type]
            _labelled(self.convert, cause, ".__cause__"),
            _labelled(self.convert, context, ".__context__"),
            suppress,
            self._attrs(fields),  # type: ignore[arg-type]
        ]
        if group:
            self._unfinished.discard(id(exc))
        return [info.marker if marker is None else marker, *content]

    # ------------------------------------------------------------------- children
    def _items(self, items: Iterable[object], label: str = "[{}]") -> list[object]:
        out: list[object] = []
        try:
            for item in items:
                out.append(self.convert(item))
        except EncodeFailure as failure:
            failure.labels.append(label.format(len(out)))
            raise
        return out

    def _mapping(self, obj: dict[object, object]) -> dict[object, object]:
        out: dict[object, object] = {}
        for key, value in obj.items():
            converted = _labelled(self.convert, key, f"<key {_short_repr(key)}>")
            out[converted] = _labelled(self.convert, value, f"[{_short_repr(key)}]")
        return out

    def _attrs(self, attrs: dict[str, object]) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, value in attrs.items():
            out[name] = _labelled(self.convert, value, f".{name}")
        return out


_BY_TYPE: Final[dict[type, Callable[[GraphEncoder, Any], object]]] = {
    list: GraphEncoder._list,
    dict: GraphEncoder._dict,
    set: GraphEncoder._set,
    bytearray: GraphEncoder._bytearray,
    tuple: GraphEncoder._tuple,
    frozenset: GraphEncoder._frozenset,
}


def _labelled(convert: Callable[[Any], Any], value: object, label: str) -> Any:
    try:
        return convert(value)
    except EncodeFailure as failure:
        failure.labels.append(label)
        raise


def _short_repr(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."
