"""Shipping: books a carrier for a paid order, once, unless the order was cancelled first."""
