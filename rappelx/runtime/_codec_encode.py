"""How each type is encoded: the per-type encoders every path shares.

msgpack packs None, bool, int, float, str, bytes, list and dict itself, in C. With
``strict_types=True`` it hands everything else (tuples, subclasses, big ints, ...) to a
``default`` hook, which returns either a value ext or a ``[marker, *content]`` list that
the packer then packs natively, calling the hook again for what is inside. So per-value
Python work is one call per value msgpack cannot carry, and nothing is packed twice.

The fast path (``_codec_tree.py``) has its own hook, which also notes identities, and
calls the encoders here; :func:`default` and :func:`pack` are the plain versions, used
by the graph encoder (``_codec_graph.py``) for what it does not walk itself. So all
paths write the same bytes for the same unshared value.
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
from rappelx.runtime._codec_classes import ClassInfo, EncodeFailure, new_ext

# Markers of the builtin kinds: they name no class, so their data is empty.
TUPLE_MARKER: Final = ExtType(c.TUPLE, b"")
SET_MARKER: Final = ExtType(c.SET, b"")
FROZENSET_MARKER: Final = ExtType(c.FROZENSET, b"")
DATETIME_MARKER: Final = ExtType(c.DATETIME, b"")
TIME_MARKER: Final = ExtType(c.TIME, b"")
TIMEDELTA_MARKER: Final = ExtType(c.TIMEDELTA, b"")


def pack(value: object) -> bytes:
    """Pack ``value`` with the codec's rules."""
    # A fresh packer per call: one shared packer would need a lock, and a small first
    # buffer, grown as needed, is cheaper to allocate than msgpack's default 1 MiB.
    packer = Packer(default=default, strict_types=True, use_bin_type=True, buf_size=1024)
    return packer.pack(value)  # type: ignore[no-any-return]


def default(obj: object) -> object:
    """The msgpack ``default`` hook: encode one value msgpack cannot pack itself.

    Raises:
        EncodeFailure: The value is not supported.
    """
    encode = _ENCODERS.get(type(obj))
    if encode is None:
        encode = _class_encoder(type(obj))
    return encode(obj)


def _class_encoder(cls: type) -> Callable[[Any], object]:
    if issubclass(cls, type):  # the value is itself a class: cls is its metaclass
        _ENCODERS[cls] = c.class_ref
        return c.class_ref
    info = c.class_info(cls)
    marker = info.marker
    if info.code == c.ENUM:
        encode = _encode_with(marker, enum_name)
    elif info.code == c.EXCEPTION:
        encode = lambda exc: [marker, *exception_content(exc, info)]  # noqa: E731
    elif info.code == c.DATACLASS and not info.slot_fields:
        encode = _encode_with(marker, vars)
    else:
        encode = _encode_with(marker, lambda obj: object_state(obj, info))
    if c.is_cached(cls):
        _ENCODERS[cls] = encode
    return encode


def _encode_with(marker: ExtType, content: Callable[[Any], object]) -> Callable[[Any], object]:
    return lambda obj: [marker, content(obj)]


# ---------------------------------------------------------------------------- builtins
def _encode_bigint(value: int) -> ExtType:
    # Reached only for ints beyond msgpack's 64-bit range (the packer overflowed).
    return new_ext(c.BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def encode_tz(tz: tzinfo | None) -> object:
    """Encode a time zone: None, a ZoneInfo key, or ``[offset in µs, name or None]``.

    Raises:
        EncodeFailure: Another kind of ``tzinfo``.
    """
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


def _encode_datetime(value: datetime) -> list[object]:
    return [
        DATETIME_MARKER,
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
        encode_tz(value.tzinfo),
    ]


def _encode_time(value: time) -> list[object]:
    tz = encode_tz(value.tzinfo)
    return [TIME_MARKER, value.hour, value.minute, value.second, value.microsecond, value.fold, tz]


BUILTIN_ENCODERS: Final[dict[type, Callable[[Any], object]]] = {
    int: _encode_bigint,
    tuple: lambda value: [TUPLE_MARKER, *value],
    set: lambda value: [SET_MARKER, *value],
    frozenset: lambda value: [FROZENSET_MARKER, *value],
    datetime: _encode_datetime,
    date: lambda value: new_ext(c.DATE, value.toordinal().to_bytes(4, "big")),
    time: _encode_time,
    timedelta: lambda value: [TIMEDELTA_MARKER, value.days, value.seconds, value.microseconds],
    UUID: lambda value: new_ext(c.UUID_, value.bytes),
    Decimal: lambda value: new_ext(c.DECIMAL, str(value).encode("ascii")),
}
# The builtin encoders, plus one per user class met (only classes reachable by name).
_ENCODERS: dict[type, Callable[[Any], object]] = dict(BUILTIN_ENCODERS)


def enum_name(member: Enum) -> object:
    """Return what identifies ``member`` in its class: its name (Flag combinations: names).

    Raises:
        EncodeFailure: A pseudo-member that is not a Flag combination.
    """
    name: object = member._name_
    if name not in type(member).__members__:
        if not isinstance(member, Flag):
            raise EncodeFailure(f"{member!r} is not a member of {c.type_name(type(member))}")
        name = [part._name_ for part in member]
    return name


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


PYDANTIC_SLOTS: Final = ("__pydantic_extra__", "__pydantic_private__")


def pydantic_state(model: Any) -> dict[str, object]:
    """Return a pydantic model's field values, fields set, extra and private attributes.

    Read from the instance slots directly, as ``BaseModel.__getstate__`` does, so no
    user ``__getstate__`` or serializer runs.
    """
    state: dict[str, object] = {
        "fields": model.__dict__,
        "set": sorted(model.__pydantic_fields_set__),
    }
    for slot in PYDANTIC_SLOTS:
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


def exception_content(exc: BaseException, info: ClassInfo) -> list[object]:
    """Return what follows an exception's marker.

    ``[message, args, attributes, cause, context, suppress_context, builtin fields]``:
    the message is ``str(exc)``, kept for a process that cannot find the class; builtin
    fields are C-level ones like ``OSError.errno`` or ``ImportError.name`` that are not
    in ``__dict__`` (None ones left out). The traceback is dropped.
    """
    fields = {}
    for name, descriptor in info.builtin_fields:
        value = descriptor.__get__(exc)
        if value is not None:
            fields[name] = value
    return [
        _message(exc),
        list(exc.args),
        exc.__dict__,
        exc.__cause__,
        exc.__context__,
        exc.__suppress_context__,
        fields,
    ]


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not make the error itself unencodable
        return f"<{c.type_name(type(exc))} with unprintable message>"
