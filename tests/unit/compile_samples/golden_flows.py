"""Bigger workflows whose DAG descriptions are pinned as golden files.

Their node lines are part of the golden files: edit this module only together with
``RAPPELX_REGEN_GOLDEN=1`` (see ``tests/unit/test_dag.py``).
"""

from __future__ import annotations

import asyncio

from rappelx import RetryPolicy, Workflow, workflow
from tests.unit.compile_samples.actions import fail, rec


@workflow
class GoldenOrder(Workflow):
    """Validate, price every line concurrently, charge with retries, wait, notify."""

    async def price(self, item: str, quantity: int) -> int:
        if quantity <= 0:
            return 0
        unit = await rec(f"price {item}", 10)
        return unit * quantity

    async def run(self, order: dict[str, int], vip: bool) -> dict[str, object]:
        if not await rec("valid?", bool(order)):
            return {"status": "rejected"}
        prices = await asyncio.gather(*[self.price(k, q) for k, q in order.items()])
        total = sum(prices)
        if vip and total > 20:
            total -= await rec("discount", 5)
        try:
            receipt = await self.run_action(
                rec("charge", f"paid {total}"), retry=RetryPolicy(attempts=3)
            )
        except ValueError as e:
            await rec("refund", str(e))
            raise
        else:
            await asyncio.sleep(60)
        finally:
            await rec("audit", total)
        return {"status": "ok", "total": total, "receipt": receipt}


@workflow
class GoldenPoll(Workflow):
    """Poll until ready, skipping bad rounds, with cleanup on every exit."""

    async def run(self, rounds: int) -> list[object]:
        seen: list[object] = []
        attempt = 0
        while attempt < rounds:
            attempt += 1
            try:
                state = await rec(f"poll {attempt}", attempt)
                if state == 2:
                    continue
                if state > 3:
                    break
                seen.append(state)
            except ValueError:
                await fail("poll failed")
            finally:
                seen.append(await rec("tick", -attempt))
        else:
            seen.append("exhausted")
        return seen
