"""Encoding values that share objects, and every value that fails to encode.

The first occurrence of a shared object becomes ``SHARED [ref, code, header, body]``
(the body packed separately, so the decoder can create the empty object and register it
before decoding what is inside: that is what lets cycles through it work); later
occurrences become ``REF ref``. Everything not shared is written exactly as the fast
path (``_codec_encode.py``) writes it.

This walker is also where encode errors get their path: it converts the value
recursively, and a failure collects one label per level while it unwinds, so a value
that encodes pays nothing for paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from msgpack import ExtType

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ATOMIC, ClassInfo, EncodeFailure
from rappelx.runtime._codec_encode import (
    LEAF_ENCODERS,
    encode_enum,
    exception_parts,
    object_state,
    pack,
)

_PYDANTIC_SLOTS: Final = ("__pydantic_extra__", "__pydantic_private__")


class GraphEncoder:
    """Converts one value to msgpack-native data and ext types, keeping identity.

    Args:
        shared: ``id()`` of every tracked object that occurs more than once in the value.
    """

    def __init__(self, shared: set[int]) -> None:
        self._shared = shared
        self._refs: dict[int, int] = {}
        self._in_args: set[int] = set()  # shared exceptions whose args are being converted

    def encode(self, root: object) -> bytes:
        """Return the encoded bytes of ``root``.

        Raises:
            EncodeFailure: Something in ``root`` is not supported (``labels`` say where).
        """
        tree = self.convert(root)
        if self._refs:
            tree = ExtType(c.GRAPH, pack(tree))
        return pack(tree)

    def convert(self, obj: object) -> object:
        """Return ``obj`` as msgpack-native data, ext types for everything else."""
        cls = type(obj)
        if cls in ATOMIC:
            return obj  # ints beyond 64 bits are left to pack()'s default hook
        leaf = LEAF_ENCODERS.get(cls)
        if leaf is not None:
            return leaf(obj)
        method = _BY_TYPE.get(cls)
        if method is not None:
            return method(self, obj)
        info = c.class_info(cls)
        if info.code == c.ENUM:
            return encode_enum(obj, info)  # type: ignore[arg-type]
        if info.code == c.EXCEPTION:
            return self._exception(obj)  # type: ignore[arg-type]
        return self._object(obj, info)

    # ------------------------------------------------------------------- identity
    def _define(self, obj: object) -> int | ExtType | None:
        """None if ``obj`` is not shared; its REF if already written; else a new ref."""
        key = id(obj)
        if key not in self._shared:
            return None
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = len(self._refs)
            return ref
        if key in self._in_args:
            raise EncodeFailure(
                f"the {c.type_name(type(obj))} exception contains itself in its args; "
                f"store the reference in an attribute instead"
            )
        return ExtType(c.REF, pack(ref))

    def _shared_ext(self, ref: int, code: int, header: object, body: object) -> ExtType:
        return ExtType(c.SHARED, pack([ref, code, header, pack(body)]))

    # ----------------------------------------------------------------- containers
    def _list(self, obj: list[object]) -> object:
        ref = self._define(obj)
        if ref is None:
            return self._items(obj)
        if isinstance(ref, ExtType):
            return ref
        return self._shared_ext(ref, c.LIST, None, self._items(obj))

    def _dict(self, obj: dict[object, object]) -> object:
        ref = self._define(obj)
        if ref is None:
            return self._mapping(obj)
        if isinstance(ref, ExtType):
            return ref
        return self._shared_ext(ref, c.DICT, None, self._mapping(obj))

    def _set(self, obj: set[object]) -> object:
        ref = self._define(obj)
        if isinstance(ref, ExtType):
            return ref
        items = self._items(obj, "<item {}>")
        if ref is None:
            return ExtType(c.SET, pack(items))
        return self._shared_ext(ref, c.SET, None, items)

    def _bytearray(self, obj: bytearray) -> object:
        ref = self._define(obj)
        if isinstance(ref, ExtType):
            return ref
        if ref is None:
            return ExtType(c.BYTEARRAY, bytes(obj))
        return self._shared_ext(ref, c.BYTEARRAY, None, bytes(obj))

    def _tuple(self, obj: tuple[object, ...]) -> object:
        return ExtType(c.TUPLE, pack(self._items(obj)))

    def _frozenset(self, obj: frozenset[object]) -> object:
        return ExtType(c.FROZENSET, pack(self._items(obj, "<item {}>")))

    # -------------------------------------------------------------------- objects
    def _object(self, obj: object, info: ClassInfo) -> object:
        ref = self._define(obj)
        if isinstance(ref, ExtType):
            return ref
        state = object_state(obj, info)
        body = self._pydantic(state) if info.code == c.PYDANTIC else self._attrs(state)
        if ref is None:
            return ExtType(info.code, pack([*info.header, body]))
        return self._shared_ext(ref, info.code, list(info.header), body)

    def _pydantic(self, state: dict[str, Any]) -> dict[str, object]:
        body: dict[str, object] = {"fields": self._attrs(state["fields"]), "set": state["set"]}
        for slot in _PYDANTIC_SLOTS:
            if slot in state:
                body[slot] = None if state[slot] is None else self._attrs(state[slot])
        return body

    def _exception(self, exc: BaseException) -> object:
        ref = self._define(exc)
        if isinstance(ref, ExtType):
            return ref
        header, (attrs, cause, context, suppress) = exception_parts(exc)
        self._in_args.add(id(exc))
        try:
            header[3] = _labelled(self._items, header[3], ".args")
        finally:
            self._in_args.discard(id(exc))
        body = [
            self._attrs(attrs),  # type: ignore[arg-type]
            _labelled(self.convert, cause, ".__cause__"),
            _labelled(self.convert, context, ".__context__"),
            suppress,
        ]
        if ref is None:
            return ExtType(c.EXCEPTION, pack([*header, body]))
        return self._shared_ext(ref, c.EXCEPTION, header, body)

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
