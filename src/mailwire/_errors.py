"""Internal exceptions raised by the transport and the sans-IO parsers.

They never reach users: each protocol shell catches them at one point and turns them into the
stdlib-compatible public exception (``poplib.error_proto``, ``IMAP4.abort``, ...). Keeping them
separate lets the parsers stay independent of either protocol's public surface.
"""

from __future__ import annotations

__all__ = [
    "ConnectionClosed",
    "LimitExceeded",
    "LineTooLong",
    "PlaintextInjection",
    "ProtocolViolation",
    "TransportError",
]


class TransportError(Exception):
    """Base class of mailwire's internal errors."""


class ConnectionClosed(TransportError):
    """The peer closed the connection; ``partial`` holds an incomplete line, if any."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__("connection closed by peer")
        self.partial = partial


class LineTooLong(TransportError):
    """A line exceeded the configured limit before its terminator arrived."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"line longer than {limit} bytes")
        self.limit = limit


class LimitExceeded(TransportError):
    """A multi-line response or literal exceeded its configured size limit."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} larger than {limit} bytes")
        self.what = what
        self.limit = limit


class PlaintextInjection(TransportError):
    """Bytes arrived in plaintext after the server agreed to start TLS."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} byte(s) of plaintext received after the server agreed to start TLS "
            "(possible response injection); connection closed"
        )
        self.count = count


class ProtocolViolation(TransportError):
    """The server sent something the grammar does not allow."""
