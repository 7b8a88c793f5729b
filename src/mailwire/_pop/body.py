"""Sans-IO parsing of POP3 multi-line responses (RFC 1939 section 3).

The results are exactly those of the stdlib reading the same bytes line by line: each line is
stripped of CRLF, of a lone LF, or (for the CR...LF shape some servers send) of the leading CR
and the LF; a line beginning with ``..`` loses one dot; ``octets`` counts every received line with
its terminator, less one per removed dot; the response ends at the first line that is ``.``.

The common case (every line ends in CRLF) is handled a block at a time with ``bytes`` methods
implemented in C; any block with another line shape goes through the line-by-line rules.
"""

from __future__ import annotations

from .._errors import LimitExceeded, LineTooLong

__all__ = ["DotBody", "strip_line"]


def strip_line(raw: bytes) -> bytes:
    """One received line (with its LF) without its terminator, as the stdlib strips it."""
    if raw[-2:] == b"\r\n":
        return raw[:-2]
    if raw[:1] == b"\r":
        return raw[1:-1]
    return raw[:-1]


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

    def feed(self, block: bytes) -> int:
        """Take ``block`` (whole lines, each ending in LF); return how many bytes were used.

        Bytes after the terminating ``.`` line are not used: they belong to the next response.
        """
        if block.startswith(b".\r\n"):
            end = 0
        else:
            found = block.find(b"\n.\r\n")
            end = len(block) if found < 0 else found + 1
        crlf = block.count(b"\r\n", 0, end)
        if crlf == block.count(b"\n", 0, end) and crlf == block.count(b"\r", 0, end):
            used = self._feed_crlf(block, end)
        else:
            used = self._feed_lines(block)
        self.received += used
        if self.received > self.maxtotal:
            raise LimitExceeded("response", self.maxtotal)
        return used

    def _feed_crlf(self, block: bytes, end: int) -> int:
        # Every line in block[:end] ends in CRLF and no other CR occurs, so the only
        # terminator possible is the ".\r\n" line found by the caller.
        body = block if end == len(block) else block[:end]
        if body:
            unstuffed = body.replace(b"\n..", b"\n.") if b"\n.." in body else body
            first_stuffed = body.startswith(b"..")
            lines = unstuffed.split(b"\r\n")
            lines.pop()  # what follows the final CRLF
            if first_stuffed:
                lines[0] = lines[0][1:]
            # The longest received line is at most one dot and CRLF longer than its result;
            # only then is the exact check, line by line, needed.
            if max(map(len, lines)) + 3 > self.maxline:
                return self._feed_lines(block)
            self.lines.extend(lines)
            self.octets += len(unstuffed) - first_stuffed
        if end < len(block):
            self.done = True
            return end + 3
        return end

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
