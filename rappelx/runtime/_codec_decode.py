"""Decoding: msgpack's C unpacker plus an ``ext_hook`` and a ``list_hook``.

The ext hook turns value exts into their values and marker exts into :class:`Marker`
objects; the list hook turns every ``[marker, *content]`` list into the value the marker
stands for. Classes are found only through :func:`~._codec_classes.find_class`
(already imported modules, no code run) and only if they are of the kind the payload
claims. Instances are created without calling ``__init__`` (``object.__new__``, or the
builtin exception base's ``__new__``) and their stored state is put back directly, so
no user code runs while decoding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from functools import reduce
from operator import or_
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import unpackb

from rappelx.exceptions import CodecError, WorkflowFailed
from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_decode_objects import (
    dataclass_builder,
    fill_dataclass,
    fill_exception,
    fill_pydantic,
    fill_stand_in,
    new_exception,
    new_instance,
)

_Build = Callable[[list[Any]], object]
_IDLE: list[Decoder] = []  # decoders not in use; list.pop and append are thread-safe
_MAX_IDLE: Final = 4


class Marker:
    """What a marker ext decodes to: how to build a value from its ``[marker, ...]`` list."""

    __slots__ = ("build", "code")

    def __init__(self, build: _Build, code: int = 0) -> None:
        self.build = build
        self.code = code


def loads(data: bytes) -> object:
    """Decode bytes written by :func:`~rappelx.runtime._codec.dumps`.

    Classes are looked up by name only among modules this process has already imported,
    and only Enums, dataclasses, pydantic models and exceptions are rebuilt, without
    calling their ``__init__``. An exception whose class cannot be found comes back as
    :class:`~rappelx.exceptions.WorkflowFailed` with the original type name and message.

    Raises:
        CodecError: The data is corrupt, or names a class that is not loaded or not of an
            accepted kind.
    """
    try:
        decoder = _IDLE.pop()
    except IndexError:
        decoder = Decoder()
    try:
        value = unpackb(
            data, ext_hook=decoder.ext_hook, list_hook=decoder.list_hook, strict_map_key=False
        )
    except CodecError:
        raise
    except Exception as exc:  # corrupt data surfaces as whatever msgpack or a hook raised
        raise CodecError(
            f"cannot decode: the data is corrupt or was not written by rappelx's codec "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if decoder.open_markers:
        raise CodecError("cannot decode: a type marker is out of place; corrupt data")
    if decoder.memo is not None or decoder.classes is not None:
        decoder.memo = decoder.classes = None  # let this payload's objects go
    if len(_IDLE) < _MAX_IDLE:
        _IDLE.append(decoder)  # only when it finished cleanly: its state is reset
    return value


class Decoder:
    """The unpacker hooks for one payload at a time, and its shared objects by ref.

    :func:`loads` reuses decoders (a small payload costs little more than creating one).
    """

    __slots__ = ("classes", "ext_hook", "list_hook", "memo", "open_markers")

    def __init__(self) -> None:
        self.open_markers = 0  # markers read but not yet consumed by their list
        self.memo: dict[int, object] | None = None  # shared objects by ref, once met
        self.classes: dict[bytes, Marker] | None = None  # class markers met in this payload
        self.ext_hook: Callable[[int, bytes], object] = self._ext
        self.list_hook: Callable[[list[Any]], object] = self._list

    # The two hooks run once per ext and once per array: the common cases come first.
    def _ext(self, code: int, data: bytes) -> object:
        marker = _BUILTIN_MARKERS.get(code)
        if marker is not None:
            self.open_markers += 1
            return marker
        if c.ENUM <= code <= c.EXCEPTION:  # the marker of a class's instance
            self.open_markers += 1
            classes = self.classes
            if classes is None:
                classes = self.classes = {}
            marker = classes.get(data)
            if marker is None or marker.code != code:
                marker = classes[data] = class_marker(code, data)
            return marker
        value_of = _VALUES.get(code)
        if value_of is not None:
            return value_of(data)
        if code == c.REF:
            return self._ref(data)
        self.open_markers += 1
        if code == c.SHARED:
            return self._shared(data)
        return class_marker(code, data)  # raises: an unknown code

    def _list(self, items: list[Any]) -> object:
        if items:
            first = items[0]
            if type(first) is Marker:
                self.open_markers -= 1
                if first is _TUPLE_MARKER:
                    del items[0]  # the list is the unpacker's, made for this: no copy
                    return tuple(items)
                return first.build(items)
        return items

    def _ref(self, data: bytes) -> object:
        ref = int.from_bytes(data, "big")
        try:
            return self.memo[ref]  # type: ignore[index]
        except (KeyError, TypeError):  # TypeError: no shared object met yet
            raise CodecError(
                f"cannot decode: reference #{ref} to an object not decoded yet; corrupt data"
            ) from None

    def _shared(self, data: bytes) -> Marker:
        ref = int.from_bytes(data[:4], "big")
        code, name = data[4], bytes(data[5:])
        if code == c.EXCEPTION:
            return self._shared_exception(ref, name)
        create, fill = _SHARED_KINDS[code]
        obj = create(name)
        self._shared_objects()[ref] = obj  # before the content: what is inside may refer back to it
        return Marker(lambda items: fill(obj, items))

    def _shared_objects(self) -> dict[int, object]:
        if self.memo is None:
            self.memo = {}
        return self.memo

    def _shared_exception(self, ref: int, name: bytes) -> Marker:
        cls = _find(c.EXCEPTION, name)
        if cls is None:
            stand_in = WorkflowFailed.__new__(WorkflowFailed)
            self._shared_objects()[ref] = stand_in
            return Marker(lambda items: fill_stand_in(stand_in, _type_name(name), items))
        exc = new_exception(cls, None)
        if exc is None:  # an exception group: built from its args, after the content

            def build_group(items: list[Any]) -> object:
                group = new_exception(cls, items[2])
                self._shared_objects()[ref] = group
                return fill_exception(group, items)

            return Marker(build_group)
        self._shared_objects()[ref] = exc
        return Marker(lambda items: fill_exception(exc, items))


# ------------------------------------------------------------------------ value exts
def _decimal(data: bytes) -> object:
    try:
        return Decimal(bytes(data).decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        raise CodecError(f"cannot decode a Decimal from {bytes(data)!r}; corrupt data") from None


_VALUES: Final[dict[int, Callable[[bytes], object]]] = {
    c.BIGINT: lambda data: int.from_bytes(data, "big", signed=True),
    c.DATE: lambda data: date.fromordinal(int.from_bytes(data, "big")),
    c.UUID_: lambda data: UUID(bytes=bytes(data)),
    c.DECIMAL: _decimal,
    c.BYTEARRAY: bytearray,
    c.CLASS: lambda data: _require_any(data),
}


# ------------------------------------------------------------------- builtin markers
def _datetime(items: list[Any]) -> object:
    _, year, month, day, hour, minute, second, micro, fold, tz = items
    return datetime(year, month, day, hour, minute, second, micro, _tz(tz), fold=fold)


def _time(items: list[Any]) -> object:
    _, hour, minute, second, micro, fold, tz = items
    return time(hour, minute, second, micro, _tz(tz), fold=fold)


def _timedelta(items: list[Any]) -> object:
    _, days, seconds, micro = items
    return timedelta(days, seconds, micro)


def _tz(tz: Any) -> tzinfo | None:
    if tz is None:
        return None
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (KeyError, ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise CodecError(
                f"cannot decode time zone {tz!r}: {exc}; install the tzdata package"
            ) from None
    offset, name = tz
    delta = timedelta(microseconds=offset)
    return timezone(delta) if name is None else timezone(delta, name)


_TUPLE_MARKER: Final = Marker(lambda items: tuple(items[1:]))
_BUILTIN_MARKERS: Final[dict[int, Marker]] = {
    c.TUPLE: _TUPLE_MARKER,
    c.SET: Marker(lambda items: set(items[1:])),
    c.FROZENSET: Marker(lambda items: frozenset(items[1:])),
    c.DATETIME: Marker(_datetime),
    c.TIME: Marker(_time),
    c.TIMEDELTA: Marker(_timedelta),
}


def _fill_list(obj: list[object], items: list[Any]) -> object:
    obj.extend(items[1:])
    return obj


def _fill_dict(obj: dict[object, object], items: list[Any]) -> object:
    _, mapping = items
    obj.update(mapping)
    return obj


def _fill_set(obj: set[object], items: list[Any]) -> object:
    obj.update(items[1:])
    return obj


def _fill_bytearray(obj: bytearray, items: list[Any]) -> object:
    _, content = items
    obj.extend(content)
    return obj


_Create = Callable[[bytes], Any]
_Fill = Callable[[Any, list[Any]], object]
_SHARED_KINDS: Final[dict[int, tuple[_Create, _Fill]]] = {
    c.LIST: (lambda _: [], _fill_list),
    c.DICT: (lambda _: {}, _fill_dict),
    c.SET: (lambda _: set(), _fill_set),
    c.BYTEARRAY: (lambda _: bytearray(), _fill_bytearray),
    c.DATACLASS: (lambda name: new_instance(_require(c.DATACLASS, name)), fill_dataclass),
    c.PYDANTIC: (lambda name: new_instance(_require(c.PYDANTIC, name)), fill_pydantic),
}


# --------------------------------------------------------------------- class markers
class _Resolved:
    """A class found by name, with what proves the lookup still holds."""

    __slots__ = ("cls", "code", "marker", "module", "module_name", "top", "top_name")

    def __init__(self, code: int, name: bytes, cls: type, marker: Marker) -> None:
        module_name, _, qualname = name.decode().partition(":")
        self.code, self.cls, self.marker = code, cls, marker
        self.module_name, self.module = module_name, sys.modules[module_name]
        self.top_name = qualname.partition(".")[0]
        self.top = vars(self.module)[self.top_name]

    def valid(self, code: int) -> bool:
        # A reload or monkeypatch replaces the module or its top-level attribute.
        return (
            code == self.code
            and sys.modules.get(self.module_name) is self.module
            and vars(self.module).get(self.top_name) is self.top
        )


_RESOLVED: dict[bytes, _Resolved] = {}


def class_marker(code: int, name: bytes) -> Marker:
    """Return the marker for class ``name`` (``b"module:qualname"``) of kind ``code``.

    Raises:
        CodecError: The class is not loaded or not of that kind (exceptions excepted:
            their marker builds a ``WorkflowFailed`` stand-in).
    """
    hit = _RESOLVED.get(name)
    if hit is not None and hit.valid(code):
        return hit.marker
    if code == c.EXCEPTION:
        cls = _find(code, name)
        if cls is None:
            error_type = _type_name(name)
            return Marker(lambda items: fill_stand_in(None, error_type, items), code)
    elif code in _CLASS_BUILDS:
        cls = _require(code, name)
    else:
        raise CodecError(f"cannot decode: unknown ext type {code}; corrupt data or newer rappelx")
    marker = Marker(_CLASS_BUILDS[code](cls), code)
    _RESOLVED[name] = _Resolved(code, name, cls, marker)
    return marker


def _enum_build(cls: Any) -> _Build:
    def build(items: list[Any]) -> object:
        _, name = items
        members = cls.__members__
        try:
            if isinstance(name, list):  # a Flag combination
                parts = [members[part] for part in name]
                return reduce(or_, parts) if parts else cls(0)
            return members[name]
        except (KeyError, TypeError):
            raise CodecError(
                f"cannot decode {c.type_name(cls)}.{name}: the enum has no such member "
                f"(was it renamed or removed?)"
            ) from None

    return build


_CLASS_BUILDS: Final[dict[int, Callable[[Any], _Build]]] = {
    c.ENUM: _enum_build,
    c.DATACLASS: dataclass_builder,
    c.PYDANTIC: lambda cls: lambda items: fill_pydantic(new_instance(cls), items),
    c.EXCEPTION: lambda cls: lambda items: fill_exception(new_exception(cls, items[2]), items),
}
_KIND_NAMES: Final = {
    c.ENUM: "an Enum",
    c.DATACLASS: "a dataclass",
    c.PYDANTIC: "a pydantic model",
    c.EXCEPTION: "an exception class",
    c.CLASS: "an exception class, Enum, dataclass or pydantic model",
}


def _find(code: int, name: bytes) -> type | None:
    module, _, qualname = name.decode().partition(":")
    found = c.find_class(module, qualname)
    if isinstance(found, type) and c.kind_of(found) == code:
        return found
    return None


def _require(code: int, name: bytes) -> type:
    cls = _find(code, name)
    if cls is not None:
        return cls
    module, _, qualname = name.decode().partition(":")
    if module not in sys.modules:
        raise CodecError(
            f"cannot decode {module}.{qualname}: module {module} is not imported in this "
            f"process; import it before decoding (rappelx never imports modules named by data)"
        )
    found = c.find_class(module, qualname)
    if found is None:
        raise CodecError(
            f"cannot decode {module}.{qualname}: module {module} has no {qualname} (was it "
            f"renamed or removed?)"
        )
    kind = type(found).__qualname__
    raise CodecError(
        f"cannot decode {module}.{qualname}: it is not {_KIND_NAMES[code]} (found a {kind})"
    )


def _require_any(name: bytes) -> type:
    module, _, qualname = name.decode().partition(":")
    found = c.find_class(module, qualname)
    if isinstance(found, type) and c.kind_of(found) is not None:
        return found
    return _require(c.CLASS, name)  # raises, saying what is missing or wrong


def _type_name(name: bytes) -> str:
    return name.decode().replace(":", ".", 1)
