"""Sans-IO parsing of POP3 multi-line responses (RFC 1939 section 3).

The results are exactly those of the stdlib reading the same bytes line by line: each line is
stripped of CRLF, of a lone LF, or (for the CR...LF shape some servers send) of the leading CR
and the LF; a line beginning with ``..`` loses one dot; ``octets`` counts every received line with
its terminator, less one per removed dot; the response ends at the first line that is ``.``.

Most blocks are handled without a Python loop per line. Splitting a block on ``b"\\n."`` finds
every line that starts with a dot at once: each piece after the first begins just after such a
dot, so a stuffed line has already lost its extra dot, and the terminator's piece begins with its
line end. Joining the pieces back with ``b"\\n"`` therefore unstuffs the body in one C call, and
only the few dotted lines are looked at in Python. Any block outside the simple shapes (bare CRs,
a lone dot not followed by another, a line near the length limit) goes through the line-by-line
rules instead.
"""

from __future__ import annotations

import re

from .._errors import LimitExceeded, LineTooLong

_DOT_LINE = re.compile(rb"\n\.")

__all__ = ["DotBody", "lines_fit", "strip_line"]

def strip_line(raw: bytes) -> bytes:
    """One received line (with its LF) without its terminator, as the stdlib strips it."""
    if raw[-2:] == b"\r\n":
        return raw[:-2]
    if raw[:1] == b"\r":
        return raw[1:-1]
    return raw[:-1]


def lines_fit(block: bytes, start: int, end: int, maxline: int) -> bool:
    """Whether every line in ``block[start:end]`` (which starts and ends at line boundaries)
    is at most ``maxline`` bytes long, terminator included.

    From the start of a line, the next ``maxline`` bytes hold an LF unless that line is too
    long; the last LF among them starts the next check. Each ``rfind`` steps nearly
    ``maxline`` bytes ahead, so a block costs a few calls rather than one ``len`` per line.
    """
    if maxline < 1:
        return end <= start
    rfind = block.rfind
    pos = start
    while end - pos > maxline:
        newline = rfind(b"\n", pos, pos + maxline)
        if newline < 0:
            return False
        pos = newline + 1
    return True


class DotBody:
    """Collects the lines of one dot-terminated response body fed in blocks of whole lines."""

    __slots__ = ("done", "lines", "maxline", "maxtotal", "octets", "received")

    def __init__(self, maxline: int, maxtotal: int) -> None:
        #: A received line (terminator included) longer than this raises LineTooLong.
        self.maxline = maxline
        #: The body may not exceed this many received bytes.
        self.maxtotal = maxtotal
        self.lines: list[bytes] = []
        self.octets = 0
        self.received = 0
        self.done = False

    def feed(self, block: bytes, start: int = 0) -> int:
        """Take ``block[start:]`` (whole lines, each ending in LF); return how many bytes were
        used.

        Bytes after the terminating ``.`` line are not used: they belong to the next response.
        ``start`` spares the caller a copy when the block begins with a status line: it is 0
        or just after an LF.
        """
        used = self._feed_blockwise(block, start)
        if used < 0:
            used = self._feed_lines(block[start:] if start else block)
        self.received += used
        if self.received > self.maxtotal:
            raise LimitExceeded("response", self.maxtotal)
        return used

    def _feed_blockwise(self, block: bytes, start: int) -> int:
        """The common shapes a block at a time; -1 when the line-by-line rules must decide."""
        data = block
        if start:
            scan = start - 1  # the LF that ends the status line
        elif block[:1] != b".":
            scan = 0
        else:
            # Give the first line an LF before it, as every other line has (a rare copy: the
            # block starts a body's continuation, with a dotted line).
            data = b"\n" + block
            scan, start = 0, 1
        # Every line that starts with a dot, in one regex pass (faster here than split() or
        # find() with a two-byte needle): a stuffed line loses its first dot, the first "."
        # line ends the body, any other dotted line goes to the line rules.
        cuts: list[int] = []
        term = -1
        last = len(data) - 1
        for mark in _DOT_LINE.finditer(data, scan):
            at = mark.start()
            after = data[at + 2] if at + 2 <= last else -1
            if after == 46:  # "."
                cuts.append(at + 1)
            elif after == 10 or (after == 13 and at + 3 <= last and data[at + 3] == 10):
                term = at
                break
            else:
                return -1  # a line with a single leading dot that is not the terminator
        if term >= 0:
            body_end = term + 1  # the body's last LF included
            end = term + (4 if data[term + 2] == 13 else 3)  # and the "." line
        else:
            body_end = end = len(data)
        # The limit applies to the lines as received, dots and all (as readline's does).
        if not lines_fit(data, start, body_end, self.maxline):
            return -1
        if cuts:
            pieces = []
            piece = start
            for cut in cuts:
                pieces.append(data[piece:cut])
                piece = cut + 1
            pieces.append(data[piece:body_end])
            body = b"".join(pieces)
        else:
            body = data[start:body_end]
        del data  # before splitting: keep peak memory down on large bodies
        lines = body.splitlines()
        # splitlines() also breaks at a bare CR, which the stdlib keeps inside the line. When
        # every line ends in CRLF, the lines and two bytes each add up to the body: joining
        # them costs a fraction of counting LFs here (count() goes byte by byte; join copies
        # the lines just made, still in cache). Other bodies (LF-only servers) count.
        if len(b"".join(lines)) + 2 * len(lines) != len(body) and body.count(10) != len(lines):
            return -1
        self.lines += lines
        self.octets += len(body)
        self.done = term >= 0
        return end - start

    def _feed_lines(self, block: bytes) -> int:
        maxline = self.maxline
        append = self.lines.append
        octets = 0
        pos = 0
        try:
            while pos < len(block):
                stop = block.index(b"\n", pos) + 1
                size = stop - pos
                if size > maxline:
                    raise LineTooLong(maxline)
                line = strip_line(block[pos:stop])
                pos = stop
                if line == b".":
                    self.done = True
                    break
                if line[:2] == b"..":
                    size -= 1
                    line = line[1:]
                octets += size
                append(line)
        finally:
            self.octets += octets
        return pos
