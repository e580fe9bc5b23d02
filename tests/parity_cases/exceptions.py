"""``try``/``except``/``else``: class hierarchy, tuples, ``as e``, re-raise, chaining.

Exceptions raised by actions and by inline code must be caught the same way; a workflow
that ends with an exception must raise the same class with the same args.
"""

from __future__ import annotations

from typing import TypeVar

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case

T = TypeVar("T")


class PaymentError(Exception):
    """A custom exception whose constructor does not take its ``args``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class DeclinedError(PaymentError):
    """A subclass of a custom exception, with an extra attribute."""

    def __init__(self, card: str) -> None:
        super().__init__(402, "declined")
        self.card = card


class NoArgsError(Exception):
    """A custom exception raised with no arguments at all."""


@action
async def raise_key(key: str) -> int:
    return {"present": 1}[key]


@action
async def raise_value(message: str) -> int:
    raise ValueError(message)


@action
async def raise_payment(code: int) -> int:
    raise PaymentError(code, "card problem")


@action
async def raise_declined(card: str) -> int:
    raise DeclinedError(card)


@action
async def raise_no_args() -> int:
    raise NoArgsError


@action
async def maybe_fail(kind: str) -> str:
    if kind == "key":
        raise KeyError("k")
    if kind == "index":
        raise IndexError(3)
    if kind == "value":
        raise ValueError("v", 2)
    if kind == "type":
        raise TypeError("t")
    if kind == "zero":
        return str(1 // 0)
    return "fine"


@action
async def raise_chained(key: str) -> int:
    try:
        return {"k": 1}[key]
    except KeyError as e:
        raise PaymentError(404, f"no {key}") from e


@action
async def identity(x: T) -> T:
    return x


@workflow
class ExcHierarchy(Workflow):
    """KeyError from an action is caught by ``except LookupError``."""

    async def run(self, key: str) -> str:
        try:
            value = await raise_key(key)
        except LookupError as e:
            return f"lookup {type(e).__name__} {e.args}"
        return f"value {value}"


@workflow
class ExcHandlerOrder(Workflow):
    """The first matching handler wins; later broader handlers are skipped."""

    async def run(self, kinds: list[str]) -> list[str]:
        out = []
        for kind in kinds:
            try:
                out.append(await maybe_fail(kind))
            except KeyError:
                out.append("key")
            except LookupError as e:
                out.append(f"lookup {e.args[0]}")
            except (TypeError, ValueError) as e:
                out.append(f"tuple {type(e).__name__} {e.args}")
            except Exception as e:
                out.append(f"other {type(e).__name__}")
        return out


@workflow
class ExcInlineRaise(Workflow):
    """Exceptions raised by inline code (not actions) are caught the same way."""

    async def run(self, items: list[int]) -> list[str]:
        out = []
        for i in range(4):
            try:
                value = items[i]
                out.append(str(100 // value))
                out.append(await maybe_fail("fine"))
            except IndexError as e:
                out.append(f"index {e.args}")
            except ZeroDivisionError as e:
                out.append(f"zero {e.args}")
        return out


@workflow
class ExcCustomCaught(Workflow):
    """Custom exceptions with custom __init__: attributes and args survive."""

    async def run(self, card: str) -> list[object]:
        out: list[object] = []
        try:
            await raise_payment(500)
        except PaymentError as e:
            out.extend([e.code, e.reason, e.args])
        try:
            await raise_declined(card)
        except PaymentError as e:
            out.extend([type(e).__name__, e.code, getattr(e, "card", None), str(e)])
        return out


@workflow
class ExcCustomUncaught(Workflow):
    """A custom exception that ends the workflow (class, args and attributes compared)."""

    async def run(self, card: str) -> int:
        await identity(card)
        return await raise_declined(card)


@workflow
class ExcNoArgs(Workflow):
    """An exception class raised bare, caught, then raised again from the workflow."""

    async def run(self, reraise: bool) -> str:
        try:
            await raise_no_args()
        except NoArgsError as e:
            if reraise:
                raise
            return f"caught {e.args}"
        return "unreachable"


@workflow
class ExcBareReraise(Workflow):
    """Bare ``raise`` inside a handler re-raises the action's exception."""

    async def run(self) -> int:
        attempts = []
        try:
            try:
                await raise_value("inner")
            except ValueError:
                attempts.append("inner handler")
                raise
        except ValueError as e:
            attempts.append(f"outer {e.args}")
        return len(attempts) * 10 + len(attempts[1])


@workflow
class ExcRaiseFrom(Workflow):
    """``raise X from Y`` ends the workflow; the cause is kept."""

    async def run(self, key: str) -> int:
        try:
            return await raise_key(key)
        except KeyError as e:
            raise RuntimeError(f"no such key {key}") from e


@workflow
class ExcRaiseFromCaught(Workflow):
    """``raise X from Y`` caught again inside the workflow, inspecting ``__cause__``."""

    async def run(self) -> tuple[str, str, tuple[object, ...]]:
        try:
            try:
                await raise_value("root")
            except ValueError as e:
                raise LookupError("wrapped") from e
        except LookupError as outer:
            cause = outer.__cause__
            return str(outer), type(cause).__name__, cause.args if cause else ()
        return "", "", ()


