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

from .args import QUOTED

# typing costs about 1 MiB at start-up; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = [
    "HUGE_SIZE",
    "SIZE_DIGITS",
    "Continuation",
    "Literal",
    "Response_code",
    "Untagged_response",
    "Untagged_status",
    "fetch_run",
    "fetch_wanted",
    "literal_size",
    "open_parens",
    "reply_run",
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

#: Where a run of plain FETCH lines ends: the first line boundary not followed by
#: ``* n FETCH`` and at least one byte of data (or the end of the text searched).
#: About the most a call of :func:`fetch_run` takes.
RUN_BLOCK = 64 * 1024
_RUN_END = re.compile(rb"\r\n(?!\* [0-9]+ FETCH [^\r\n])")
_RUN_START = re.compile(rb"\* [0-9]+ FETCH [^\r\n]")

#: CPython's shared one-byte ``bytes`` objects, which a one-byte slice returns (as the stdlib's
#: ``line[:-2]`` does for a ``)`` trailer); ``bytes((i,))`` would make new ones.
_ALL_BYTES = bytes(range(256))
_BYTES = [_ALL_BYTES[i : i + 1] for i in range(256)]
#: Literal sizes longer than this many digits are left to :func:`literal_size`.
SIZE_DIGITS = 18
#: What :func:`literal_size` returns for a size of more than ``SIZE_DIGITS`` significant
#: digits: a lower bound, far over any literal limit.
HUGE_SIZE: int = 10**SIZE_DIGITS
#: ``* n FETCH (... {size}`` followed by CRLF: a FETCH response whose line announces a literal.
_LITERAL_HEAD = re.compile(
    rb"\* ([0-9]+) FETCH ([^\r\n]*\{([0-9]{1,%d})\})\r\n" % SIZE_DIGITS
)


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
    if len(digits) > SIZE_DIGITS:
        # int() refuses more than 4300 digits (3.11+); leading zeros change nothing, and a
        # size that is still this long is over any limit.
        digits = digits.lstrip(b"0") or b"0"
        if len(digits) > SIZE_DIGITS:
            return HUGE_SIZE
    return int(digits)


def open_parens(segments: list[bytes]) -> int:
    """How many parentheses the text of a response leaves open (quoted strings ignored):
    a blank line after a literal is noise only while this is positive."""
    depth = 0
    for segment in segments:
        text = QUOTED.sub(b"", segment)
        depth += text.count(b"(") - text.count(b")")
    return depth


def fetch_run(
    buf: bytes | bytearray, view: memoryview, start: int, end: int
) -> tuple[list[bytes], int]:
    """Stored values of the plain FETCH lines at ``buf[start:end]`` (``view`` is a memoryview
    of ``buf``), and where they end.

    A plain FETCH line ``* n FETCH data`` is stored as ``n + b" " + data``. Only lines the
    stdlib would store exactly so are taken: complete (CRLF), no other LF, data not
    empty and not ending in ``}`` (a literal may follow). The work is done with a few C-level
    passes over the block instead of per line; anything unusual returns nothing taken, and the
    line-by-line path decides. At most about ``RUN_BLOCK`` bytes are taken per call, so the
    copies made on the way stay small.
    """
    if _RUN_START.match(buf, start, end) is None:
        return [], start
    first = buf.find(b"\r\n", start, end)
    if first < 0 or buf[first - 1] == 0x7D:  # "}": the first line announces a literal
        return [], start
    last = buf.rfind(b"\r\n", first, max(first + 2, min(end, start + RUN_BLOCK)))
    boundary = _RUN_END.search(buf, start, last + 2)
    stop = (boundary.start() if boundary is not None else last) + 2
    brace = buf.find(b"}\r\n", start, stop)
    if brace >= 0:
        # That line may announce a literal: the run ends before it.
        stop = buf.rfind(b"\r\n", start, brace) + 2
        if stop < start + 2:
            return [], start
    # Without the first "* " and the last CRLF. _RUN_END guarantees that every CRLF in between
    # is followed by "* n FETCH ", so splitting at "\r\n* " cuts exactly at line ends.
    block = view[start + 2 : stop - 2].tobytes()
    breaks = block.count(b"\n")
    # Every line has one " FETCH " right after its number: drop them all at once.
    text = block.replace(b" FETCH ", b" ")
    removed = len(block) - len(text)
    del block
    values = text.split(b"\r\n* ")
    del text
    # As many LFs (each in a CRLF) and " FETCH "s as lines: no bare LF, which would end a line
    # early, and no " FETCH " inside the data. A bare CR stays in its line, as in the stdlib's.
    if len(values) != breaks + 1 or removed != 6 * len(values):
        return [], start
    return values, stop


def fetch_wanted(buf: bytes | bytearray, start: int, end: int) -> int:
    """How many bytes the FETCH response at ``buf[start:end]`` needs in all when it is cut
    short by the end of what was received (so a block path may receive more rather than
    fall back to reading it line by line), or 0."""
    if buf.find(b"\r\n", start, end) < 0:
        return end - start + 1  # not even one whole line yet
    head = _LITERAL_HEAD.match(buf, start, end)
    if head is None:
        return 0
    stop = head.end() + int(head.group(3))
    if stop >= end or buf.find(b"\r\n", stop, end) < 0:
        return stop - start + 3
    return 0


