"""The card provider: an HTTP service of our own, the outside world to payments (not a worker)."""
