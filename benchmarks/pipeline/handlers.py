"""The one handler of every step: record the step, send the next message through the outbox."""

from __future__ import annotations

from typing import Any

from benchmarks.pipeline.contracts import FOLLOWS
from benchmarks.pipeline.tables import StepRecord
from contracts.envelope import Envelope
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork


async def record_step(envelope: Envelope[Any], uow: UnitOfWork) -> None:
    """One row in this step's database and the next message, in one transaction."""
    hop = envelope.message
    uow.session.add(StepRecord(pipeline_id=hop.pipeline_id, step=hop.NAME, recorded_at=utcnow()))
    following = FOLLOWS[type(hop)].model_validate(
        {"pipeline_id": hop.pipeline_id, "payload": hop.payload}
    )
    uow.publish(envelope.caused(following))
