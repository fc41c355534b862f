"""What a handler raises to tell the runtime how to treat a failure."""

from __future__ import annotations


class TransientError(Exception):
    """Worth trying again later: a timeout, a busy database, a flaky dependency."""


class PermanentError(Exception):
    """Retrying cannot help (a bug or an impossible request): dead-letter at once."""


class InfrastructureError(Exception):
    """A dependency is down (database, broker, a remote service): not this message's fault.

    The runtime pauses instead of counting a retry against the message.
    """
