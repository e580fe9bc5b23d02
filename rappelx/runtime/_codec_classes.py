"""Which classes the codec carries, and how it finds them again without importing.

A payload names a class by ``module`` + ``qualname``. Decoding looks it up only in
modules that are already in :data:`sys.modules`, walking only module and class
namespaces (never ``getattr``, so no module ``__getattr__`` or descriptor runs), and
accepts the result only if it is an Enum, an exception, a pydantic model or a dataclass.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import MemberDescriptorType, ModuleType
from typing import Any, Final
from uuid import UUID

from msgpack import ExtType

# Ext type codes. They are written into durable payloads: never renumber one.
#
# Two shapes. A *value* ext decodes to its value on its own (BIGINT, DATE, UUID_,
# DECIMAL, BYTEARRAY, REF). A *marker* ext only ever starts a msgpack array,
# ``[marker, *content]``, and says what the array stands for: the unpacker's list hook
# rebuilds the value from the content, so nothing is packed twice. The array's elements
# are decoded after its marker, which lets a SHARED marker create (and register) its
# object before anything inside that object refers back to it.
REF: Final = 2  # value: later occurrence of a shared object; data = ref number
SHARED: Final = 3  # marker: first occurrence; data = ref (4 bytes), kind code, class name
BIGINT: Final = 4  # value: signed big-endian bytes
TUPLE: Final = 5  # marker: [m, *items]
SET: Final = 6  # marker: [m, *items]
FROZENSET: Final = 7  # marker: [m, *items]
BYTEARRAY: Final = 8  # value: the bytes; inside SHARED: [m, bytes]
LIST: Final = 9  # only as a SHARED kind: [m, *items]; a plain list is a msgpack array
DICT: Final = 10  # only as a SHARED kind: [m, map]; a plain dict is a msgpack map
DATETIME: Final = 11  # marker: [m, year, month, day, hour, minute, second, us, fold, tz]
DATE: Final = 12  # value: proleptic ordinal, big-endian
TIME: Final = 13  # marker: [m, hour, minute, second, us, fold, tz]
TIMEDELTA: Final = 14  # marker: [m, days, seconds, us]
UUID_: Final = 15  # value: the 16 bytes
DECIMAL: Final = 16  # value: str(decimal), ASCII
ENUM: Final = 17  # marker, data = b"module:qualname": [m, name | [names of a Flag]]
DATACLASS: Final = 18  # marker, data = class name: [m, {attribute: value}]
PYDANTIC: Final = 19  # marker, data = class name: [m, {"fields": ..., "set": ..., ...}]
EXCEPTION: Final = 20  # marker, data = class name: [m, message, args, attrs, cause,
#                        context, suppress_context, builtin fields]
CLASS: Final = 21  # value: a class itself (say in a RetryPolicy); data = class name


def new_ext(code: int, data: bytes) -> ExtType:
    """Return ``ExtType(code, data)``, for the codec's own codes and data.

    ExtType checks its arguments in Python, which costs about as much as packing the
    value; the codec's codes and data need no checking.
    """
    return _new_tuple(ExtType, (code, data))


_new_tuple = tuple.__new__

# Values msgpack packs natively and unpacks back to the very same type.
ATOMIC: Final[frozenset[type]] = frozenset({type(None), bool, int, float, str, bytes})
# Builtin values encoded as one ext each, with no children to look into.
LEAF_TYPES: Final[frozenset[type]] = frozenset({datetime, date, time, timedelta, UUID, Decimal})

_SUBCLASS_HINTS: Final[tuple[tuple[type, str], ...]] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (bytes, "bytes"),
    (bytearray, "bytearray"),
    (list, "list"),
    (tuple, "tuple"),
    (dict, "dict"),
    (set, "set"),
    (frozenset, "frozenset"),
    (datetime, "datetime"),
    (date, "date"),
    (time, "time"),
    (timedelta, "timedelta"),
    (UUID, "UUID"),
    (Decimal, "Decimal"),
)


class EncodeFailure(Exception):
    """Internal: a value cannot be encoded; ``labels`` collect the path while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.labels: list[str] = []


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """How instances of one user class are encoded.

    Attributes:
        code: The ext code of the class's kind (ENUM, DATACLASS, PYDANTIC or EXCEPTION).
        marker: The ext that starts every encoded instance (names the class).
        slot_fields: Dataclass fields stored in ``__slots__`` rather than ``__dict__``.
        has_dict: Whether instances have a ``__dict__``.
        builtin_fields: For exceptions, the C-level fields of builtin base classes
            (``errno``, ``name``, ``value``...), as ``(name, member descriptor)``.
    """

    code: int
    marker: ExtType
    slot_fields: tuple[str, ...] = ()
    has_dict: bool = True
    builtin_fields: tuple[tuple[str, Any], ...] = ()

    @property
    def tracked(self) -> bool:
        """Whether instances keep their identity (everything but Enum members)."""
        return self.code != ENUM


_CACHE: dict[type, ClassInfo] = {}


