"""The orders service: the saga's process manager (docs/architecture.md, "The order saga")."""
