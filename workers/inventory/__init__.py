"""The inventory bounded context: stock levels and all-or-nothing reservations per order."""
