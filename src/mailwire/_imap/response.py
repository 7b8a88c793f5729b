"""Sans-IO reading of IMAP response lines (RFC 3501 section 7, RFC 9051 section 7).

The stdlib tries up to four regular expressions on every line. Here the first byte says which
kind of line it is (``*`` untagged, ``+`` continuation, anything else tagged), and one pattern
per kind extracts the parts. The results are the stdlib's, byte for byte: the stdlib's own
patterns are kept (the module exposes them) and the tests compare both on random input.

Runs of plain ``* n FETCH (...)`` lines, the bulk of any mailbox sync, are turned into the
stdlib's stored values a whole block at a time.
"""

from __future__ import annotations

import re
from operator import methodcaller
from typing import Optional

__all__ = [
    "FETCH_RUN",
    "Continuation",
    "Literal",
    "Response_code",
    "Untagged_response",
    "Untagged_status",
    "fetch_run_values",
    "literal_size",
    "open_parens",
    "tagged_pattern",
    "untagged_parts",
]

# The patterns the stdlib module exposes under these names; callers use them directly.
Continuation = re.compile(rb"\+( (?P<data>.*))?")
Response_code = re.compile(rb"\[(?P<type>[A-Z-]+)( (?P<data>.*))?\]")
Untagged_response = re.compile(rb"\* (?P<type>[A-Z-]+)( (?P<data>.*))?")
Untagged_status = re.compile(rb"\* (?P<data>\d+) (?P<type>[A-Z-]+)( (?P<data2>.*))?", re.ASCII)
Literal = re.compile(rb".*{(?P<size>\d+)}$", re.ASCII)
LITERAL_SOURCE = rb".*{(?P<size>\d+)}$"
UNTAGGED_STATUS_SOURCE = rb"\* (?P<data>\d+) (?P<type>[A-Z-]+)( (?P<data2>.*))?"

# Untagged_response, then Untagged_status, as one match: an atom type cannot start with a
# digit and a number cannot start with a letter, so the order of the stdlib's tries is kept.
_UNTAGGED = re.compile(
    rb"\* (?:(?P<type>[A-Z-]+)(?: (?P<data>.*))?"
    rb"|(?P<num>\d+) (?P<stype>[A-Z-]+)(?: (?P<data2>.*))?)"
)

#: One or more complete ``* n FETCH data`` lines whose data is not empty and cannot end in a
#: literal announcement: exactly the lines whose stored value is ``n + b' ' + data``.
FETCH_RUN = re.compile(rb"(?:\* [0-9]+ FETCH [^\r\n]+(?<!})\r\n)+")

_drop_fetch = methodcaller("replace", b" FETCH ", b" ", 1)


def tagged_pattern(tagpre: bytes) -> re.Pattern[bytes]:
    """The stdlib's ``tagre`` for a session's tag prefix."""
    return re.compile(rb"(?P<tag>" + tagpre + rb"\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)


def untagged_parts(line: bytes) -> Optional[tuple[str, bytes]]:
    """``(type, data)`` of an untagged line as the stdlib stores it, or None if malformed."""
    match = _UNTAGGED.match(line)
    if match is None:
        return None
    kind, data, number, status_kind, data2 = match.group(1, 2, 3, 4, 5)
    if kind is not None:
        return kind.decode("ascii"), data or b""
    if data2:
        return status_kind.decode("ascii"), number + b" " + data2
    return status_kind.decode("ascii"), number


def literal_size(data: bytes) -> Optional[int]:
    """The size announced by a trailing ``{n}``, as the stdlib's ``Literal`` pattern finds it."""
    if data[-1:] != b"}":
        return None
    brace = data.rfind(b"{")
    digits = data[brace + 1 : -1]
    if brace < 0 or not digits.isdigit():
        return None
    return int(digits)


_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')


def open_parens(segments: list[bytes]) -> int:
    """How many parentheses the text of a response leaves open (quoted strings ignored):
    a blank line after a literal is noise only while this is positive."""
    depth = 0
    for segment in segments:
        text = _QUOTED.sub(b"", segment)
        depth += text.count(b"(") - text.count(b")")
    return depth


def fetch_run_values(run: bytes) -> list[bytes]:
    """The stored values of a block matched by :data:`FETCH_RUN`, one per line."""
    values = run[2:].replace(b"\r\n* ", b"\r\n").split(b"\r\n")
    values.pop()  # after the final CRLF
    return list(map(_drop_fetch, values))
