"""The base of every wire contract: an immutable, versioned pydantic model."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Address",
    "Cents",
    "Command",
    "Currency",
    "Event",
    "Lines",
    "Message",
    "OrderId",
    "OrderLine",
    "Part",
    "PricedLine",
    "PricedLines",
    "ShortText",
    "Sku",
]


class Message(BaseModel):
    """A command or event body; its identity is `(NAME, VERSION)`, never the Python path."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    NAME: ClassVar[str]
    VERSION: ClassVar[int]

    @classmethod
    def type_name(cls) -> str:
        """The AMQP `type` property, e.g. `orders.PlaceOrder.v1`."""
        return f"{cls.NAME}.v{cls.VERSION}"


class Command(Message):
    """An imperative request, sent to the command exchange of the context that owns it."""


class Event(Message):
    """A fact in the past tense, published on the event exchange of the context that owns it."""


class Part(BaseModel):
    """A value object nested inside a message."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


OrderId = UUID
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class OrderLine(Part):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)]


class PricedLine(Part):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)]
    unit_price_cents: Cents


class Address(Part):
    name: ShortText
    line1: ShortText
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


Lines = Annotated[list[OrderLine], Field(min_length=1, max_length=50)]
PricedLines = Annotated[list[PricedLine], Field(min_length=1, max_length=50)]
