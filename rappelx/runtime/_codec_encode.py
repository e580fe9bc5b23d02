"""Encoding without shared objects: msgpack's C packer plus one ``default`` hook.

msgpack packs None, bool, int, float, str, bytes, list and dict itself, in C. With
``strict_types=True`` it hands everything else (tuples, subclasses, big ints, ...) to
:func:`default`, which returns an ``ExtType`` whose payload is packed the same way. That
keeps per-value Python work to the values msgpack cannot carry natively.

The graph encoder (``_codec_graph.py``) reuses the leaf encoders and the state helpers
here, so both paths write identical bytes for the same unshared value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import Enum, Flag
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import ExtType, Packer

from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_classes import ClassInfo, EncodeFailure


def pack(value: object) -> bytes:
    """Pack ``value`` with the codec's rules (a fresh packer: packing nests)."""
    return bytes(Packer(default=default, strict_types=True, use_bin_type=True).pack(value))


def default(obj: object) -> ExtType:
    """The msgpack ``default`` hook: encode one value msgpack cannot pack itself.

    Raises:
        EncodeFailure: The value is not supported.
    """
    cls = type(obj)
    leaf = LEAF_ENCODERS.get(cls)
    if leaf is not None:
        return leaf(obj)
    if cls is tuple:
        return ExtType(c.TUPLE, pack(list(obj)))  # type: ignore[call-overload]
    if cls is set:
        return ExtType(c.SET, pack(list(obj)))  # type: ignore[call-overload]
    if cls is frozenset:
        return ExtType(c.FROZENSET, pack(list(obj)))  # type: ignore[call-overload]
    info = c.class_info(cls)
    if info.code == c.ENUM:
        return encode_enum(obj, info)  # type: ignore[arg-type]
    if info.code == c.EXCEPTION:
        header, body = exception_parts(obj)  # type: ignore[arg-type]
        return ExtType(c.EXCEPTION, pack([*header, body]))
    return ExtType(info.code, pack([*info.header, object_state(obj, info)]))


# ------------------------------------------------------------------------------ leaves
def _encode_bigint(value: int) -> ExtType:
    # Reached only for ints beyond msgpack's 64-bit range (the packer overflowed).
    return ExtType(c.BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def _encode_tz(tz: tzinfo | None) -> object:
    if tz is None:
        return None
    if type(tz) is timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        # A name is kept only when it was given: timezone(offset) derives "UTC+01:00".
        given = name if name != timezone(offset).tzname(None) else None
        return [offset // timedelta(microseconds=1), given]
    if type(tz) is ZoneInfo and tz.key is not None:
        return tz.key
    raise EncodeFailure(
        f"time zone {tz!r} of type {c.type_name(type(tz))} is not supported; use "
        f"datetime.timezone or zoneinfo.ZoneInfo (by key)"
    )


def _encode_datetime(value: datetime) -> ExtType:
    fields: list[object] = [value.year, value.month, value.day, value.hour, value.minute]
    fields += [value.second, value.microsecond, value.fold, _encode_tz(value.tzinfo)]
    return ExtType(c.DATETIME, pack(fields))


def _encode_time(value: time) -> ExtType:
    fields = [value.hour, value.minute, value.second, value.microsecond, value.fold]
    return ExtType(c.TIME, pack([*fields, _encode_tz(value.tzinfo)]))


def _encode_date(value: date) -> ExtType:
    return ExtType(c.DATE, pack(value.toordinal()))


def _encode_timedelta(value: timedelta) -> ExtType:
    return ExtType(c.TIMEDELTA, pack([value.days, value.seconds, value.microseconds]))


def _encode_uuid(value: UUID) -> ExtType:
    return ExtType(c.UUID_, value.bytes)


def _encode_decimal(value: Decimal) -> ExtType:
    return ExtType(c.DECIMAL, str(value).encode("ascii"))


LEAF_ENCODERS: Final[dict[type, Callable[[Any], ExtType]]] = {
    int: _encode_bigint,
    datetime: _encode_datetime,
    date: _encode_date,
    time: _encode_time,
    timedelta: _encode_timedelta,
    UUID: _encode_uuid,
    Decimal: _encode_decimal,
}


def encode_enum(member: Enum, info: ClassInfo) -> ExtType:
    """Encode an Enum member by class and member name (Flag combinations: names list)."""
    name: object = member._name_
    if name not in type(member).__members__:
        if not isinstance(member, Flag):
            raise EncodeFailure(f"{member!r} is not a member of {c.type_name(type(member))}")
        name = [part._name_ for part in member]
    return ExtType(c.ENUM, pack([*info.header, name]))


# ------------------------------------------------------------------------ object state
def object_state(obj: object, info: ClassInfo) -> dict[str, object]:
    """Return what is stored for a dataclass or pydantic instance (the real dict if it can)."""
    if info.code == c.PYDANTIC:
        return pydantic_state(obj)
    if not info.slot_fields:
        return obj.__dict__
    state = {name: getattr(obj, name) for name in info.slot_fields if hasattr(obj, name)}
    if info.has_dict:
        state.update(obj.__dict__)
    return state


_PYDANTIC_SLOTS: Final = ("__pydantic_extra__", "__pydantic_private__")


def pydantic_state(model: Any) -> dict[str, object]:
    """Return a pydantic model's field values, fields set, extra and private attributes.

    Read from the instance slots directly, as ``BaseModel.__getstate__`` does, so no
    user ``__getstate__`` or serializer runs.
    """
    state: dict[str, object] = {
        "fields": model.__dict__,
        "set": sorted(model.__pydantic_fields_set__),
    }
    for slot in _PYDANTIC_SLOTS:
        try:
            value = object.__getattribute__(model, slot)
        except AttributeError:  # root models leave these unset
            continue
        if slot == "__pydantic_private__" and value:
            value = _without_undefined(value)
        state[slot] = value
    return state


def _without_undefined(private: dict[str, object]) -> dict[str, object]:
    core: Any = sys.modules.get("pydantic_core")
    undefined = getattr(core, "PydanticUndefined", None)
    return {k: v for k, v in private.items() if v is not undefined}


def exception_parts(exc: BaseException) -> tuple[list[object], list[object]]:
    """Split an exception into ``header`` (what building it needs) and ``body``.

    The header is ``[module, qualname, message, args]``; the message is ``str(exc)``,
    kept for a process that cannot find the class. The body is ``[attributes, cause,
    context, suppress_context]``. The traceback is dropped.
    """
    cls = type(exc)
    header: list[object] = [cls.__module__, cls.__qualname__, _message(exc), list(exc.args)]
    body: list[object] = [exc.__dict__, exc.__cause__, exc.__context__]
    body.append(exc.__suppress_context__)
    return header, body


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not make the error itself unencodable
        return f"<{c.type_name(type(exc))} with unprintable message>"
