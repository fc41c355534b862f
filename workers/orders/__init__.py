"""The orders service: the saga's process manager (DESIGN §7)."""
