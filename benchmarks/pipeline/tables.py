"""A step's database: one row per pipeline that went through the step."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime, utcnow


class StepRecord(SQLModel, table=True):
    """One pipeline's pass through this step."""

    __tablename__ = "pipeline_step"

    pipeline_id: UUID = Field(primary_key=True)
    step: str = Field(max_length=40)
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, default=utcnow))


PIPELINE_TABLES = (StepRecord,)