def _literal_response(
    buf: bytes | bytearray,
    view: memoryview,
    head: re.Match[bytes],
    start: int,
    end: int,
    maxline: int,
    maxliteral: int,
) -> Optional[tuple[tuple[bytes, bytes], bytes, int]]:
    """The FETCH response at ``buf[start:end]`` whose first line ``head`` matched
    (``_LITERAL_HEAD``), when it is complete: its literal, stored as ``(header, literal)``, its
    trailer and where it ends. None for anything the line-by-line path must decide: an
    incomplete response, a trailer that is empty or announces another literal, a line or a
    literal over its limit."""
    number, data, announced = head.group(1, 2, 3)
    size = int(announced)
    body = head.end()
    after = body + size
    if size > maxliteral or body - start > maxline or after + 3 > end:
        return None
    if buf[after + 1] == 13 and buf[after + 2] == 10:  # a one-byte trailer, as ")" mostly is
        byte = buf[after]
        if byte == 0x0A or byte == 0x7D:  # "\n" or "}"
            return None
        trailer = _BYTES[byte]  # the stdlib's slice gives CPython's shared object
        stop = after + 3
    else:
        crlf = buf.find(b"\r\n", after, end)
        if crlf <= after or crlf + 2 - after > maxline:
            return None
        trailer = view[after:crlf].tobytes()
        if 10 in trailer or trailer[-1:] == b"}":  # LF
            return None
        stop = crlf + 2
    return (number + b" " + data, view[body:after].tobytes()), trailer, stop


def _done_line(
    buf: bytes | bytearray, view: memoryview, start: int, end: int, done: bytes, maxline: int
) -> Optional[tuple[bytes, int]]:
    """The line at ``buf[start:end]`` without CRLF, and where it ends, when it is complete and
    starts with ``done`` with no response code (which must also be stored as an untagged
    response); None otherwise."""
    text = start + len(done)
    if not buf.startswith(done, start, end) or (text < end and buf[text] == 0x5B):  # "["
        return None
    newline = buf.find(b"\n", text - 1, end)
    if newline < 0 or newline - start >= maxline or buf[newline - 1] != 13:
        return None
    return view[start : newline - 1].tobytes(), newline + 1


def reply_run(
    buf: bytes | bytearray,
    view: memoryview,
    start: int,
    end: int,
    done: bytes,
    maxline: int,
    maxliteral: int,
) -> tuple[list[Any], int, Optional[bytes]]:
    """What a block reader takes from the front of ``buf[start:end]`` (``view`` a memoryview
    of ``buf``): ``(values, stop, line)``.

    ``values`` are the stored values of a run of FETCH responses (plain lines as
    :func:`fetch_run` takes them, or responses carrying one literal each, whichever the first
    line calls for) and ``line`` the line after them (see :func:`_done_line`), or None.
    ``stop`` is where what was taken ends; ``stop == start`` when nothing was.
    """
    values: list[Any] = []
    match = _LITERAL_HEAD.match
    head = match(buf, start, end)
    if head is not None or buf.startswith(b"* ", start):
        if head is not None:
            # A literal follows the first line: a run of such responses, each stored as
            # (header, literal) then its trailer.
            append = values.append
            stop = start
            while head is not None:
                taken = _literal_response(buf, view, head, stop, end, maxline, maxliteral)
                if taken is None:
                    break
                literal, trailer, stop = taken
                append(literal)
                append(trailer)
                # Most often the tagged reply follows: spare the pattern its failing match.
                head = match(buf, stop, end) if stop < end and buf[stop] == 0x2A else None
        else:
            values, stop = fetch_run(buf, view, start, end)
            if values and stop - start > maxline and max(map(len, values)) + 10 > maxline:
                values = []  # a line may be over the limit: the line-by-line path decides
        if not values:
            return values, start, None
        start = stop
    line = _done_line(buf, view, start, end, done, maxline)
    if line is None:
        return values, start, None
    return values, line[1], line[0]


def single_literal_reply(
    buf: bytes | bytearray,
    view: memoryview,
    start: int,
    end: int,
    done: bytes,
    maxline: int,
    maxliteral: int,
) -> Optional[tuple[list[Any], int, bytes]]:
    """:func:`reply_run`'s result when ``buf[start:end]`` begins with exactly one FETCH
    response carrying one literal, followed by the complete ``done`` line; None for
    anything else (then :func:`reply_run` decides).

    The common reply to fetching one message, taken with the fewest steps: a single
    message's fetch spends most of its time outside the parsing, and the less code it runs
    the less it has to bring back into the CPU's caches after waiting for the server.
    """
    head = _LITERAL_HEAD.match(buf, start, end)
    if head is None:
        return None
    taken = _literal_response(buf, view, head, start, end, maxline, maxliteral)
    if taken is None:
        return None
    literal, trailer, stop = taken
    line = _done_line(buf, view, stop, end, done, maxline)
    if line is None:
        return None
    return [literal, trailer], line[1], line[0]
