"""Prices and totals from the catalog, and the rules of a cart's life."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

MAX_QUANTITY = 1000
MAX_LINES = 50


class CartStatus(StrEnum):
    OPEN = "OPEN"
    CHECKED_OUT = "CHECKED_OUT"
    ABANDONED = "ABANDONED"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price_cents: int


@cache
def catalog(path: Path) -> dict[str, Product]:
    """The products on sale, by SKU (the same catalog the inventory service stocks)."""
    entries = json.loads(path.read_text())
    return {e["sku"]: Product(e["sku"], e["name"], int(e["unit_price_cents"])) for e in entries}
