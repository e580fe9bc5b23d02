"""try/except/else/finally, class-hierarchy matching, raise, raise from."""

from __future__ import annotations

from rappelx import Workflow, workflow
from tests.unit.compile_samples.actions import fail, fail_key, note, rec


@workflow
class CsExceptTuple(Workflow):
    async def run(self) -> tuple[object, ...]:
        try:
            await fail("boom")
        except (KeyError, ValueError) as e:
            return ("caught", type(e).__name__, e.args)
        return ("missed",)


@workflow
class CsExceptHierarchy(Workflow):
    async def run(self) -> str:
        try:
            await fail_key("k")
        except ValueError:
            return "value"
        except LookupError as e:
            return f"lookup {type(e).__name__}"
        return "none"


@workflow
class CsElseFinally(Workflow):
    async def run(self, bad: bool) -> str:
        try:
            if bad:
                await fail("body")
            else:
                await rec("body")
        except ValueError:
            await rec("handler")
        else:
            await rec("else")
        finally:
            await rec("finally")
        return "done"


@workflow
class CsBareRaise(Workflow):
    async def run(self) -> str:
        try:
            await fail("inner")
        except ValueError:
            await rec("cleanup")
            raise
        return "unreachable"


@workflow
class CsRaiseFrom(Workflow):
    async def run(self) -> tuple[object, ...]:
        try:
            try:
                await fail("inner")
            except ValueError as e:
                raise RuntimeError("wrapped") from e
        except RuntimeError as r:
            return r.args, type(r.__cause__).__name__, type(r.__context__).__name__
        return ()


@workflow
class CsContext(Workflow):
    async def run(self) -> tuple[object, ...]:
        try:
            try:
                await fail("first")
            except ValueError:
                await rec("handling")
                raise KeyError("second")
        except KeyError as k:
            assert k.__context__ is not None
            return type(k.__context__).__name__, k.__context__.args, k.__cause__ is None
        return ()


@workflow
class CsFinallyReturn(Workflow):
    async def run(self) -> str:
        try:
            await rec("body")
            return "from body"
        finally:
            await rec("finally")


@workflow
class CsFinallyOverrides(Workflow):
    async def run(self) -> str:
        try:
            await fail("body")
        finally:
            return await rec("finally", "swallowed")  # noqa: B012 - the construct under test


@workflow
class CsBreakThroughFinally(Workflow):
    async def run(self) -> list[str]:
        order = []
        for i in range(3):
            try:
                order.append(await rec(f"b{i}", f"body{i}"))
                if i == 1:
                    break
            finally:
                order.append(note(f"f{i}", f"finally{i}"))
        return order


@workflow
class CsHandlerNameCleared(Workflow):
    async def run(self) -> str:
        try:
            await fail("x")
        except ValueError as e:
            await rec("in handler", str(e))
        try:
            return str(e)  # type: ignore[misc]  # e was deleted, as Python does
        except NameError as err:
            return type(err).__name__


@workflow
class CsUncaught(Workflow):
    async def run(self) -> str:
        await rec("before")
        await fail_key("escapes")
        return "unreachable"


@workflow
class CsFinallyContext(Workflow):
    async def run(self) -> str:
        try:
            try:
                await fail("pending")
            finally:
                await rec("finally")
                raise KeyError("from finally")
        except KeyError as e:
            # Raised while ValueError was propagating: Python chains it as __context__.
            return type(e.__context__).__name__
        return "unreachable"
