"""Payments: captures and refunds card payments through a card provider, once per order."""
