"""The block parser for runs of plain FETCH lines, against the stdlib's per-line rule.

``fetch_run`` takes whole runs of ``* n FETCH data`` lines with a few C-level passes. Whatever
it takes must be exactly what the stdlib stores line by line (its ``Untagged_response``
pattern, ``data + b" " + data2``), and it must stop at a line end; lines it cannot vouch for
(bare CR or LF, a second `` FETCH `` in the data, a possible literal) are left to the
line-by-line path.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailwire._imap import response

# The stdlib's pattern for an untagged response with a number (imaplib.Untagged_response).
STDLIB_UNTAGGED = re.compile(rb"\* (?P<data>\d+) (?P<type>[A-Z-]+)( (?P<data2>.*))?")

_PIECES = st.sampled_from(
    [b"(UID 5)", b" FETCH ", b"FETCH", b"\r", b"\n", b"\r\n", b"* ", b"}", b"{3}", b"x", b" ",
     b"(FLAGS (\\Seen))", b"* 7 FETCH "]
)  # fmt: skip
_DATA = st.lists(_PIECES, min_size=1, max_size=6).map(b"".join)
_LINE = st.one_of(
    st.builds(lambda n, d: b"* %d FETCH %s\r\n" % (n, d), st.integers(1, 99999), _DATA),
    st.builds(lambda n: b"* %d EXPUNGE\r\n" % n, st.integers(1, 99)),
    st.just(b"A1 OK done\r\n"),
)


def stdlib_value(line: bytes) -> bytes:
    match = STDLIB_UNTAGGED.fullmatch(line)
    assert match is not None and match.group("type") == b"FETCH", line
    data2 = match.group("data2")
    assert data2 and not data2.endswith(b"}"), line  # else a literal would follow
    return match.group("data") + b" " + data2


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=40), st.integers(0, 30))
@example([b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (A FETCH B)\r\n"], 0)
@example([b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (A\rB)\r\n"], 0)
@example([b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (A\nB)\r\n"], 0)
def test_fetch_run_takes_what_the_stdlib_stores(lines: list[bytes], cut: int) -> None:
    data = b"".join(lines)
    buf = bytearray(b"junk" + data)
    end = len(buf) - min(cut, len(data))  # sometimes cut the last line short
    values, stop = response.fetch_run(buf, memoryview(buf), 4, end)
    if stop == 4:
        assert values == []
        return
    taken = bytes(buf[4:stop])
    assert taken.endswith(b"\r\n")
    # The lines taken, as the stdlib reads them: up to each LF, CRLF stripped.
    received = taken.split(b"\n")
    assert received.pop() == b""
    assert all(line.endswith(b"\r") for line in received)
    assert values == [stdlib_value(line[:-1]) for line in received]
