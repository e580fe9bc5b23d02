"""``Workflow``, ``@workflow`` and the registry of compiled workflows."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rappelx.compiler import CompiledWorkflow, compile_workflow
from rappelx.compiler._compile import module_index
from rappelx.compiler._diagnostics import DUPLICATE_WORKFLOW
from rappelx.exceptions import CompileError, WorkflowArgumentsError
from rappelx.runtime._engine import Engine

if TYPE_CHECKING:
    from rappelx.runtime._client import WorkflowHandle

W = TypeVar("W", bound=type)
T = TypeVar("T")

_WORKFLOWS: dict[str, WorkflowDef] = {}


@dataclass(eq=False)
class WorkflowDef:
    """A compiled workflow class, as the runtime sees it."""

    name: str
    cls: type
    compiled: CompiledWorkflow
    engine: Engine
    original_run: Callable[..., Awaitable[Any]]
    declared_version: str | None = None
    _ir_json: str | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        """The IR hash an instance is pinned to (prefixed by ``version=`` if given)."""
        if self.declared_version:
            return f"{self.declared_version}-{self.compiled.version}"
        return self.compiled.version

    @property
    def ir_json(self) -> str:
        """JSON describing the DAG, stored with the version."""
        if self._ir_json is None:
            self._ir_json = json.dumps(self.compiled.describe(), default=str)
        return self._ir_json

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Check ``args``/``kwargs`` against ``run``'s signature."""
        try:
            inspect.signature(self.original_run).bind(None, *args, **kwargs)
        except TypeError as exc:
            sig = inspect.signature(self.original_run)
            raise WorkflowArgumentsError(
                f"{self.name}.run{sig} cannot take these arguments: {exc}"
            ) from exc
        return tuple(args), dict(kwargs)


class Workflow:
    """Base class of every workflow. Define ``async def run(self, ...)`` and decorate the
    class with :func:`workflow`.

    ``await MyWorkflow().run(...)`` queues an instance in Postgres and waits for its
    result; ``await MyWorkflow().start(...)`` returns a handle at once.
    """

    __rappelx__: WorkflowDef

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define 'async def run'")

    async def start(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        """Queue an instance and return its :class:`WorkflowHandle` without waiting."""
        from rappelx.runtime._client import default_client

        return await default_client().start(type(self), *args, **kwargs)

    async def run_action(
        self,
        call: Awaitable[T],
        *,
        retry: Any = None,
        backoff: Any = None,
        timeout: Any = None,
    ) -> T:
        """Await an action call with per-call ``retry``, ``backoff`` and ``timeout``.

        Outside the engine (plain Python) this simply awaits ``call``.
        """
        return await call


def lookup_workflow(name: str) -> WorkflowDef | None:
    """The workflow registered as ``name`` in this process, if its module was imported."""
    return _WORKFLOWS.get(name)


def registered_workflows() -> dict[str, WorkflowDef]:
    """A snapshot of every workflow compiled in this process."""
    return dict(_WORKFLOWS)


def definition(cls: type) -> WorkflowDef:
    """The :class:`WorkflowDef` of a decorated workflow class."""
    found = cls.__dict__.get("__rappelx__")
    if not isinstance(found, WorkflowDef):
        raise CompileError(
            f"{cls.__qualname__} is not a compiled workflow; decorate it with @workflow",
            code="RX101",
        )
    return found


@overload
def workflow(cls: W, /) -> W: ...


@overload
def workflow(*, name: str | None = None, version: str | None = None) -> Callable[[W], W]: ...


def workflow(
    cls: W | None = None, /, *, name: str | None = None, version: str | None = None
) -> W | Callable[[W], W]:
    """Compile a :class:`Workflow` subclass at decoration time.

    Args:
        name: Registered name (default: the class name).
        version: A label prefixed to the IR hash; instances are pinned to the result.

    Raises:
        CompileError: the class uses something rappelx cannot run durably.
    """

    def decorate(target: W) -> W:
        return _register(target, name or target.__name__, version)

    if cls is not None:
        return decorate(cls)
    return decorate


def _register(target: W, name: str, version: str | None) -> W:
    cls: Any = target
    original = cls.__dict__.get("run")
    existing = _WORKFLOWS.get(name)
    if (
        existing is not None
        and existing.cls is not cls
        and _same_origin(existing.cls, cls) is False
    ):
        filename, lineno = _class_position(cls)
        raise CompileError(
            f"{filename}:{lineno}:1: {DUPLICATE_WORKFLOW.format(name=name)} "
            f"({existing.cls.__module__}.{existing.cls.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__})",
            filename=filename,
            lineno=lineno,
            col_offset=0,
            code=DUPLICATE_WORKFLOW.code,
        )
    compiled = compile_workflow(cls, name)
    assert original is not None
    cls.__rappelx_run__ = original
    engine = Engine(compiled.program, cls)
    definition_ = WorkflowDef(
        name=name,
        cls=cls,
        compiled=compiled,
        engine=engine,
        original_run=original,
        declared_version=version,
    )
    cls.__rappelx__ = definition_

    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        from rappelx.runtime._client import default_client

        return await default_client().run(type(self), *args, **kwargs)

    cls.run = run
    _WORKFLOWS[name] = definition_
    return target


def _class_position(cls: type) -> tuple[str, int]:
    try:
        filename = inspect.getsourcefile(cls) or "<unknown>"
        _, spans = module_index(filename)
        return filename, spans.get(cls.__qualname__, (0, 0))[0]
    except (OSError, TypeError):
        return "<unknown>", 0


def _same_origin(old: type, new: type) -> bool:
    """A module re-imported (or reloaded) redefines its classes; that is not a clash."""
    return old.__module__ == new.__module__ and old.__qualname__ == new.__qualname__
