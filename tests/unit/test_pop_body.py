"""DotBody, the block-wise parser of dot-terminated POP3 bodies, against the stdlib's own
line-by-line algorithm.

The oracle is not a re-statement of the rules: it runs the stdlib's ``POP3._getlongresp`` over
the very same bytes (from an ``io.BytesIO``), with the stdlib's ``_MAXLINE`` patched to the limit
under test. mailwire must produce the same lines, the same octet count, consume exactly the same
number of bytes (whatever follows the terminator belongs to the next response), or fail the same
way: the stdlib's ``error_proto('line too long')`` is :class:`LineTooLong`, its
``error_proto('-ERR EOF')`` is :class:`ConnectionClosed` (or, fed directly, a body that is never
done).

Each input is parsed three ways: all complete lines in one :meth:`DotBody.feed` (and one chunk
through a real :class:`Reader`), one byte per receive through the Reader, and in random splits
through the Reader with a small, growing buffer.
"""

from __future__ import annotations

import io
import poplib as std_poplib
from dataclasses import dataclass
from typing import Optional, Union
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailwire import transport
from mailwire._errors import ConnectionClosed, LimitExceeded, LineTooLong
from mailwire._pop.body import DotBody, lines_fit, strip_line
from mailwire.transport import Reader

OK_LINE = b"+OK\r\n"  # short enough for the smallest maxline tested
UNLIMITED = 1 << 40

PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_oracle_is_the_real_stdlib() -> None:
    assert not getattr(std_poplib, "__mailwire__", False)
    assert std_poplib.POP3.__module__ == "poplib"


# -- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    lines: tuple[bytes, ...]
    octets: int
    consumed: int  # bytes of the input used, the +OK line included


@dataclass(frozen=True)
class Failed:
    kind: str  # "line too long" | "eof" | "too large"


Outcome = Union[Parsed, Failed]


def oracle(data: bytes, maxline: int) -> Outcome:
    """What the stdlib's ``_getlongresp`` makes of ``data`` (an +OK line, then the body)."""
    pop = object.__new__(std_poplib.POP3)
    pop.file = io.BytesIO(data)
    pop._debugging = 0
    with mock.patch.object(std_poplib, "_MAXLINE", maxline):
        try:
            resp, lines, octets = pop._getlongresp()
        except std_poplib.error_proto as exc:
            message = exc.args[0]
            if message == "line too long":
                return Failed("line too long")
            assert message == "-ERR EOF", message
            return Failed("eof")
    assert resp == OK_LINE[:-2]
    return Parsed(tuple(lines), octets, pop.file.tell())


