"""The payments service declares itself: its queue, what it consumes and sends."""

from __future__ import annotations

from contracts.payments import (
    CapturePayment,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from workers.runtime.declaration import Service

SERVICE = Service(
    name="payments",
    group="payments",
    description="captures and refunds payments through the card provider",
    consumes=(CapturePayment, RefundPayment),
    sends=(PaymentCaptured, PaymentDeclined, PaymentRefunded),
    bootstrap="workers.payments.bootstrap:bootstrap",
    verify="workers.payments.checks:verify",
    settings="workers.payments.settings:PaymentsSettings",
)