def type_name(cls: type) -> str:
    """Return ``module.Qualname`` for ``cls``, or just the name for builtins."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def class_info(cls: type, *, reachable: bool = True) -> ClassInfo:
    """Return how to encode instances of ``cls``.

    Args:
        cls: The class.
        reachable: Require that ``cls`` can be found again by its own name (exceptions
            are exempt: a process that cannot find one gets ``WorkflowFailed``).

    Raises:
        EncodeFailure: ``cls`` is not an Enum, exception, pydantic model or dataclass, or
            it cannot be found again by name.
    """
    info = _CACHE.get(cls)
    if info is not None:
        return info
    code = kind_of(cls)
    if code is None:
        raise EncodeFailure(unsupported_reason(cls))
    header = (cls.__module__, cls.__qualname__)
    if reachable and code != EXCEPTION and find_class(*header) is not cls:
        raise EncodeFailure(_unreachable_reason(cls))
    marker = ExtType(code, f"{cls.__module__}:{cls.__qualname__}".encode())
    if code == DATACLASS:
        info = ClassInfo(code, marker, _slot_fields(cls), cls.__dictoffset__ != 0)
    elif code == EXCEPTION:
        info = ClassInfo(code, marker, builtin_fields=_builtin_fields(cls))
    else:
        info = ClassInfo(code, marker)
    # Only classes reachable by name are cached: they live as long as their module does.
    if find_class(*header) is cls:
        _CACHE[cls] = info
    return info


def class_ref(cls: type) -> ExtType:
    """Encode a class itself, by name: only the kinds the codec rebuilds instances of.

    Raises:
        EncodeFailure: Another kind of class, or one that cannot be found by its name.
    """
    ref = _REFS.get(cls)
    if ref is not None:
        return ref
    if kind_of(cls) is None:
        raise EncodeFailure(
            f"the class {type_name(cls)} is not supported as a value; only exception classes, "
            f"Enums, dataclasses and pydantic models can be stored by reference"
        )
    if find_class(cls.__module__, cls.__qualname__) is not cls:
        raise EncodeFailure(_unreachable_reason(cls))
    ref = _REFS[cls] = ExtType(CLASS, f"{cls.__module__}:{cls.__qualname__}".encode())
    return ref


_REFS: dict[type, ExtType] = {}


def is_cached(cls: type) -> bool:
    """Whether ``cls`` is a known good class (so per-class plans may be cached too)."""
    return cls in _CACHE


def kind_of(cls: type) -> int | None:
    """Return the ext code for instances of ``cls``, or None if the codec refuses them."""
    if issubclass(cls, enum.Enum):
        return ENUM
    if issubclass(cls, BaseException):
        return EXCEPTION
    if is_pydantic_model_class(cls):
        return PYDANTIC
    if dataclasses.is_dataclass(cls):
        return DATACLASS
    return None


def is_pydantic_model_class(cls: object) -> bool:
    """Whether ``cls`` is a pydantic v2 model class (never imports pydantic)."""
    pydantic: Any = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return isinstance(cls, type) and isinstance(base, type) and issubclass(cls, base)


def find_class(module: str, qualname: str) -> object | None:
    """Look ``module.qualname`` up among already imported modules, importing nothing.

    Only module and class namespaces are walked, by reading their ``__dict__`` directly,
    so no module ``__getattr__``, property or other user code runs.

    Returns:
        The object found, or None.
    """
    found: object = sys.modules.get(module)
    for part in qualname.split("."):
        if not isinstance(found, ModuleType | type):
            return None
        found = vars(found).get(part)
    return found


def _builtin_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    fields = []
    for klass in cls.__mro__:
        if klass.__module__ != "builtins":
            continue
        for name, descriptor in vars(klass).items():
            if isinstance(descriptor, MemberDescriptorType) and name not in _NOT_KEPT:
                fields.append((name, descriptor))
    return tuple(fields)


# Builtin exception fields not carried: dunders are handled apart, AttributeError.obj is
# an arbitrary object, and an exception group's fields come from its args.
_NOT_KEPT: Final = frozenset({"__suppress_context__", "obj", "message", "exceptions"})


def _slot_fields(cls: type) -> tuple[str, ...]:
    names = []
    for field in dataclasses.fields(cls):
        for klass in cls.__mro__:
            if isinstance(vars(klass).get(field.name), MemberDescriptorType):
                names.append(field.name)
                break
    return tuple(names)


def unsupported_reason(cls: type) -> str:
    """Say why instances of ``cls`` cannot be encoded and what to use instead."""
    for base, name in _SUBCLASS_HINTS:
        if issubclass(cls, base):
            return (
                f"object of type {type_name(cls)} (a subclass of {name}) is not supported: "
                f"the codec keeps types exactly, so convert it to a plain {name} first "
                f"(or make it an Enum)"
            )
    return (
        f"object of type {type_name(cls)} is not supported; use plain data, a dataclass, "
        f"a pydantic model or an Enum"
    )


def _unreachable_reason(cls: type) -> str:
    where = f"{cls.__module__}.{cls.__qualname__}"
    if "<locals>" in cls.__qualname__:
        return (
            f"class {where} is defined inside a function, so it cannot be found by name "
            f"when decoding; define it at module level"
        )
    return (
        f"class {where} cannot be found under that name in its module, so it could not "
        f"be decoded; define it at module level under its own name"
    )
