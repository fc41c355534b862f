"""The order saga end to end: four worker processes, a real broker, SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from contracts.base import Address, OrderLine
from contracts.inventory import ReserveStock
from contracts.orders import CancelOrder, OrderStatus, PaymentMethod, PlaceOrder, PlaceOrderV1
from contracts.payments import CapturePayment
from contracts.shipping import ArrangeShipment
from outbox.db import create_engine, session_factory
from tests.support.harness import wait_for
from tests.support.roles import consumer_of
from tests.support.system import WORKERS, System
from workers.inventory.queries import stock_levels
from workers.ops.verify import verify
from workers.payments.queries import payments_by_order

PLENTY = ("MUG-7", "BOOK-42")
# the services by the part they play in the saga
SAGA = consumer_of(PlaceOrder).name
STOCK = consumer_of(ReserveStock).name
PAYMENTS = consumer_of(CapturePayment).name
SHIPPING = consumer_of(ArrangeShipment).name


def order(token: str = "tok_visa", lines: dict[str, int] | None = None) -> PlaceOrder:
    lines = lines or {random.choice(PLENTY): random.randint(1, 3)}
    return PlaceOrder(
        order_id=uuid.uuid4(),
        customer_id="cust-e2e",
        items=[OrderLine(sku=sku, quantity=qty) for sku, qty in lines.items()],
        payment=PaymentMethod(token=token),
        shipping_address=Address(
            name="Ada", line1="1 Loop Rd", city="Bristol", postal_code="BS1", country="GB"
        ),
    )


@pytest.fixture
async def system(
    e2e_amqp_url: str, backend: str, make_database_url, tmp_path: Path
) -> AsyncIterator[System]:
    urls = {service: make_database_url(backend) for service in WORKERS}
    running = System(e2e_amqp_url, urls, tmp_path, WARREN_RETRY_BASE_S="0.3")
    yield running
    running.stop_all()


async def stock(system: System) -> dict[str, int]:
    """Available units per SKU."""
    engine = create_engine(system.database_urls[STOCK])
    async with session_factory(engine)() as session:
        levels = await stock_levels(session)
    await engine.dispose()
    return {sku: on_hand - reserved for sku, (on_hand, reserved) in levels.items()}


async def payments(system: System) -> dict[str, str]:
    engine = create_engine(system.database_urls[PAYMENTS])
    async with session_factory(engine)() as session:
        rows = await payments_by_order(session)
    await engine.dispose()
    return {str(order_id): summary.status for order_id, summary in rows.items()}


async def clean(system: System) -> bool:
    findings = await verify(system.settings())
    return not findings


async def test_200_visa_orders_all_confirm_and_everything_is_conserved(system: System) -> None:
    await system.start()
    before = await stock(system)
    orders = [order() for _ in range(200)]
    await system.send(orders)

    done = await system.wait_terminal([o.order_id for o in orders], timeout=240)

    assert Counter(o.status for o in done.values()) == {OrderStatus.CONFIRMED: 200}
    ordered = Counter()
    for o in orders:
        for line in o.items:
            ordered[line.sku] += line.quantity
    after = await stock(system)
    assert {sku: before[sku] - after[sku] for sku in PLENTY} == {
        sku: ordered[sku] for sku in PLENTY
    }
    assert Counter((await payments(system)).values()) == {"captured": 200}
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def test_an_order_for_more_than_the_stock_is_rejected_naming_the_sku_and_nothing_is_charged(
    system: System,
) -> None:
    await system.start()
    greedy = order(lines={"LIMITED-EDITION": 6})
    await system.send([greedy])
    [rejected] = (await system.wait_terminal([greedy.order_id])).values()
    assert rejected.status == OrderStatus.REJECTED
    assert "LIMITED-EDITION" in (rejected.reason or "")
    assert str(greedy.order_id) not in await payments(system)
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def test_a_declined_card_cancels_and_gives_the_stock_back(system: System) -> None:
    await system.start()
    before = await stock(system)
    declined = order("tok_declined", {"MUG-7": 2})
    await system.send([declined])
    [cancelled] = (await system.wait_terminal([declined.order_id])).values()
    assert cancelled.status == OrderStatus.CANCELLED
    assert (await payments(system))[str(declined.order_id)] == "declined"
    await wait_for(lambda: _stock_is(system, before), what="the stock to be released")
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def _stock_is(system: System, expected: dict[str, int]) -> bool:
    return await stock(system) == expected


async def test_a_flaky_card_confirms_after_retries_with_exactly_one_capture(system: System) -> None:
    await system.start()
    flaky = order("tok_flaky")
    await system.send([flaky])
    [confirmed] = (await system.wait_terminal([flaky.order_id])).values()
    assert confirmed.status == OrderStatus.CONFIRMED
    assert (await payments(system))[str(flaky.order_id)] == "captured"
    assert await system.processes[PAYMENTS].metric("warren_retries_total") >= 2
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def test_cancel_before_shipping_cancels_refunds_once_and_releases_stock(
    system: System,
) -> None:
    await system.start(SAGA, STOCK, PAYMENTS)
    before = await stock(system)
    placed = order(lines={"BOOK-42": 1})
    await system.send([placed])
    await wait_for(
        lambda: _status_is(system, placed, OrderStatus.PAID), what="the order to be paid"
    )

    await system.send([CancelOrder(order_id=placed.order_id)])
    [cancelled] = (await system.wait_terminal([placed.order_id])).values()
    assert cancelled.status == OrderStatus.CANCELLED
    await wait_for(lambda: _payment_is(system, placed, "refunded"), what="one refund")
    await system.start(SHIPPING)
    await wait_for(lambda: _stock_is(system, before), what="the stock to be released")
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def _status_is(system: System, placed: PlaceOrder, status: OrderStatus) -> bool:
    found = (await system.orders()).get(str(placed.order_id))
    return found is not None and found.status == status


async def _payment_is(system: System, placed: PlaceOrder, status: str) -> bool:
    return (await payments(system)).get(str(placed.order_id)) == status


async def test_payments_down_past_its_timeout_cancels_compensates_and_late_replies_change_nothing(
    system: System,
) -> None:
    system.extra_env["WARREN_PAYMENT_TIMEOUT_S"] = "4"
    await system.start(SAGA, STOCK, SHIPPING)
    before = await stock(system)
    stranded = [order() for _ in range(3)]
    await system.send(stranded)
    done = await system.wait_terminal([o.order_id for o in stranded], timeout=60)
    for cancelled in done.values():
        assert cancelled.status == OrderStatus.CANCELLED
        assert cancelled.reason == "timeout: capture_payment got no answer within 4s"
    sequences = {order_id: o.sequence for order_id, o in done.items()}
    await wait_for(lambda: _stock_is(system, before), what="the stock to be released")

    saga = system.processes[SAGA]
    handled_before = await saga.metric("warren_messages_handled_total")
    await system.start(PAYMENTS)
    await wait_for(lambda: _nothing_charged(system, stranded), what="late captures undone")
    await wait_for(
        lambda: _at_least(saga.metric("warren_messages_handled_total"), handled_before + 3),
        timeout=60,
        what="the late payment replies to reach the saga",
    )
    after = await system.orders()
    assert {order_id: after[order_id].sequence for order_id in sequences} == sequences
    assert all(after[order_id].status == OrderStatus.CANCELLED for order_id in sequences)
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")


async def _nothing_charged(system: System, placed: list[PlaceOrder]) -> bool:
    """Each late capture was refunded, or refused because its refund came first."""
    statuses = await payments(system)
    return all(statuses.get(str(o.order_id)) in {"refunded", "voided"} for o in placed)


async def _at_least(value: Awaitable[float], floor: float) -> bool:
    return await value >= floor


async def test_a_version_1_place_order_is_accepted_and_confirmed(system: System) -> None:
    await system.start()
    legacy = PlaceOrderV1(
        order_id=uuid.uuid4(),
        customer_id="cust-v1",
        items=[OrderLine(sku="MUG-7", quantity=1)],
        payment_token="tok_visa",
        shipping_address=Address(
            name="Ada", line1="1 Loop Rd", city="Bristol", postal_code="BS1", country="GB"
        ),
    )
    await system.send([legacy])
    [confirmed] = (await system.wait_terminal([legacy.order_id])).values()
    assert confirmed.status == OrderStatus.CONFIRMED
    assert confirmed.currency == "EUR"
    assert (await payments(system))[str(legacy.order_id)] == "captured"


async def test_a_cancel_that_overtakes_its_order_is_honoured_with_no_charge_and_no_stock_held(
    system: System,
) -> None:
    await system.start()
    before = await stock(system)
    system.stop(SAGA)  # both commands wait in the saga's queue, the cancel first
    placed = order(lines={"MUG-7": 1})
    await system.send([CancelOrder(order_id=placed.order_id, reason="cancelled early")])
    await system.send([placed])

    await system.start(SAGA)
    [cancelled] = (await system.wait_terminal([placed.order_id])).values()
    assert (cancelled.status, cancelled.reason) == (OrderStatus.CANCELLED, "cancelled early")
    assert str(placed.order_id) not in await payments(system)
    assert await stock(system) == before
    await wait_for(lambda: clean(system), timeout=30, what="`warren verify` to be clean")