@workflow
class ExcActionCause(Workflow):
    """An action raising ``X from Y``: the cause crosses with the exception."""

    async def run(self, catch: bool) -> tuple[str, str, tuple[object, ...]]:
        if not catch:
            await raise_chained("x")
        try:
            await raise_chained("y")
        except PaymentError as e:
            cause = e.__cause__
            return str(e), type(cause).__name__, cause.args if cause else ()
        return "", "", ()


@workflow
class ExcElse(Workflow):
    """``else`` runs only when the try body did not raise."""

    async def run(self, kinds: list[str]) -> list[str]:
        out = []
        for kind in kinds:
            try:
                result = await maybe_fail(kind)
            except Exception as e:
                out.append(f"failed {type(e).__name__}")
            else:
                out.append(f"else {result}")
                out.append(str(await identity(len(result))))
        return out


@workflow
class ExcNested(Workflow):
    """Nested try: inner handler misses, outer catches; handler raising a new error."""

    async def run(self, kind: str) -> str:
        try:
            try:
                await maybe_fail(kind)
            except KeyError:
                return "inner key"
            try:
                await raise_value("second")
            except ValueError as e:
                raise TypeError(f"converted {e.args[0]}") from None
        except IndexError as e:
            return f"outer index {e.args}"
        except TypeError as e:
            return f"outer type {e.args}"
        return "none"


@workflow
class ExcAsNameCleared(Workflow):
    """After ``except ... as e`` the name is unbound; an earlier binding does not survive."""

    async def run(self) -> str:
        e = "before"
        try:
            await raise_value("x")
        except ValueError as e:  # noqa: F841
            pass
        try:
            return f"still bound: {e}"  # type: ignore[misc]
        except NameError:
            return "unbound"


@workflow
class ExcUncaughtValue(Workflow):
    """An action's ValueError not caught: the workflow raises it with the same args."""

    async def run(self) -> int:
        await identity(1)
        try:
            return await raise_value("escapes")
        except KeyError:
            return -1


@workflow
class ExcUncaughtInline(Workflow):
    """Inline code raising KeyError ends the workflow."""

    async def run(self, key: str) -> int:
        table = {"a": await identity(1)}
        return table[key]


@workflow
class ExcAssert(Workflow):
    """``assert`` passing, then failing with a message."""

    async def run(self, x: int) -> int:
        value = await identity(x)
        assert value == x, "identity changed the value"
        assert value > 0, f"expected a positive value, got {value}"
        return value


@workflow
class ExcAssertCaught(Workflow):
    """A failed assert caught as AssertionError."""

    async def run(self) -> str:
        try:
            assert await identity(False), "nope"
        except AssertionError as e:
            return f"caught {e.args}"
        return "passed"


@workflow
class ExcRaiseInstanceAndClass(Workflow):
    """``raise SomeClass`` and ``raise instance`` from workflow code."""

    async def run(self, which: int) -> None:
        await identity(which)
        if which == 0:
            raise NoArgsError
        if which == 1:
            raise PaymentError(which, "from workflow")
        raise KeyError(which)


@workflow
class ExcContinueInHandler(Workflow):
    """``continue`` and ``break`` inside except handlers."""

    async def run(self, kinds: list[str]) -> list[str]:
        out = []
        for kind in kinds:
            try:
                out.append(await maybe_fail(kind))
            except LookupError:
                continue
            except TypeError:
                break
            out.append("after")
        return out


CASES = [
    Case("hierarchy_caught", ExcHierarchy, ("missing",)),
    Case("hierarchy_value", ExcHierarchy, ("present",)),
    Case("handler_order", ExcHandlerOrder, (["key", "index", "value", "type", "zero", "fine"],)),
    Case("inline_raise", ExcInlineRaise, ([5, 0],)),
    Case("custom_caught", ExcCustomCaught, ("visa",)),
    Case("custom_uncaught", ExcCustomUncaught, ("amex",)),
    Case("no_args_caught", ExcNoArgs, (False,)),
    Case("no_args_reraised", ExcNoArgs, (True,)),
    Case("bare_reraise", ExcBareReraise),
    Case("raise_from", ExcRaiseFrom, ("gone",)),
    Case("raise_from_caught", ExcRaiseFromCaught),
    Case("action_cause_caught", ExcActionCause, (True,)),
    Case("action_cause_uncaught", ExcActionCause, (False,)),
    Case("else", ExcElse, (["fine", "key", "type"],)),
    Case("nested_inner", ExcNested, ("key",)),
    Case("nested_outer_index", ExcNested, ("index",)),
    Case("nested_converted", ExcNested, ("fine",)),
    Case("nested_outer_type", ExcNested, ("type",)),
    Case("as_name_cleared", ExcAsNameCleared),
    Case("uncaught_value", ExcUncaughtValue),
    Case("uncaught_inline", ExcUncaughtInline, ("b",)),
    Case("assert_pass", ExcAssert, (3,)),
    Case("assert_fail", ExcAssert, (-3,)),
    Case("assert_caught", ExcAssertCaught),
    Case("raise_class", ExcRaiseInstanceAndClass, (0,)),
    Case("raise_custom", ExcRaiseInstanceAndClass, (1,)),
    Case("raise_key", ExcRaiseInstanceAndClass, (2,)),
    Case("continue_in_handler", ExcContinueInHandler, (["fine", "key", "fine", "type", "fine"],)),
]
