"""Tests that belong to one service each: `tests/services/<name>/`."""