class ScriptedSource:
    """A Reader source that serves ``chunks`` one per receive, then EOF."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = [c for c in chunks if c]
        self.receives = 0

    def timeout(self) -> Optional[float]:
        return None

    def unread(self) -> int:
        return sum(map(len, self.chunks))

    def receive(self, view: memoryview) -> int:
        return self.recv_into(view, None)

    def recv_into(self, view: memoryview, remaining: Optional[float]) -> int:
        self.receives += 1
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        n = min(len(view), len(chunk))
        view[:n] = chunk[:n]
        if n < len(chunk):
            self.chunks.insert(0, chunk[n:])
        return n


def through_reader(
    data: bytes,
    maxline: int,
    chunks: list[bytes],
    bufsize: int,
    maxtotal: int = UNLIMITED,
    most: int = transport.PEEK_SIZE,
) -> Outcome:
    """mailwire's fast path: ``readline`` for the +OK line, then ``peek_lines``/``feed``
    (``most`` caps the bytes each peek hands out)."""
    assert b"".join(chunks) == data
    source = ScriptedSource(chunks)
    reader = Reader(source, bufsize=bufsize)
    first = reader.readline(maxline + 1)
    assert first == OK_LINE
    body = DotBody(maxline, maxtotal)
    deadline = reader.deadline(transport.PROGRESS_QUANTUM)
    try:
        while not body.done:
            reader.consume(body.feed(reader.peek_lines(maxline, deadline, most)))
    except LineTooLong:
        return Failed("line too long")
    except ConnectionClosed:
        return Failed("eof")
    except LimitExceeded:
        return Failed("too large")
    consumed = len(data) - reader.buffered() - source.unread()
    return Parsed(tuple(body.lines), body.octets, consumed)


def fed_whole(data: bytes, maxline: int, maxtotal: int = UNLIMITED) -> Outcome:
    """Every complete line after the +OK line in one ``feed``.

    A body that is not done afterwards ended without its terminator; as with the stdlib's
    ``readline(maxline + 1)``, a trailing partial line longer than ``maxline`` is too long,
    otherwise it is EOF.
    """
    body_start = len(OK_LINE)
    last_lf = data.rfind(b"\n")
    block = data[body_start : last_lf + 1] if last_lf >= body_start else b""
    body = DotBody(maxline, maxtotal)
    try:
        used = body.feed(block) if block else 0
    except LineTooLong:
        return Failed("line too long")
    except LimitExceeded:
        return Failed("too large")
    if not body.done:
        assert used == len(block)
        tail = len(data) - body_start - len(block)
        return Failed("line too long" if tail > maxline else "eof")
    return Parsed(tuple(body.lines), body.octets, body_start + used)


def fed_line_by_line(data: bytes, maxline: int) -> Outcome:
    """The same, one complete line per ``feed``."""
    body = DotBody(maxline, UNLIMITED)
    pos = len(OK_LINE)
    try:
        while not body.done:
            stop = data.find(b"\n", pos) + 1
            if not stop:
                tail = len(data) - pos
                return Failed("line too long" if tail > maxline else "eof")
            used = body.feed(data[pos:stop])
            assert used == stop - pos
            pos += used
    except LineTooLong:
        return Failed("line too long")
    return Parsed(tuple(body.lines), body.octets, pos)


# -- generated bodies --------------------------------------------------------------------------

CONTENT = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x"))
DOTS = st.sampled_from([b"", b"", b".", b"..", b"...", b". "])
ENDINGS = st.sampled_from(["crlf", "crlf", "crlf", "lf", "cr-lf", "crcrlf"])
TERMINATORS = st.sampled_from([b".\r\n", b".\r\n", b".\r\n", b".\n", b"\r.\n"])


def shape(dots: bytes, content: bytes, ending: str) -> bytes:
    text = dots + content
    if ending == "crlf":
        return text + b"\r\n"
    if ending == "lf":
        return text + b"\n"
    if ending == "cr-lf":
        return b"\r" + text + b"\n"
    return text + b"\r\r\n"


@st.composite
def lines_near_limit(draw: st.DrawFn, maxline: int) -> bytes:
    """A CRLF line of exactly maxline-1, maxline or maxline+1 bytes, possibly dot-stuffed."""
    size = maxline + draw(st.sampled_from([-1, 0, 1]))
    dots = draw(st.sampled_from([b"", b".."]))
    return dots + b"x" * max(0, size - 2 - len(dots)) + b"\r\n"


@st.composite
def pop_bodies(draw: st.DrawFn, crlf_only: bool = False) -> tuple[bytes, int]:
    """(+OK line and body bytes, maxline)."""
    # 130 and 2048 are large enough for DotBody's window check (maxline // 2 >= 64).
    maxline = draw(st.sampled_from([8, 16, 32, 130, 2048]))
    content = CONTENT.map(lambda b: b.replace(b"\r", b"y")) if crlf_only else CONTENT
    plain_line = st.builds(shape, DOTS, content, st.just("crlf") if crlf_only else ENDINGS)
    line = st.one_of(plain_line, plain_line, plain_line, lines_near_limit(maxline))
    lines = draw(st.lists(line, max_size=12))
    ending = draw(st.sampled_from(["terminated", "terminated", "terminated", "eof", "long-tail"]))
    if ending == "terminated":
        terminator = b".\r\n" if crlf_only else draw(TERMINATORS)
        junk = draw(st.binary(max_size=24) | st.sampled_from([b"+OK next\r\n", b".\r\n"]))
        tail = terminator + junk
    elif ending == "eof":
        tail = b""  # complete lines, then the connection closes: no terminator
    else:
        # A partial line already too long. (Exactly maxline bytes then EOF is a known bug,
        # tested separately below.)
        tail = b"z" * (maxline + draw(st.integers(1, 3)))
    return OK_LINE + b"".join(lines) + tail, maxline


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=8))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def one_byte_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# -- properties --------------------------------------------------------------------------------


def check_all_ways(
    data: bytes, maxline: int, split: list[bytes], bufsize: int, most: int = 7
) -> Outcome:
    expected = oracle(data, maxline)
    assert fed_whole(data, maxline) == expected
    assert fed_line_by_line(data, maxline) == expected
    assert through_reader(data, maxline, [data], transport.BLOCK_SIZE) == expected
    assert through_reader(data, maxline, one_byte_chunks(data), bufsize) == expected
    assert through_reader(data, maxline, split, bufsize) == expected
    assert through_reader(data, maxline, split, bufsize, most=most) == expected
    return expected


MOSTS = st.sampled_from([1, 7, 64, transport.PEEK_SIZE])


@PROPERTY
@given(st.data(), pop_bodies(), st.sampled_from([8, 16, 64, 4096]), MOSTS)
@example(None, (OK_LINE + b"..\r\n.\r\n", 2048), 8, 1)
@example(None, (OK_LINE + b".\r\n.\r\n", 2048), 8, 1)
@example(None, (OK_LINE + b"a\r\n\r.\n+OK\r\n", 2048), 8, 1)
@example(None, (OK_LINE + b"a\r\n\r.\r\n.\r\n", 2048), 8, 1)
@example(None, (OK_LINE + b"a\n.\r\n", 2048), 8, 1)
@example(None, (OK_LINE + b"\r\n\r\n..x\r\n.\n", 16), 8, 1)
def test_dotbody_equals_stdlib(
    data: st.DataObject, body: tuple[bytes, int], bufsize: int, most: int
) -> None:
    raw, maxline = body
    split = [raw] if data is None else data.draw(splits(raw))
    check_all_ways(raw, maxline, split, bufsize, most)


@PROPERTY
@given(st.data(), pop_bodies(crlf_only=True), st.sampled_from([8, 64, 4096]), MOSTS)
def test_dotbody_crlf_fast_path_equals_stdlib(
    data: st.DataObject, body: tuple[bytes, int], bufsize: int, most: int
) -> None:
    raw, maxline = body
    check_all_ways(raw, maxline, data.draw(splits(raw)), bufsize, most)


@PROPERTY
@given(st.data(), pop_bodies(crlf_only=True), st.integers(-5, 5))
def test_maxtotal(data: st.DataObject, body: tuple[bytes, int], delta: int) -> None:
    raw, maxline = body
    expected = oracle(raw, maxline)
    if not isinstance(expected, Parsed):
        return
    body_size = expected.consumed - len(OK_LINE)  # the terminator line included
    maxtotal = max(0, body_size + delta)
    want: Outcome = expected if body_size <= maxtotal else Failed("too large")
    assert fed_whole(raw, maxline, maxtotal) == want
    assert through_reader(raw, maxline, data.draw(splits(raw)), 16, maxtotal) == want
    assert through_reader(raw, maxline, one_byte_chunks(raw), 8, maxtotal) == want


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"") + b"\n"))
def test_strip_line_equals_stdlib_getline(raw: bytes) -> None:
    pop = object.__new__(std_poplib.POP3)
    pop.file = io.BytesIO(raw)
    pop._debugging = 0
    line, octets = pop._getline()
    assert strip_line(raw) == line
    assert octets == len(raw)


# -- hand-picked cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "lines", "octets"),
    [
        (b".\r\n", [], 0),
        (b"a\r\nb\r\n.\r\n", [b"a", b"b"], 6),
        (b"..\r\n.\r\n", [b"."], 3),
        (b"...x\r\n", None, None),  # unterminated: EOF
        (b"..a\r\n..b\r\n.\r\n", [b".a", b".b"], 8),
        (b"\r\n\r\n.\r\n", [b"", b""], 4),
        (b"a\nb\r\n\rc\n.\n", [b"a", b"b", b"c"], 8),
        (b"\r.\r\n.\r\n", [b"\r."], 4),  # CR . CRLF is not a terminator
        (b"x\r\n\r.\njunk", [b"x"], 3),  # CR . LF is one (stdlib strips the leading CR)
        (b"a\r\r\n.\r\n", [b"a\r"], 4),
        (b".a\r\n.\r\n", [b".a"], 4),  # a single leading dot is kept
    ],
)
def test_examples(body: bytes, lines: Optional[list[bytes]], octets: Optional[int]) -> None:
    data = OK_LINE + body
    expected = check_all_ways(data, 2048, one_byte_chunks(data), 8)
    if lines is None:
        assert expected == Failed("eof")
    else:
        assert isinstance(expected, Parsed)
        assert list(expected.lines) == lines
        assert expected.octets == octets


@pytest.mark.parametrize("size", [15, 16, 17])
@pytest.mark.parametrize("stuffed", [False, True])
def test_line_at_the_limit(size: int, stuffed: bool) -> None:
    """A received line (terminator and stuffing dot included) may be exactly maxline bytes."""
    line = (b".." if stuffed else b"") + b"x" * (size - 2 - 2 * stuffed) + b"\r\n"
    assert len(line) == size
    data = OK_LINE + b"ok\r\n" + line + b".\r\n"
    expected = check_all_ways(data, 16, [data], 16)
    if size <= 16:
        assert isinstance(expected, Parsed)
        assert expected.lines[1] == line[1 if stuffed else 0 : -2]
    else:
        assert expected == Failed("line too long")


def test_junk_after_terminator_is_left_for_the_next_response() -> None:
    junk = b"+OK 2 200\r\n" + b"y" * 5000
    data = OK_LINE + b"line\r\n.\r\n" + junk
    expected = check_all_ways(data, 2048, one_byte_chunks(data), 64)
    assert isinstance(expected, Parsed)
    assert expected.consumed == len(data) - len(junk)


def test_large_crlf_body_through_the_fast_path() -> None:
    lines = [b"..dot %d" % i if i % 7 == 0 else b"line %d" % i for i in range(20000)]
    data = OK_LINE + b"\r\n".join(lines) + b"\r\n.\r\n+OK next\r\n"
    expected = oracle(data, 2048)
    assert isinstance(expected, Parsed)
    assert (
        through_reader(
            data,
            2048,
            [data[i : i + 4096] for i in range(0, len(data), 4096)],
            transport.BLOCK_SIZE,
        )
        == expected
    )
    assert fed_whole(data, 2048) == expected


def test_one_long_line_falls_back_to_exact_checks() -> None:
    # The fast path's length shortcut (+3) must not accept a line one byte over the limit.
    data = OK_LINE + b"short\r\n" + b"x" * 15 + b"\r\n.\r\n"  # 17 bytes received
    assert oracle(data, 16) == Failed("line too long")
    assert fed_whole(data, 16) == Failed("line too long")


def test_maxtotal_exact_boundary() -> None:
    body = b"abc\r\n.\r\n"
    assert fed_whole(OK_LINE + body, 2048, len(body)) == oracle(OK_LINE + body, 2048)
    assert fed_whole(OK_LINE + body, 2048, len(body) - 1) == Failed("too large")


def test_truncated_terminator_is_a_deviation() -> None:
    """pop-eof-mid-line at the parser level: the stdlib takes a final ``.x`` cut off by EOF
    for the terminator (it strips the last byte, assuming LF); mailwire sees EOF."""
    for tail in (b".x", b".\r", b"\r.x"):
        data = OK_LINE + b"a\r\n" + tail
        assert oracle(data, 2048) == Parsed((b"a",), 3, len(data))
        assert through_reader(data, 2048, [data], 64) == Failed("eof")
        assert through_reader(data, 2048, one_byte_chunks(data), 8) == Failed("eof")


def test_partial_line_of_exactly_maxline_then_eof() -> None:
    data = OK_LINE + b"a\r\n" + b"z" * 8
    assert oracle(data, 8) == Failed("eof")
    assert fed_whole(data, 8) == Failed("eof")  # the harness models the stdlib
    assert through_reader(data, 8, [data], 64) == Failed("eof")


@pytest.mark.parametrize("maxline", [128, 131, 2048])
@pytest.mark.parametrize("after", [b"", b"z\r\n"])
@pytest.mark.parametrize("over", [0, 1])
def test_line_length_checked_at_every_offset(maxline: int, after: bytes, over: int) -> None:
    """A line of maxline or maxline + 1 bytes at every alignment within the block, before the
    end of the body or right at it: DotBody's block-wise length check never misses one."""
    long_line = b"L" * (maxline + over - 2) + b"\r\n"
    step = max(1, maxline // 97)
    for offset in range(0, maxline + 2, step):
        prefix = b"p" * max(0, offset - 1) + b"\n" if offset else b""
        data = OK_LINE + prefix + long_line + after + b".\r\n"
        expected = oracle(data, maxline)
        assert expected == (Failed("line too long") if over else expected), offset
        assert fed_whole(data, maxline) == expected, offset


@given(
    lines=st.lists(st.integers(min_value=0, max_value=40), max_size=30),
    maxline=st.integers(min_value=-1, max_value=45),
)
@example(lines=[9, 0, 9], maxline=10)  # a line exactly at the limit, LF included
@example(lines=[10], maxline=10)  # one byte over
def test_lines_fit_equals_measuring_every_line(lines: list[int], maxline: int) -> None:
    block = b"".join(b"x" * n + b"\n" for n in lines)
    expected = all(n + 1 <= maxline for n in lines)
    assert lines_fit(block + b"tail without LF", 0, len(block), maxline) is expected
    assert lines_fit(b"x\n" + block, 2, len(block) + 2, maxline) is expected
