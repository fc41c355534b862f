"""The gateway's baseline: `POST /orders` that validates the same body and answers 202 from memory.

No authentication, no database, no outbox, no middleware; the same request and response models
and the same uvicorn settings as `gateway.server.serve`.
Run as `python -m benchmarks.bare_app PORT`.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Response

from contracts.orders import OrderStatus
from gateway.schemas import HistoryOut, LineOut, OrderOut, PlaceOrderRequest, TotalOut

app = FastAPI(title="bare orders endpoint")


@app.post("/orders", status_code=202, response_model=OrderOut)
async def place_order(body: PlaceOrderRequest, response: Response) -> OrderOut:
    """Validate, then answer what the gateway answers, without storing anything."""
    order_id, now = str(uuid.uuid4()), datetime.now(UTC)
    response.headers["Location"] = f"/orders/{order_id}"
    response.headers["Retry-After"] = "1"
    return OrderOut(
        order_id=order_id,
        status=OrderStatus.PENDING,
        reason=None,
        items=[LineOut(sku=line.sku, quantity=line.quantity) for line in body.items],
        total=TotalOut(amount_cents=None, currency=body.currency or "EUR"),
        created_at=now,
        updated_at=now,
        history=[HistoryOut(status=OrderStatus.PENDING, reason="accepted", sequence=0, at=now)],
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


def main() -> None:
    port = int(sys.argv[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
