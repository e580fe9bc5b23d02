"""Durable sleeps, retry policies and action timeouts.

Sleeps compare with plain Python. Plain Python has no retries and no timeouts, so those
cases give their expected outcome explicitly (``expected=``) and say why in ``note``.
Backoff delays are kept tiny so the suite stays fast.
"""

from __future__ import annotations

import asyncio

from rappelx import ActionTimeout, BackoffPolicy, RetryPolicy, Workflow, action, workflow
from tests.parity_cases import Case, Raises, Returns, _counters

FAST = BackoffPolicy(base_delay=0.001, factor=1.0, max_delay=0.001, jitter=0.0)


class FlakyError(Exception):
    """A failure that names the attempt it happened on."""

    def __init__(self, key: str, attempt: int) -> None:
        super().__init__(f"{key} failed on attempt {attempt}")
        self.key = key
        self.attempt = attempt


@action
async def flaky(key: str, failures: int) -> int:
    """Fail ``failures`` times for ``key``, then return the attempt number."""
    attempt = _counters.bump(key)
    if attempt <= failures:
        raise FlakyError(key, attempt)
    return attempt


@action
async def flaky_lookup(key: str, failures: int) -> int:
    attempt = _counters.bump(key)
    if attempt <= failures:
        raise KeyError(f"{key}#{attempt}")
    return attempt


@action(retry=RetryPolicy(attempts=4, exceptions=(FlakyError,)), backoff=FAST)
async def flaky_with_defaults(key: str, failures: int) -> int:
    attempt = _counters.bump(key)
    if attempt <= failures:
        raise FlakyError(key, attempt)
    return attempt


@action
async def attempts_made(key: str) -> int:
    return _counters.count(key)


@action
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@action
async def slow_first_time(key: str) -> int:
    attempt = _counters.bump(key)
    if attempt == 1:
        await asyncio.sleep(5)
    return attempt


@action(timeout=0.05)
async def slow_with_default_timeout() -> str:
    await asyncio.sleep(5)
    return "finished"


@action
async def delay_for(x: int) -> float:
    return x / 1000


@action
async def inc(x: int) -> int:
    return x + 1


@workflow
class SleepBasic(Workflow):
    """asyncio.sleep with constants and an awaited expression; the result is None."""

    async def run(self) -> list[object]:
        out: list[object] = [await inc(0)]
        await asyncio.sleep(0)
        out.append(await asyncio.sleep(0.001))  # type: ignore[func-returns-value]
        await asyncio.sleep(await delay_for(1))
        out.append(await inc(1))
        return out


@workflow
class SleepInLoopAndBranch(Workflow):
    """Sleeps inside loops and branches, state carried across each one."""

    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            if i % 2:
                await asyncio.sleep(0.001 * i)
            else:
                out.append(await inc(i))
            out.append(i)
        return out


@workflow
class SleepInTryFinally(Workflow):
    """A sleep inside finally after an action failure."""

    async def run(self) -> str:
        log = []
        try:
            try:
                await flaky("sleep-finally", 1)
            finally:
                await asyncio.sleep(0)
                log.append("slept")
        except FlakyError as e:
            return f"{log} {e.attempt}"
        return "no failure"


@workflow
class RetryRecovers(Workflow):
    """Fails twice, succeeds on the third of three attempts."""

    async def run(self) -> int:
        return await self.run_action(
            flaky("recovers", 2), retry=RetryPolicy(attempts=3), backoff=FAST
        )


@workflow
class RetryExhausted(Workflow):
    """Fails on every one of three attempts: the last attempt's exception ends the workflow."""

    async def run(self) -> int:
        return await self.run_action(
            flaky("exhausted", 5), retry=RetryPolicy(attempts=3), backoff=FAST
        )


@workflow
class RetryExhaustedCaught(Workflow):
    """The exhausted failure is catchable; exactly three attempts were made."""

    async def run(self) -> tuple[int, int]:
        try:
            await self.run_action(flaky("caught", 9), retry=RetryPolicy(attempts=3), backoff=FAST)
        except FlakyError as e:
            return e.attempt, await attempts_made("caught")
        return -1, -1


@workflow
class RetryActionDefaults(Workflow):
    """The retry policy from ``@action(retry=...)`` applies to a plain await."""

    async def run(self) -> int:
        return await flaky_with_defaults("defaults", 3)


@workflow
class RetryOverrideDefaults(Workflow):
    """A per-call ``retry=`` replaces the action's default policy."""

    async def run(self) -> tuple[str, int]:
        try:
            await self.run_action(flaky_with_defaults("override", 3), retry=RetryPolicy())
        except FlakyError as e:
            return "failed", e.attempt
        return "recovered", -1


