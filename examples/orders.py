"""A longer workflow: fan out over items, retry a flaky call, wait durably, clean up.

Try it::

    rappelx run examples.orders:ShipOrder --input '{"order_id": "o1"}' --local
    rappelx visualize examples.orders:ShipOrder -o orders.svg
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from rappelx import BackoffPolicy, RetryPolicy, Workflow, action, workflow

_ORDERS = {"o1": ["book", "lamp", "mug"], "o2": ["piano"]}
_STOCK = {"book": 4, "lamp": 1, "mug": 0, "piano": 0}


class OutOfStock(Exception):
    """An item cannot be reserved."""


@dataclass
class Shipment:
    """What happened to an order."""

    order_id: str
    shipped: list[str] = field(default_factory=list)
    backordered: list[str] = field(default_factory=list)
    label: str | None = None


@action
async def load_items(order_id: str) -> list[str]:
    """The items of an order."""
    return list(_ORDERS[order_id])


@action
async def reserve(item: str) -> str:
    """Reserve one unit of ``item``; raises :class:`OutOfStock`."""
    if _STOCK.get(item, 0) <= 0:
        raise OutOfStock(item)
    return item


@action(
    timeout=timedelta(seconds=10),
    retry=RetryPolicy(attempts=4, exceptions=(ConnectionError,)),
    backoff=BackoffPolicy(base_delay=0.5, factor=2.0, max_delay=5.0),
)
async def print_label(order_id: str, items: list[str]) -> str:
    """A shipping label (a call to a carrier's API in a real application)."""
    return f"{order_id}:{'+'.join(items)}"


@action
async def release(items: list[str]) -> None:
    """Give reserved units back."""


@workflow
class ShipOrder(Workflow):
    """Reserve every item at once, ship what is in stock, wait for a backorder window."""

    async def run(self, order_id: str) -> Shipment:
        shipment = Shipment(order_id)
        items = await load_items(order_id)
        outcomes = await asyncio.gather(*[reserve(i) for i in items], return_exceptions=True)
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, OutOfStock):
                shipment.backordered.append(item)
            else:
                shipment.shipped.append(item)
        if not shipment.shipped:
            return shipment
        try:
            shipment.label = await print_label(order_id, shipment.shipped)
        except ConnectionError:
            await release(shipment.shipped)
            raise
        if shipment.backordered:
            # A durable timer: nothing is held in memory while the instance waits.
            await asyncio.sleep(3600)
        return shipment
