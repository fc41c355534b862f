"""Carts: a user's cart over HTTP, priced from the catalog; its checkout places the order."""
