"""``finally``: runs on every way out of ``try``, and can override that way out.

Return, break, continue and exceptions inside ``try``, inside handlers and inside the
``finally`` itself, where Python's rules (a ``return`` in ``finally`` discards the
pending exception or return value) are the ones to match.
"""

from __future__ import annotations

from rappelx import Workflow, action, workflow
from tests.parity_cases import Case


@action
async def record(log: list[str], entry: str) -> list[str]:
    return [*log, entry]


@action
async def value(x: int) -> int:
    return x


@action
async def boom(message: str) -> int:
    raise ValueError(message)


@workflow
class FinallyNormal(Workflow):
    """try body completes; finally runs after it, with awaits in both."""

    async def run(self) -> list[str]:
        log: list[str] = []
        try:
            log = await record(log, "body")
        finally:
            log = await record(log, "finally")
        return await record(log, "after")


@workflow
class FinallyOnException(Workflow):
    """The action raises, finally runs, then the exception propagates to a handler."""

    async def run(self) -> list[str]:
        log: list[str] = []
        try:
            try:
                log = await record(log, "body")
                await boom("fail")
                log = await record(log, "not reached")
            finally:
                log = await record(log, "finally")
        except ValueError as e:
            log = await record(log, f"caught {e.args[0]}")
        return log


@workflow
class FinallyUncaught(Workflow):
    """finally runs and the exception still ends the workflow."""

    async def run(self) -> int:
        log: list[str] = []
        try:
            await boom("ends workflow")
        finally:
            log = await record(log, "finally")
            assert log == ["finally"]
        return 0


@workflow
class FinallyReturnInTry(Workflow):
    """``return`` in try: finally runs before the workflow returns that value."""

    async def run(self) -> list[str]:
        log: list[str] = ["start"]
        try:
            return log
        finally:
            log.append(f"finally {await value(1)}")


@workflow
class FinallyReturnOverridesReturn(Workflow):
    """``return`` in finally replaces the try's return value."""

    async def run(self) -> str:
        try:
            return f"try {await value(1)}"
        finally:
            return f"finally {await value(2)}"


@workflow
class FinallyReturnSwallowsException(Workflow):
    """``return`` in finally discards a pending exception."""

    async def run(self) -> str:
        try:
            await boom("swallowed")
        finally:
            return "finally won"


@workflow
class FinallyRaiseReplacesException(Workflow):
    """An exception raised in finally replaces the pending one (keeping it as context)."""

    async def run(self) -> int:
        try:
            await boom("first")
        finally:
            raise KeyError(await value(2))


@workflow
class FinallyActionFailsInFinally(Workflow):
    """An action failing inside finally after a normal try body."""

    async def run(self) -> str:
        try:
            try:
                await value(1)
            finally:
                await boom("in finally")
        except ValueError as e:
            return f"caught {e.args}"
        return "unreachable"


@workflow
class FinallyBreakInTry(Workflow):
    """``break`` in try: finally runs, then the loop ends."""

    async def run(self) -> list[str]:
        log: list[str] = []
        for i in range(5):
            try:
                if await value(i) == 2:
                    break
                log.append(f"body {i}")
            finally:
                log.append(f"finally {i}")
        return log


@workflow
class FinallyContinueInTry(Workflow):
    """``continue`` in try: finally runs, then the next iteration starts."""

    async def run(self) -> list[str]:
        log: list[str] = []
        i = 0
        while i < 4:
            i += 1
            try:
                if await value(i) % 2:
                    continue
                log.append(f"even {i}")
            finally:
                log.append(f"finally {i}")
        return log


@workflow
class FinallyBreakSwallowsException(Workflow):
    """``break`` in finally discards the pending exception and ends the loop."""

    async def run(self) -> list[str]:
        log: list[str] = []
        for i in range(3):
            try:
                await boom(f"lost {i}")
            finally:
                log.append(f"finally {i}")
                break
        return log


