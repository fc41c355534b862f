"""The inventory worker loads PostgreSQL's dialect only on PostgreSQL."""

from __future__ import annotations

from tests.support.imports import loaded_after


def test_inventory_does_not_load_postgresqls_dialect_at_import() -> None:
    assert loaded_after("workers.inventory.bootstrap", "sqlalchemy.dialects.postgresql") == []
