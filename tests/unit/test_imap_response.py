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


def _reply_run(data: bytes, done: bytes = b"A1 OK ") -> tuple[list[object], int, object]:
    buf = bytearray(b"junk" + data + b"stale bytes after the end")
    values, stop, line = response.reply_run(
        buf, memoryview(buf), 4, 4 + len(data), done, 10_000, 1_000_000
    )
    return values, stop - 4, line


def test_reply_run_takes_a_whole_run_of_literal_responses_and_the_tagged_ok() -> None:
    data = (
        b"* 1 FETCH (RFC822 {3}\r\nabc)\r\n"
        b"* 2 FETCH (UID 9 BODY[] {0}\r\n FLAGS (\\Seen))\r\n"
        b"* 3 FETCH (RFC822 {2}\r\n\r\n)\r\n"
        b"A1 OK FETCH done\r\n"
    )
    values, stop, line = _reply_run(data)
    assert values == [
        (b"1 (RFC822 {3}", b"abc"), b")",
        (b"2 (UID 9 BODY[] {0}", b""), b" FLAGS (\\Seen))",
        (b"3 (RFC822 {2}", b"\r\n"), b")",
    ]  # fmt: skip
    assert (stop, line) == (len(data), b"A1 OK FETCH done")


@given(st.sampled_from([b"", b"A1 OK ", b"A1 OK [READ-WRITE] done\r\n", b"A1 NO x\r\n",
                        b"A2 OK done\r\n", b"A1 OK done", b"* 4 EXISTS\r\n"]))  # fmt: skip
def test_reply_run_leaves_what_is_not_a_plain_ok_of_the_tag(after: bytes) -> None:
    head = b"* 1 FETCH (RFC822 {3}\r\nabc)\r\n"
    values, stop, line = _reply_run(head + after)
    assert values == [(b"1 (RFC822 {3}", b"abc"), b")"]
    assert (stop, line) == (len(head), None)


def _single(data: bytes, maxline: int = 10_000) -> object:
    buf = bytearray(b"junk" + data + b"\r\nA1 OK stale bytes after the end\r\n")
    reply = response.single_literal_reply(
        buf, memoryview(buf), 4, 4 + len(data), b"A1 OK ", maxline, 1_000_000
    )
    if reply is None:
        return None
    values, stop, line = reply
    return values, stop - 4, line


@given(st.sampled_from([b")", b"\r", b" FLAGS (\\Seen))", b"", b"}", b"\n)", b"x}", b"\r\r)"]),
       st.sampled_from([b"A1 OK done\r\n", b"A1 OK \r\n", b"A1 OK [X] y\r\n", b"A1 OK a\rb\r\n",
                        b"A1 OK done", b"A2 OK done\r\n", b"* 2 FETCH (RFC822 {0}\r\n)\r\n",
                        b"A1 NO x\r\n", b""]),
       st.binary(max_size=12), st.integers(0, 80), st.sampled_from([10_000, 30, 12]))  # fmt: skip
@example(b")", b"A1 OK done\r\n", b"abc", 80, 10_000)
def test_single_literal_reply_is_reply_run_or_nothing(
    trailer: bytes, after: bytes, literal: bytes, cut: int, maxline: int
) -> None:
    """The shortcut for a one-message fetch gives exactly what reply_run gives for the same
    bytes, or leaves them to it: never a different answer, whatever the trailer, the line
    after it, the literal's bytes, the limits or where the data is cut short."""
    data = b"* 7 FETCH (UID 7 RFC822 {%d}\r\n" % len(literal) + literal + trailer + b"\r\n"
    data = (data + after)[: len(data) + cut]
    single = _single(data, maxline)
    if single is not None:
        buf = bytearray(b"junk" + data + b"\r\nA1 OK stale bytes after the end\r\n")
        values, stop, line = response.reply_run(
            buf, memoryview(buf), 4, 4 + len(data), b"A1 OK ", maxline, 1_000_000
        )
        assert single == (values, stop - 4, line)
        assert line is not None and stop - 4 == len(data) - len(after) + after.find(b"\n") + 1


def test_single_literal_reply_takes_a_one_message_fetch() -> None:
    for trailer in (b")", b"\r", b" FLAGS (\\Seen))"):
        data = b"* 7 FETCH (RFC822 {3}\r\nabc" + trailer + b"\r\nA1 OK done\r\n"
        assert _single(data) == (
            [(b"7 (RFC822 {3}", b"abc"), trailer], len(data), b"A1 OK done"
        )
    shared = b")\r\n"[:1]
    assert _single(b"* 7 FETCH (RFC822 {0}\r\n)\r\nA1 OK \r\n")[0][1] is shared  # type: ignore[index]


def test_single_literal_reply_leaves_anything_else_to_reply_run() -> None:
    for data in (
        b"* 1 FETCH (RFC822 {3}\r\nabc)\r\n* 2 FETCH (RFC822 {3}\r\nabc)\r\nA1 OK done\r\n",
        b"* 1 FETCH (RFC822 {3}\r\nabc)\r\nA1 OK [READ-WRITE] done\r\n",
        b"* 1 FETCH (RFC822 {3}\r\nabc)\r\nA1 OK done",  # tagged line cut short
        b"* 1 FETCH (RFC822 {3}\r\nabc\r\nA1 OK done\r\n",  # empty trailer
        b"* 1 FETCH (BODY[1] {3}\r\nabc BODY[2] {2}\r\nxy)\r\nA1 OK done\r\n",
        b"* 1 FETCH (FLAGS ())\r\nA1 OK done\r\n",
        b"* 3 EXISTS\r\nA1 OK done\r\n",
    ):
        assert _single(data) is None, data


def test_reply_run_takes_nothing_from_a_response_it_cannot_vouch_for() -> None:
    for data in (
        b"* 1 FETCH (RFC822 {3}\r\nab",  # literal cut short
        b"* 1 FETCH (RFC822 {3}\r\nabc",  # trailer not yet received
        b"* 1 FETCH (RFC822 {3}\r\nabc\r\nA1 OK done\r\n",  # empty trailer
        b"* 1 FETCH (BODY[1] {3}\r\nabc BODY[2] {2}\r\nxy)\r\nA1 OK done\r\n",  # 2 literals
        b"* 1 FETCH (X)}\r\nA1 OK done\r\n",  # ends in "}" with no literal announced
        b"+ go ahead\r\nA1 OK done\r\n",
    ):
        assert _reply_run(data)[:2] == ([], 0), data
