"""Rebuilding class instances without running user code.

Dataclass and pydantic instances are created with ``object.__new__`` and get their
stored state put straight into their ``__dict__`` (or slots). Exceptions are created by
their nearest builtin base class's ``__new__``, which is C code, and get their args,
builtin fields, attributes, cause and context set directly. No ``__init__``,
``__post_init__``, validator, property or ``__setattr__`` of a user class runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rappelx.exceptions import CodecError, WorkflowFailed
from rappelx.runtime import _codec_classes as c
from rappelx.runtime._codec_encode import PYDANTIC_SLOTS


def new_instance(cls: type) -> object:
    """Create an empty instance of a dataclass or pydantic model class."""
    try:
        return object.__new__(cls)
    except TypeError as exc:  # a builtin base with its own layout, such as a tuple
        raise CodecError(f"cannot decode {c.type_name(cls)}: {exc}") from None


def dataclass_builder(cls: type) -> Callable[[list[Any]], object]:
    """Return the function that builds ``cls`` instances from ``[marker, state]``."""
    if c.class_info(cls, reachable=False).slot_fields:
        return lambda items: fill_dataclass(new_instance(cls), items)
    new = object.__new__

    def build(items: list[Any]) -> object:  # the common case, kept short: it runs per object
        _, state = items
        obj: Any = new(cls)
        if type(state) is not dict:
            _require_map(state, obj)
        if state:
            obj.__dict__.update(state)
        return obj

    return build


def fill_dataclass(obj: Any, items: list[Any]) -> object:
    """Put a dataclass instance's stored attributes back; return it."""
    _, state = items
    _require_map(state, obj)
    info = c.class_info(type(obj), reachable=False)
    if not info.slot_fields:
        if state:
            obj.__dict__.update(state)
        return obj
    for name, value in state.items():
        if name in info.slot_fields:
            object.__setattr__(obj, name, value)  # a slot: a C member descriptor
        elif info.has_dict:
            obj.__dict__[name] = value
        else:
            raise CodecError(
                f"cannot decode {c.type_name(type(obj))}: it has no field {name!r} any "
                f"more (was the dataclass changed?)"
            )
    return obj


def fill_pydantic(obj: object, items: list[Any]) -> object:
    """Put a pydantic model's state back, as ``BaseModel.__setstate__`` does; return it."""
    _, state = items
    _require_map(state, obj)
    _require_map(state["fields"], obj)
    object.__setattr__(obj, "__dict__", state["fields"])
    object.__setattr__(obj, "__pydantic_fields_set__", set(state["set"]))
    for slot in PYDANTIC_SLOTS:
        if slot in state:
            object.__setattr__(obj, slot, state[slot])
    return obj


def new_exception(cls: type, args: list[Any] | None) -> BaseException | None:
    """Create an instance of exception class ``cls`` with its builtin base's ``__new__``.

    Args:
        cls: The exception class.
        args: The args; needed only by exception groups, whose builtin fields come from
            them. With None, a group is not created and None is returned.
    """
    base: Any = next(k for k in cls.__mro__ if k.__module__ == "builtins")
    if not issubclass(cls, BaseExceptionGroup):
        return base.__new__(cls)  # type: ignore[no-any-return]
    if args is None:
        return None
    try:
        return base.__new__(cls, *args)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise CodecError(f"cannot decode {c.type_name(cls)}{tuple(args)!r}: {exc}") from None


def fill_exception(exc: Any, items: list[Any]) -> object:
    """Put an exception's args, builtin fields, attributes and chain back; return it."""
    _, _message, args, attrs, cause, context, suppress, fields = items
    exc.args = tuple(args)
    # Fields this Python does not have (written by another version) are skipped.
    for name, descriptor in c.class_info(type(exc), reachable=False).builtin_fields:
        if name in fields:
            descriptor.__set__(exc, fields[name])
    exc.__dict__.update(attrs)
    _set_chain(exc, cause, context, suppress)
    return exc


def fill_stand_in(stand_in: WorkflowFailed | None, error_type: str, items: list[Any]) -> object:
    """Complete the ``WorkflowFailed`` that replaces an exception of a missing class."""
    _, message, _args, _attrs, cause, context, suppress, _fields = items
    if stand_in is None:
        stand_in = WorkflowFailed(error_type=error_type, message=message)
    else:
        WorkflowFailed.__init__(stand_in, error_type=error_type, message=message)
    _set_chain(stand_in, cause, context, suppress)
    return stand_in


def _set_chain(exc: BaseException, cause: Any, context: Any, suppress: bool) -> None:
    exc.__cause__ = cause
    exc.__context__ = context
    exc.__suppress_context__ = suppress  # after __cause__, which sets it to True


def _require_map(state: object, obj: object) -> None:
    if type(state) is not dict:
        raise CodecError(f"cannot decode {c.type_name(type(obj))}: its state is not a map")
