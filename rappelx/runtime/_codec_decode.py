"""Decoding: msgpack's C unpacker plus an ``ext_hook`` that rebuilds everything else.

Classes are found only by :func:`find_class` (already imported modules, no code run) and
only if they are of the kind the payload claims. Instances are created without calling
``__init__``: ``object.__new__`` (or the builtin exception base's ``__new__``) and then
their stored state is put back, so no user code runs while decoding.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import unpackb

from rappelx.exceptions import CodecError, WorkflowFailed
from rappelx.runtime import _codec_classes as c

_KIND_NAMES: Final = {
    c.ENUM: "an Enum",
    c.DATACLASS: "a dataclass",
    c.PYDANTIC: "a pydantic model",
    c.EXCEPTION: "an exception class",
}
_PYDANTIC_SLOTS: Final = ("__pydantic_extra__", "__pydantic_private__")


class Decoder:
    """Rebuilds one value; ``memo`` holds the shared objects of a GRAPH payload.

    Args:
        memo: Shared objects by ref, or None outside a GRAPH (refs are then corrupt).
    """

    __slots__ = ("_memo", "_stand_ins")

    def __init__(self, memo: dict[int, object] | None) -> None:
        self._memo = memo
        self._stand_ins: set[int] = set()  # WorkflowFailed built for a missing class

    def unpack(self, data: bytes) -> Any:
        """Decode ``data``; ext types come back through :meth:`hook`."""
        return unpackb(data, ext_hook=self.hook, strict_map_key=False)

    def hook(self, code: int, data: bytes) -> object:
        """The msgpack ``ext_hook``: rebuild one ext-encoded value."""
        decode = _FLAT.get(code)
        if decode is None:
            raise CodecError(
                f"cannot decode: unknown ext type {code}; the data is corrupt or was "
                f"written by a newer rappelx"
            )
        return decode(self, data)

    # ---------------------------------------------------------------- identity
    def _graph(self, data: bytes) -> object:
        return Decoder({}).unpack(data)

    def _ref(self, data: bytes) -> object:
        ref = self.unpack(data)
        try:
            return self._require_memo()[ref]
        except (KeyError, TypeError):
            raise CodecError(
                f"cannot decode: reference #{ref!r} to an object not decoded yet; the data "
                f"is corrupt"
            ) from None

    def _shared(self, data: bytes) -> object:
        memo = self._require_memo()
        ref, code, header, body = self.unpack(data)
        create, fill = _BUILDERS[code]
        obj = create(self, header)
        memo[ref] = obj  # before the body: objects inside may refer back to it
        fill(self, obj, self.unpack(body))
        return obj

    def _require_memo(self) -> dict[int, object]:
        if self._memo is None:
            raise CodecError("cannot decode: shared-object data outside a graph; corrupt data")
        return self._memo

    # ------------------------------------------------------------ flat values
    def _flat_object(self, data: bytes, code: int) -> object:
        *header, body = self.unpack(data)
        create, fill = _BUILDERS[code]
        obj = create(self, header)
        fill(self, obj, body)
        return obj

    def _tuple(self, data: bytes) -> object:
        return tuple(self._items(data))

    def _set(self, data: bytes) -> object:
        return set(self._items(data))

    def _frozenset(self, data: bytes) -> object:
        return frozenset(self._items(data))

    def _items(self, data: bytes) -> list[object]:
        items = self.unpack(data)
        if type(items) is not list:
            raise CodecError("cannot decode: a collection's items are not a list; corrupt data")
        return items

    def _datetime(self, data: bytes) -> object:
        year, month, day, hour, minute, second, micro, fold, tz = self.unpack(data)
        zone = _decode_tz(tz)
        return datetime(year, month, day, hour, minute, second, micro, zone, fold=fold)

    def _time(self, data: bytes) -> object:
        hour, minute, second, micro, fold, tz = self.unpack(data)
        return time(hour, minute, second, micro, _decode_tz(tz), fold=fold)

    def _date(self, data: bytes) -> object:
        return date.fromordinal(self.unpack(data))

    def _timedelta(self, data: bytes) -> object:
        days, seconds, microseconds = self.unpack(data)
        return timedelta(days, seconds, microseconds)

    def _enum(self, data: bytes) -> object:
        module, qualname, name = self.unpack(data)
        cls: Any = _find(c.ENUM, module, qualname)
        members = cls.__members__
        try:
            if isinstance(name, list):  # a Flag combination
                parts = [members[part] for part in name]
                return reduce(operator.or_, parts) if parts else cls(0)
            return members[name]
        except (KeyError, TypeError):
            raise CodecError(
                f"cannot decode {module}.{qualname}.{name}: the enum has no such member "
                f"(was it renamed or removed?)"
            ) from None

    # -------------------------------------------------------------- builders
    def _new_instance(self, header: list[Any], code: int) -> object:
        cls = _find(code, *header)
        try:
            return object.__new__(cls)
        except TypeError as exc:
            raise CodecError(f"cannot decode {c.type_name(cls)}: {exc}") from None

    def _fill_dataclass(self, obj: Any, state: dict[str, object]) -> None:
        info = c.class_info(type(obj), reachable=False)
        if not info.slot_fields and state:
            obj.__dict__.update(state)
            return
        for name, value in state.items():
            if name in info.slot_fields:
                object.__setattr__(obj, name, value)
            elif info.has_dict:
                obj.__dict__[name] = value
            else:
                raise CodecError(
                    f"cannot decode {c.type_name(type(obj))}: it has no field {name!r} "
                    f"any more (was the dataclass changed?)"
                )

    def _fill_pydantic(self, obj: object, state: dict[str, Any]) -> None:
        # What BaseModel.__setstate__ does, without running an override of it.
        fields = state["fields"]
        if type(fields) is not dict:
            raise CodecError("cannot decode a pydantic model: its fields are not a map")
        object.__setattr__(obj, "__dict__", fields)
        object.__setattr__(obj, "__pydantic_fields_set__", set(state["set"]))
        for slot in _PYDANTIC_SLOTS:
            if slot in state:
                object.__setattr__(obj, slot, state[slot])

    def _new_exception(self, header: list[Any]) -> BaseException:
        module, qualname, message, args = header
        cls = c.find_class(module, qualname)
        if not isinstance(cls, type) or c.kind_of(cls) != c.EXCEPTION:
            stand_in = WorkflowFailed(error_type=f"{module}.{qualname}", message=message)
            self._stand_ins.add(id(stand_in))
            return stand_in
        return build_exception(cls, tuple(args))

    def _fill_exception(self, exc: BaseException, body: list[Any]) -> None:
        attrs, cause, context, suppress = body
        if id(exc) not in self._stand_ins:
            exc.__dict__.update(attrs)
        exc.__cause__ = cause
        exc.__context__ = context
        exc.__suppress_context__ = suppress  # after __cause__, which sets it to True


def build_exception(cls: type[BaseException], args: tuple[object, ...]) -> BaseException:
    """Create an instance of ``cls`` with ``args`` without running any user code.

    The nearest builtin base class does the work: its ``__new__`` and ``__init__`` are C
    code that also restore builtin fields derived from the args (``OSError.errno``,
    ``StopIteration.value``, ...). A user ``__init__`` with another signature never runs.
    """
    base: Any = next(k for k in cls.__mro__ if k.__module__ == "builtins")
    try:
        exc = base.__new__(cls, *args)
    except Exception:  # e.g. an ExceptionGroup whose args are not (message, exceptions)
        exc = None
    if type(exc) is not cls:  # OSError.__new__ may pick a subclass from errno
        try:
            exc = base.__new__(cls)
        except TypeError as error:
            raise CodecError(f"cannot rebuild {c.type_name(cls)}{args!r}: {error}") from None
    # A subclass may have passed other arguments to super().__init__ than it keeps.
    with contextlib.suppress(Exception):
        base.__init__(exc, *args)
    exc.args = args
    return exc  # type: ignore[no-any-return]


def _find(code: int, module: str, qualname: str) -> type:
    found = c.find_class(module, qualname)
    if isinstance(found, type) and c.kind_of(found) == code:
        return found
    if found is None:
        raise CodecError(
            f"cannot decode {module}.{qualname}: it is not loaded in this process; "
            f"import {module} before decoding (rappelx never imports modules named by data)"
        )
    raise CodecError(
        f"cannot decode {module}.{qualname}: it is not {_KIND_NAMES[code]} "
        f"(found {type(found).__qualname__} {found!r:.60})"
    )


def _decode_tz(tz: Any) -> tzinfo | None:
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


def _decimal(_: Decoder, data: bytes) -> object:
    try:
        return Decimal(data.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        raise CodecError(f"cannot decode Decimal from {data!r}; corrupt data") from None


def _bigint(_: Decoder, data: bytes) -> object:
    return int.from_bytes(data, "big", signed=True)


_FLAT: Final[dict[int, Callable[[Decoder, bytes], object]]] = {
    c.GRAPH: Decoder._graph,
    c.REF: Decoder._ref,
    c.SHARED: Decoder._shared,
    c.BIGINT: _bigint,
    c.TUPLE: Decoder._tuple,
    c.SET: Decoder._set,
    c.FROZENSET: Decoder._frozenset,
    c.BYTEARRAY: lambda _, data: bytearray(data),
    c.DATETIME: Decoder._datetime,
    c.DATE: Decoder._date,
    c.TIME: Decoder._time,
    c.TIMEDELTA: Decoder._timedelta,
    c.UUID_: lambda _, data: UUID(bytes=bytes(data)),
    c.DECIMAL: _decimal,
    c.ENUM: Decoder._enum,
    c.DATACLASS: lambda self, data: self._flat_object(data, c.DATACLASS),
    c.PYDANTIC: lambda self, data: self._flat_object(data, c.PYDANTIC),
    c.EXCEPTION: lambda self, data: self._flat_object(data, c.EXCEPTION),
}

_Create = Callable[[Decoder, Any], object]
_Fill = Callable[[Decoder, Any, Any], None]
_BUILDERS: Final[dict[int, tuple[_Create, _Fill]]] = {
    c.LIST: (lambda _, __: [], lambda _, obj, body: obj.extend(body)),
    c.DICT: (lambda _, __: {}, lambda _, obj, body: obj.update(body)),
    c.SET: (lambda _, __: set(), lambda _, obj, body: obj.update(body)),
    c.BYTEARRAY: (lambda _, __: bytearray(), lambda _, obj, body: obj.extend(body)),
    c.DATACLASS: (
        lambda self, header: self._new_instance(header, c.DATACLASS),
        Decoder._fill_dataclass,
    ),
    c.PYDANTIC: (
        lambda self, header: self._new_instance(header, c.PYDANTIC),
        Decoder._fill_pydantic,
    ),
    c.EXCEPTION: (Decoder._new_exception, Decoder._fill_exception),
}
