"""Which carrier ships where, and what its tracking numbers look like: pure, deterministic."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class ShipmentStatus(StrEnum):
    """`cancelled` without a carrier is the tombstone of a cancel before any arrangement."""

    ARRANGED = "arranged"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Carrier:
    """A carrier and the shape of its tracking numbers: prefix, digits, suffix."""

    name: str
    prefix: str
    digits: int
    suffix: str = ""

    def tracking_number(self, order_id: UUID) -> str:
        """The tracking number of an order's parcel: the same order always gets the same one."""
        digest = hashlib.sha256(f"{self.name}:{order_id}".encode()).digest()
        serial = int.from_bytes(digest, "big") % 10**self.digits
        return f"{self.prefix}{serial:0{self.digits}d}{self.suffix}"


DHL = Carrier("DHL", prefix="JD", digits=18)
UPS = Carrier("UPS", prefix="1Z", digits=16)
USPS = Carrier("USPS", prefix="94", digits=20)
ROYAL_MAIL = Carrier("Royal Mail", prefix="RM", digits=9, suffix="GB")
COLISSIMO = Carrier("Colissimo", prefix="6A", digits=11)

CARRIER_BY_COUNTRY: dict[str, Carrier] = {
    "US": USPS,
    "CA": UPS,
    "MX": UPS,
    "GB": ROYAL_MAIL,
    "FR": COLISSIMO,
    "DE": DHL,
    "AT": DHL,
    "NL": DHL,
}
INTERNATIONAL = DHL


def choose_carrier(country: str) -> Carrier:
    """The carrier for a destination country (ISO 3166 alpha-2); DHL for everywhere else."""
    return CARRIER_BY_COUNTRY.get(country.upper(), INTERNATIONAL)
