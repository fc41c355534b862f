"""The payments worker gets httpx without httpx's command line client (rich, pygments)."""

from __future__ import annotations

from tests.support.imports import loaded_after


def test_payments_imports_httpx_without_its_command_line_client() -> None:
    assert loaded_after("workers.payments.bootstrap", "rich", "pygments", "httpx._main") == []
