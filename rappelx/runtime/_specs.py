"""Values that compiled workflow code builds at an await, and the helpers that build them.

The compiler rewrites ``await charge(order)`` into a block returning
``_rx_act(charge, order)``: an :class:`ActionCall` the engine turns into a dispatch.
These helpers run inside user-visible evaluation, so their errors are the ones plain
Python would raise (a ``TypeError`` for bad arguments, for instance).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rappelx._action import ActionCall, ActionDef, BackoffPolicy, RetryPolicy, seconds
from rappelx.runtime._codec_tree import register_value_class


@dataclass(frozen=True, slots=True)
class HelperCall:
    """A call of an async helper method: its name and its bound parameters."""

    name: str
    scope: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RangeSeq:
    """A ``range`` kept as three ints so a loop over it persists in constant space."""

    start: int
    stop: int
    step: int

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def __getitem__(self, index: int) -> int:
        return range(self.start, self.stop, self.step)[index]


# Persisted at every step of a loop over a range: encoded in one call, without a walk.
register_value_class(
    RangeSeq, lambda marker: lambda r: [marker, {"start": r.start, "stop": r.stop, "step": r.step}]
)


def make_action_call(defn: Any, /, *args: Any, **kwargs: Any) -> ActionCall:
    """``_rx_act``: an awaited call of ``defn``, checked like Python checks a call."""
    if not isinstance(defn, ActionDef):
        raise TypeError(
            f"{defn!r} is not an @action; a workflow can only await @action calls, "
            "self.run_action(...), asyncio.gather/sleep and its own async methods"
        )
    arity = defn.positional_arity  # check_arguments' own shortcut, without its call
    if kwargs or arity is None or not arity[0] <= len(args) <= arity[1]:
        defn.check_arguments(args, kwargs)
    return ActionCall(defn, args, kwargs)


def with_policies(
    call: ActionCall,
    /,
    *,
    retry: RetryPolicy | None = None,
    backoff: BackoffPolicy | None = None,
    timeout: timedelta | float | None = None,
) -> ActionCall:
    """``_rx_with``: ``self.run_action(call, retry=, backoff=, timeout=)``."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"run_action(retry=...) needs a RetryPolicy, not {retry!r}")
    if backoff is not None and not isinstance(backoff, BackoffPolicy):
        raise TypeError(f"run_action(backoff=...) needs a BackoffPolicy, not {backoff!r}")
    return dataclasses.replace(
        call,
        retry=retry if retry is not None else call.retry,
        backoff=backoff if backoff is not None else call.backoff,
        timeout=seconds(timeout) if timeout is not None else call.timeout,
    )


def helper_factory(methods: dict[str, Callable[..., Any]]) -> Callable[..., HelperCall]:
    """``_rx_helper`` for one workflow class: binds arguments like a method call would."""
    signatures = {name: inspect.signature(fn) for name, fn in methods.items()}

    def make_helper_call(name: str, owner: Any, /, *args: Any, **kwargs: Any) -> HelperCall:
        bound = signatures[name].bind(owner, *args, **kwargs)
        bound.apply_defaults()
        return HelperCall(name, dict(bound.arguments))

    return make_helper_call


def loop_sequence(value: Iterable[Any]) -> Any:
    """``_rx_seq``: what a ``for`` loop indexes into.

    Lists are iterated by index as Python does (so appending inside the loop is seen);
    tuples and strings are immutable and kept; a range becomes a :class:`RangeSeq`;
    anything else is materialized into a list when the loop starts.
    """
    kind = type(value)
    if kind is list or kind is tuple or kind is str:
        return value
    if kind is range:
        assert isinstance(value, range)
        return RangeSeq(value.start, value.stop, value.step)
    return list(value)


def sleep_spec(delay: Any, result: Any = None) -> tuple[Any, Any]:
    """``_rx_sleep``: the arguments of ``asyncio.sleep``, validated as asyncio does."""
    if isinstance(delay, timedelta):
        raise TypeError("asyncio.sleep() takes seconds, not a timedelta; use .total_seconds()")
    delay <= 0  # noqa: B015 - raises TypeError for non-numbers, exactly like asyncio.sleep
    return delay, result


def reraise(pending: Any, handled: BaseException | None) -> BaseException:
    """``_rx_reraise``: what a bare ``raise`` in a finally body re-raises.

    The exception that entered the finally block if one did, else the exception an
    enclosing ``except`` is handling; with neither, Python's own RuntimeError.
    """
    if type(pending) is tuple and pending[0] == "x":
        error: BaseException = pending[1]
        return error
    if handled is not None:
        return handled
    raise RuntimeError("No active exception to reraise")


RUNTIME = {
    "_rx_act": make_action_call,
    "_rx_with": with_policies,
    "_rx_seq": loop_sequence,
    "_rx_sleep": sleep_spec,
    "_rx_reraise": reraise,
}
