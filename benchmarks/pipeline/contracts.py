"""The pipeline's wire contracts: one command per step, and the event the last step publishes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import StringConstraints

from contracts.base import Command, Event, Message

# Stands for a real message's fields: bodies about the size of Warren's (90 to 260 bytes).
Payload = Annotated[str, StringConstraints(max_length=200)]
PAYLOAD = "x" * 96


class RunStep1(Command):
    """Do the pipeline's first step."""

    NAME = "pipeline.RunStep1"
    VERSION = 1

    pipeline_id: UUID
    payload: Payload


class RunStep2(Command):
    """Do the pipeline's second step."""

    NAME = "pipeline.RunStep2"
    VERSION = 1

    pipeline_id: UUID
    payload: Payload


class RunStep3(Command):
    """Do the pipeline's third step."""

    NAME = "pipeline.RunStep3"
    VERSION = 1

    pipeline_id: UUID
    payload: Payload


class RunStep4(Command):
    """Do the pipeline's fourth and last step."""

    NAME = "pipeline.RunStep4"
    VERSION = 1

    pipeline_id: UUID
    payload: Payload


class PipelineFinished(Event):
    """Every step of one pipeline is done."""

    NAME = "pipeline.PipelineFinished"
    VERSION = 1

    pipeline_id: UUID
    payload: Payload


STEPS: tuple[type[Message], ...] = (RunStep1, RunStep2, RunStep3, RunStep4)
# What handling each step sends on.
FOLLOWS: dict[type[Message], type[Message]] = {
    RunStep1: RunStep2,
    RunStep2: RunStep3,
    RunStep3: RunStep4,
    RunStep4: PipelineFinished,
}
CONTRACTS: tuple[type[Message], ...] = (*STEPS, PipelineFinished)
