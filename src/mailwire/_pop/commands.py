"""Sans-IO helpers for building POP3 commands and reading single-line replies."""

from __future__ import annotations

import binascii
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

__all__ = [
    "TIMESTAMP",
    "apop_digest",
    "check_command",
    "decode_challenge",
    "encode_response",
    "parse_capa",
    "parse_stat",
]

#: The APOP timestamp in a greeting (RFC 1939 section 7); the stdlib exposes the same pattern
#: as ``POP3.timestamp``.
TIMESTAMP = re.compile(rb"\+OK.[^<]*(<.*>)")


class BadReply(ValueError):
    """A reply that does not have the shape its command requires."""


def check_command(line: Union[str, bytes]) -> None:
    """Refuse a command line that carries CR, LF or NUL (command injection)."""
    # Three memchr-speed membership tests beat a regex search on a short line; bytes are
    # tested by value (a bytes needle would first be tried as an int).
    if isinstance(line, str):
        bad = "\r" in line or "\n" in line or "\0" in line
    else:
        bad = 13 in line or 10 in line or 0 in line
    if bad:
        raise ValueError("POP3 command lines must not contain CR, LF or NUL characters")


def apop_digest(
    welcome: bytes, secret: bytes, timestamp: re.Pattern[bytes] = TIMESTAMP
) -> Optional[str]:
    """The APOP digest for ``secret``, or None when ``timestamp`` (whose group 1 is the
    timestamp) does not match the greeting."""
    match = timestamp.match(welcome)
    if not match:
        return None
    import hashlib  # only APOP needs it, and it is costly to import

    return hashlib.md5(match.group(1) + secret).hexdigest()


def parse_stat(reply: bytes) -> tuple[int, int]:
    """``+OK count size`` as two integers (extra words are allowed by RFC 1939)."""
    words = reply.split()
    if len(words) < 3:
        raise BadReply("Invalid STAT response format")
    try:
        return int(words[1]), int(words[2])
    except ValueError:
        raise BadReply("Invalid STAT response data: non-numeric values") from None


def parse_capa(lines: list[bytes]) -> dict[str, list[str]]:
    """CAPA lines as ``{name: [arguments]}``; blank lines carry nothing and are skipped."""
    caps: dict[str, list[str]] = {}
    for line in lines:
        try:
            words = line.decode("ascii").split()
        except UnicodeDecodeError:
            raise BadReply("CAPA response is not ASCII") from None
        if words:
            caps[words[0]] = words[1:]
    return caps


def decode_challenge(reply: bytes) -> bytes:
    """The SASL challenge carried by a ``+ base64`` continuation (RFC 5034)."""
    import base64  # SASL is rare: do not load it with the module

    data = reply[1:].lstrip(b" ")
    if not data:
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        # Some servers drop the padding; accept what decodes once it is restored.
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except binascii.Error:
            raise BadReply("AUTH challenge is not valid base64") from None


def encode_response(response: bytes, initial: bool = False) -> str:
    """A SASL response in base64; an empty *initial* response is ``=`` (RFC 5034 section 4),
    an empty response to a challenge is an empty line."""
    encoded = binascii.b2a_base64(response, newline=False).decode("ascii")
    return encoded or ("=" if initial else "")