@workflow
class FinallyContinueSwallowsException(Workflow):
    """``continue`` in finally discards the pending exception every iteration."""

    async def run(self) -> list[str]:
        log: list[str] = []
        for i in range(3):
            try:
                if i != 1:
                    await boom(f"lost {i}")
                log.append(f"clean {i}")
            finally:
                log.append(f"finally {i}")
                continue
        return log


@workflow
class FinallyReturnInLoopTry(Workflow):
    """``return`` in try inside a loop: the finally runs once, the loop does not go on."""

    async def run(self) -> tuple[int, list[str]]:
        log: list[str] = []
        for i in range(10):
            try:
                if await value(i) == 3:
                    return i, log
            finally:
                log.append(str(i))
        return -1, log


@workflow
class FinallyWithExceptElse(Workflow):
    """The full try/except/else/finally, on both paths."""

    async def run(self, fail: bool) -> list[str]:
        log: list[str] = []
        try:
            if fail:
                await boom("x")
            log.append("body")
        except ValueError:
            log.append("except")
        else:
            log.append(f"else {await value(7)}")
        finally:
            log.append("finally")
        return log


@workflow
class FinallyExceptionInHandler(Workflow):
    """A handler raising: finally still runs, the handler's exception propagates."""

    async def run(self) -> int:
        log: list[str] = []
        try:
            try:
                await boom("original")
            except ValueError:
                raise LookupError("from handler")
            finally:
                log.append("finally")
        except LookupError as e:
            return len(log) * 100 + len(e.args[0])
        return -1


@workflow
class FinallyNestedOrder(Workflow):
    """Nested finally blocks run innermost first on a return from deep inside."""

    async def run(self) -> list[str]:
        log: list[str] = []
        try:
            try:
                try:
                    return log
                finally:
                    log.append(f"inner {await value(1)}")
            finally:
                log.append(f"middle {await value(2)}")
        finally:
            log.append(f"outer {await value(3)}")


@workflow
class FinallyReturnValueEvaluatedFirst(Workflow):
    """The try's return expression is evaluated before finally mutates the variable."""

    async def run(self) -> int:
        count = 1
        try:
            return count + await value(10)
        finally:
            count = 1000


@workflow
class FinallyBareRaise(Workflow):
    """A bare ``raise`` in a finally body re-raises what entered it, else what an enclosing
    ``except`` handles, else RuntimeError."""

    async def run(self, fail: bool) -> list[str]:
        out: list[str] = []
        try:
            try:
                await value(1)
                if fail:
                    raise KeyError("k")
            finally:
                try:
                    raise
                except KeyError:
                    out.append("entered by KeyError")
                except RuntimeError:
                    out.append("nothing to re-raise")
        except KeyError:
            out.append("KeyError still propagates")
        try:
            await boom("outer")
        except ValueError:
            try:
                await value(2)
            finally:
                try:
                    raise
                except ValueError as e:
                    out.append(f"outer handler's {e}")
        return out


CASES = [
    Case("normal", FinallyNormal),
    Case("on_exception", FinallyOnException),
    Case("uncaught", FinallyUncaught),
    Case("return_in_try", FinallyReturnInTry),
    Case("return_overrides_return", FinallyReturnOverridesReturn),
    Case("return_swallows_exception", FinallyReturnSwallowsException),
    Case("raise_replaces_exception", FinallyRaiseReplacesException),
    Case("action_fails_in_finally", FinallyActionFailsInFinally),
    Case("break_in_try", FinallyBreakInTry),
    Case("continue_in_try", FinallyContinueInTry),
    Case("break_swallows_exception", FinallyBreakSwallowsException),
    Case("continue_swallows_exception", FinallyContinueSwallowsException),
    Case("return_in_loop_try", FinallyReturnInLoopTry),
    Case("except_else_ok", FinallyWithExceptElse, (False,)),
    Case("except_else_fail", FinallyWithExceptElse, (True,)),
    Case("exception_in_handler", FinallyExceptionInHandler),
    Case("nested_order", FinallyNestedOrder),
    Case("return_value_evaluated_first", FinallyReturnValueEvaluatedFirst),
    Case("bare_raise_normal", FinallyBareRaise, (False,)),
    Case("bare_raise_exception", FinallyBareRaise, (True,)),
]
