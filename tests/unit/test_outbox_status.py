"""`warren status` reads every service's outbox and shows rows that keep failing as errors."""

from __future__ import annotations

import uuid
from pathlib import Path

from rich.console import Console
from sqlalchemy import update

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from outbox.db import create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from workers.ops.outbox_status import outbox_snapshot, render_outboxes
from workers.runtime.discovery import services, workers

UNROUTABLE = "Unroutable: no queue is bound to exchange 'inventory.commands' for key 'x'"


async def test_status_counts_pending_and_unroutable_rows_and_marks_the_service_red(
    tmp_path: Path,
) -> None:
    # given the outbox of the status publisher with two pending rows, one returned as unroutable
    publisher = next(s.name for s in workers() if OrderStatusChanged in s.sends)
    idle = next(s.name for s in workers() if s.name != publisher)
    settings = Settings(_env_file=None, var_dir=tmp_path)
    engine = create_engine(settings.database_url(publisher))
    await create_tables(engine, MESSAGING_TABLES)
    envelopes = [
        Envelope(OrderStatusChanged(order_id=uuid.uuid4(), status=OrderStatus.PENDING, sequence=1))
        for _ in range(2)
    ]
    async with UnitOfWork(session_factory(engine)) as uow:
        for envelope in envelopes:
            uow.publish(envelope)
        await uow.commit()
    async with session_factory(engine)() as session:
        await session.exec(
            update(OutboxMessage)
            .where(OutboxMessage.id == envelopes[0].message_id)  # type: ignore[arg-type]
            .values(attempts=3, last_error=UNROUTABLE)
        )
        await session.commit()
    await engine.dispose()

    # when status reads every service's outbox
    rows = {row.service: row for row in await outbox_snapshot(settings)}

    # then the publisher shows both pending rows, one unroutable, with its error
    assert set(rows) == {s.name for s in services()}
    backlog = rows[publisher].backlog
    assert backlog is not None
    assert (backlog.pending, backlog.failing, backlog.unroutable) == (2, 1, 1)
    assert backlog.last_error == UNROUTABLE
    # and services without a database yet are named as such, without creating one
    assert rows[idle].backlog is None and rows[idle].problem == "no database yet"
    assert not (tmp_path / f"{idle}.db").exists()
    # and the rendered table makes the publisher an error row
    table = render_outboxes(list(rows.values()))
    styles = dict(
        zip([r.service for r in rows.values()], [r.style for r in table.rows], strict=True)
    )
    assert styles[publisher] == "bold red"
    console = Console(record=True, width=200)
    console.print(table)
    assert "inventory.commands" in console.export_text()
