"""``@action`` and the retry, backoff and timeout policies attached to actions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from rappelx.exceptions import RappelxError

P = ParamSpec("P")
R = TypeVar("R")

_REGISTRY: dict[str, ActionDef[Any, Any]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often an action is tried, and on which exceptions.

    Args:
        attempts: Total number of tries, the first included. ``1`` means no retry.
        exceptions: Only these exception classes (and their subclasses) are retried.
    """

    attempts: int = 1
    exceptions: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise RappelxError(
                f"RetryPolicy(attempts={self.attempts!r}): attempts counts every try and "
                "must be an int of at least 1"
            )
        if isinstance(self.exceptions, type):
            object.__setattr__(self, "exceptions", (self.exceptions,))
        for exc in self.exceptions:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise RappelxError(
                    f"RetryPolicy(exceptions=...): {exc!r} is not an exception class"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    """How long to wait before each retry, in seconds.

    The n-th retry waits ``min(max_delay, base_delay * factor ** (n - 1))``, spread by
    ``±jitter`` as a fraction of that delay.
    """

    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 0:
            raise RappelxError("BackoffPolicy delays and factor must not be negative")
        if not 0 <= self.jitter <= 1:
            raise RappelxError("BackoffPolicy(jitter=...) is a fraction between 0 and 1")

    def delay(self, retry: int, unit: float) -> float:
        """Seconds before retry number ``retry`` (1-based); ``unit`` in [0, 1) spreads it."""
        raw = self.base_delay * self.factor ** (retry - 1)
        base = min(self.max_delay, raw)
        return max(0.0, base * (1 + self.jitter * (2 * unit - 1)))


DEFAULT_RETRY = RetryPolicy()
DEFAULT_BACKOFF = BackoffPolicy()


def seconds(value: timedelta | float | int | None, what: str = "timeout") -> float | None:
    """Normalize a ``timedelta`` or a number of seconds; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise RappelxError(f"{what} must be a timedelta or a number of seconds, not {value!r}")
    if result <= 0:
        raise RappelxError(f"{what} must be positive, got {value!r}")
    return result


@dataclass(slots=True)
class ActionCall:
    """One call of an action with its arguments and per-call policy overrides.

    Built at every await of an action, so not frozen (frozen construction is slower);
    treat it as immutable.
    """

    action: ActionDef[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    retry: RetryPolicy | None = None
    backoff: BackoffPolicy | None = None
    timeout: float | None = None


@dataclass(eq=False)
class ActionDef(Generic[P, R]):
    """An ``@action``-decorated coroutine function.

    Calling it outside a workflow returns the plain coroutine, so actions stay ordinary
    async functions for tests and for code that is not a workflow.
    """

    fn: Callable[P, Awaitable[R]]
    name: str
    timeout: float | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    backoff: BackoffPolicy = DEFAULT_BACKOFF
    queue: str = "default"
    signature: inspect.Signature = field(init=False, repr=False)
    positional_arity: tuple[int, int] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signature = inspect.signature(self.fn)
        self.positional_arity = _positional_arity(self.signature)
        functools.update_wrapper(self, self.fn)

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` as calling the function would, for bad arguments."""
        arity = self.positional_arity
        if not kwargs and arity is not None and arity[0] <= len(args) <= arity[1]:
            return
        self.signature.bind(*args, **kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<action {self.name}>"


def _positional_arity(signature: inspect.Signature) -> tuple[int, int] | None:
    """``(required, total)`` when every parameter is plainly positional, else None."""
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(signature.parameters.values())
    if any(p.kind not in plain for p in params):
        return None
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return required, len(params)


@overload
def action(fn: Callable[P, Awaitable[R]], /) -> ActionDef[P, R]: ...


@overload
def action(
    *,
    name: str | None = None,
    timeout: timedelta | float | None = None,
    retry: RetryPolicy | None = None,
    backoff: BackoffPolicy | None = None,
    queue: str = "default",
) -> Callable[[Callable[P, Awaitable[R]]], ActionDef[P, R]]: ...


def action(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    timeout: timedelta | float | None = None,
    retry: RetryPolicy | None = None,
    backoff: BackoffPolicy | None = None,
    queue: str = "default",
) -> ActionDef[P, R] | Callable[[Callable[P, Awaitable[R]]], ActionDef[P, R]]:
    """Mark an ``async def`` as a unit of work a workflow can await.

    Used bare (``@action``) or with defaults for every call of the action::

        @action(timeout=timedelta(seconds=30), retry=RetryPolicy(attempts=3))
        async def charge(order: Order) -> Receipt: ...

    Args:
        name: Registered name; defaults to ``module.qualname``. Workers import the
            action's module and look it up by this name.
        timeout: Per-attempt limit, a ``timedelta`` or seconds.
        retry: Which failures are retried and how many tries in all.
        backoff: Delay between tries.
        queue: Queue whose workers run it.
    """

    def decorate(f: Callable[P, Awaitable[R]]) -> ActionDef[P, R]:
        if not inspect.iscoroutinefunction(f):
            raise RappelxError(
                f"@action needs an 'async def' function; {getattr(f, '__qualname__', f)!r} "
                "is not one"
            )
        qualified = name or f"{f.__module__}.{f.__qualname__}"
        definition = ActionDef(
            fn=f,
            name=qualified,
            timeout=seconds(timeout),
            retry=retry or DEFAULT_RETRY,
            backoff=backoff or DEFAULT_BACKOFF,
            queue=queue,
        )
        _REGISTRY[qualified] = definition
        return definition

    if fn is not None:
        return decorate(fn)
    return decorate


def lookup_action(name: str) -> ActionDef[Any, Any] | None:
    """Return the registered action called ``name``, if its module has been imported."""
    return _REGISTRY.get(name)


def registered_actions() -> dict[str, ActionDef[Any, Any]]:
    """A snapshot of every action registered in this process."""
    return dict(_REGISTRY)