@workflow
class RetryNotListed(Workflow):
    """An exception class not in ``exceptions=`` is not retried (same as plain Python)."""

    async def run(self) -> tuple[str, int]:
        try:
            await self.run_action(
                flaky("not-listed", 2),
                retry=RetryPolicy(attempts=5, exceptions=(ConnectionError,)),
                backoff=FAST,
            )
        except FlakyError as e:
            return f"attempt {e.attempt}", await attempts_made("not-listed")
        return "recovered", -1


@workflow
class RetrySubclassListed(Workflow):
    """``exceptions=(LookupError,)`` retries a KeyError."""

    async def run(self) -> int:
        return await self.run_action(
            flaky_lookup("subclass", 1),
            retry=RetryPolicy(attempts=2, exceptions=(LookupError,)),
            backoff=FAST,
        )


@workflow
class RetryPolicyFromVariable(Workflow):
    """Policies built from workflow values, per loop iteration."""

    async def run(self, n: int) -> list[object]:
        out: list[object] = []
        for attempts in range(1, n + 1):
            policy = RetryPolicy(attempts=attempts)
            try:
                out.append(
                    await self.run_action(flaky(f"var-{attempts}", 2), retry=policy, backoff=FAST)
                )
            except FlakyError as e:
                out.append(f"gave up at {e.attempt}")
        return out


@workflow
class TimeoutCaught(Workflow):
    """An action over its timeout raises ActionTimeout, caught as TimeoutError."""

    async def run(self) -> list[object]:
        out: list[object] = []
        try:
            out.append(await self.run_action(slow(5), timeout=0.05))
        except TimeoutError as e:
            out.extend([type(e).__name__, isinstance(e, ActionTimeout)])
        out.append(await self.run_action(slow(0), timeout=5))
        return out


@workflow
class TimeoutActionDefault(Workflow):
    """The timeout from ``@action(timeout=...)``, uncaught: the workflow raises ActionTimeout."""

    async def run(self) -> str:
        return await slow_with_default_timeout()


@workflow
class TimeoutThenRetry(Workflow):
    """The first attempt times out, the retry succeeds."""

    async def run(self) -> int:
        return await self.run_action(
            slow_first_time("timeout-retry"),
            timeout=0.05,
            retry=RetryPolicy(attempts=2, exceptions=(TimeoutError,)),
            backoff=FAST,
        )


NO_RETRY_IN_PLAIN = "plain Python has no retries, so the expected outcome is explicit"
NO_TIMEOUT_IN_PLAIN = "plain Python has no action timeouts, so the expected outcome is explicit"

CASES = [
    Case("sleep_basic", SleepBasic),
    Case("sleep_loop_branch", SleepInLoopAndBranch, (4,)),
    Case("sleep_try_finally", SleepInTryFinally),
    Case("retry_recovers", RetryRecovers, expected=Returns(3), note=NO_RETRY_IN_PLAIN),
    Case(
        "retry_exhausted",
        RetryExhausted,
        expected=Raises(FlakyError, ("exhausted failed on attempt 3",)),
        note=NO_RETRY_IN_PLAIN,
    ),
    Case(
        "retry_exhausted_caught",
        RetryExhaustedCaught,
        expected=Returns((3, 3)),
        note=NO_RETRY_IN_PLAIN,
    ),
    Case("retry_action_defaults", RetryActionDefaults, expected=Returns(4), note=NO_RETRY_IN_PLAIN),
    Case(
        "retry_override_defaults",
        RetryOverrideDefaults,
        expected=Returns(("failed", 1)),
        note="a per-call RetryPolicy() means one attempt, as in plain Python",
    ),
    Case("retry_not_listed", RetryNotListed, note="not retried, so plain Python agrees"),
    Case("retry_subclass_listed", RetrySubclassListed, expected=Returns(2), note=NO_RETRY_IN_PLAIN),
    Case(
        "retry_policy_from_variable",
        RetryPolicyFromVariable,
        (4,),
        expected=Returns(["gave up at 1", "gave up at 2", 3, 3]),
        note=NO_RETRY_IN_PLAIN,
    ),
    Case(
        "timeout_caught",
        TimeoutCaught,
        expected=Returns(["ActionTimeout", True, "finished"]),
        note=NO_TIMEOUT_IN_PLAIN,
    ),
    Case(
        "timeout_action_default",
        TimeoutActionDefault,
        expected=Raises(ActionTimeout),
        note=NO_TIMEOUT_IN_PLAIN,
    ),
    Case("timeout_then_retry", TimeoutThenRetry, expected=Returns(2), note=NO_TIMEOUT_IN_PLAIN),
]
