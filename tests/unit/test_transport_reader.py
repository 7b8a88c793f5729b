"""transport.Reader, Deadline, SocketSource, PipeSource, start_tls and make_reader.

The Reader is checked against ``io.BufferedReader`` over the same bytes (the object the stdlib
gets from ``sock.makefile('rb')``), fed by a scripted fake source in arbitrary chunks and by real
socket pairs. Time-dependent behaviour is tested with a fake clock where possible; the few real
timing tests assert generous bounds only.
"""

from __future__ import annotations

import io
import os
import select
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any, Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwire import transport
from mailwire._errors import ConnectionClosed, LimitExceeded, LineTooLong, PlaintextInjection
from mailwire.transport import Deadline, PipeSource, Reader, SocketSource

Chunk = Union[bytes, BaseException]


class FakeSource:
    """Serves scripted chunks, one (or part of one) per receive; an exception in the script is
    raised by that receive. Records the time budget each receive was given."""

    def __init__(
        self, chunks: list[Chunk], timeout: Optional[float] = None, clock: Any = None
    ) -> None:
        self.chunks: list[Chunk] = [c for c in chunks if not isinstance(c, bytes) or c]
        self._timeout = timeout
        self.budgets: list[Optional[float]] = []
        self.sizes: list[int] = []
        self.clock = clock

    def timeout(self) -> Optional[float]:
        return self._timeout

    def unread(self) -> int:
        return sum(len(c) for c in self.chunks if isinstance(c, bytes))

    def receive(self, view: memoryview) -> int:
        return self.recv_into(view, None)

    def recv_into(self, view: memoryview, remaining: Optional[float]) -> int:
        self.budgets.append(remaining)
        self.sizes.append(len(view))
        if not self.chunks:
            self._tick(0)
            return 0
        chunk = self.chunks.pop(0)
        if isinstance(chunk, BaseException):
            self._tick(0)
            raise chunk
        n = min(len(view), len(chunk))
        view[:n] = chunk[:n]
        if n < len(chunk):
            self.chunks.insert(0, chunk[n:])
        self._tick(n)
        return n

    def _tick(self, count: int) -> None:
        if self.clock is not None:
            self.clock.tick(count)


class FakeClock:
    """Replaces transport's monotonic clock; each receive advances it by ``step`` plus
    ``per_byte`` for every byte it delivered."""

    def __init__(self, step: float = 0.0, per_byte: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.per_byte = per_byte

    def __call__(self) -> float:
        return self.now

    def tick(self, count: int) -> None:
        self.now += self.step + self.per_byte * count


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(transport, "_monotonic", fake)
    return fake


@pytest.fixture
def socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[x:y] for x, y in zip(bounds, bounds[1:])]


# -- the BufferedReader oracle -----------------------------------------------------------------

LINE = st.binary(max_size=40) | st.binary(min_size=60, max_size=300)  # longer than small buffers
DATA = st.lists(LINE, max_size=12).map(b"\n".join) | st.binary(max_size=80)
LIMITS = st.sampled_from([-1, -5, None, 0, 1, 2, 7, 64])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("readline"), LIMITS),
        st.tuples(st.just("read"), st.sampled_from([0, 1, 3, 17, 100])),
        st.tuples(st.just("read"), st.sampled_from([-1, None])),
        st.tuples(st.just("readinto"), st.sampled_from([0, 1, 5, 50])),
    ),
    max_size=16,
)


def apply(f: Any, op: tuple[str, Any]) -> Any:
    name, arg = op
    if name == "readinto":
        target = bytearray(arg)
        count = f.readinto(target)
        return count, bytes(target[:count])
    return getattr(f, name)(arg)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA, st.lists(st.integers(0, 80), max_size=10), OPS, st.sampled_from([4, 5, 16, 4096]))
def test_reader_equals_bufferedreader(
    data: bytes, cuts: list[int], ops: list[tuple[str, Any]], bufsize: int
) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    reader = Reader(FakeSource(split_at(data, cuts)), bufsize=bufsize)
    oracle = io.BufferedReader(io.BytesIO(data), buffer_size=8)
    for op in ops:
        assert apply(reader, op) == apply(oracle, op), op
    assert reader.read() == oracle.read()
    assert reader.at_eof
    assert reader.readline() == b""


@settings(max_examples=100, deadline=None)
@given(DATA, st.lists(LIMITS, max_size=12))
def test_reader_over_socketpair_equals_bufferedreader(
    data: bytes, limits: list[Optional[int]]
) -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(data)
        b.shutdown(socket.SHUT_WR)
        a.settimeout(5)
        reader = Reader(SocketSource(a), bufsize=16)
        oracle = io.BufferedReader(io.BytesIO(data))
        for limit in limits:
            assert reader.readline(limit) == oracle.readline(limit)
        assert reader.read(-1) == oracle.read(-1)


def test_iteration_and_file_surface() -> None:
    reader = Reader(FakeSource([b"a\nb", b"\nc"]), bufsize=8)
    assert reader.readable()
    assert list(reader) == [b"a\n", b"b\n", b"c"]
    assert not reader.closed
    reader.close()
    assert reader.closed


def test_readline_at_eof_with_a_partial_line() -> None:
    reader = Reader(FakeSource([b"one\ntw", b"o"]))
    assert reader.readline() == b"one\n"
    assert reader.readline() == b"two"
    assert reader.readline() == b""
    assert reader.readline(5) == b""
    assert reader.read(3) == b""
    assert reader.at_eof


def test_readline_limit_leaves_the_rest_buffered() -> None:
    reader = Reader(FakeSource([b"abcdefgh\nrest\n"]))
    assert reader.readline(3) == b"abc"
    assert reader.buffered() == 11
    assert reader.readline(6) == b"defgh\n"
    assert reader.readline(0) == b""
    assert reader.readline() == b"rest\n"


def test_buffer_grows_for_lines_longer_than_it() -> None:
    line = b"x" * 1000 + b"\n"
    source = FakeSource([line[i : i + 7] for i in range(0, len(line), 7)] + [b"end\n"])
    reader = Reader(source, bufsize=8)
    assert reader.readline() == line
    assert reader.readline() == b"end\n"
    assert 1000 <= len(reader._buf) <= 4 * 1024


def test_literals_longer_than_the_buffer_do_not_grow_it() -> None:
    """A receive that a literal fills says nothing about the lines around it: the bytes go
    to the literal's own buffer. Growing the reader's buffer for it made a long-lived block
    land above the freed literals in the heap, which then could not be reused (3.6 MiB more
    at the peak of a connection alternating 8 MiB and 1 MiB literals)."""
    literal = b"y" * 100_000
    head = b"* 1 FETCH (BODY[] {%d}\r\n" % len(literal)
    stream = (head + literal + b")\r\n") * 3 + b"A1 OK done\r\n"
    # The server streams: every receive is filled to the brim.
    source = FakeSource([stream])
    reader = Reader(source, bufsize=64 * 1024)
    initial = len(reader._buf)
    for _ in range(3):
        assert reader.readline() == head
        assert reader.read_bounded(len(literal), 1 << 20) == literal
        assert reader.readline() == b")\r\n"
    assert reader.readline() == b"A1 OK done\r\n"
    assert len(reader._buf) == initial < 64 * 1024


def test_compaction_keeps_the_buffer_small() -> None:
    """Many short lines straddling receives: partial lines move to the front instead of the
    buffer growing."""
    data = b"".join(b"line %04d\n" % i for i in range(2000))
    source = FakeSource([data[i : i + 13] for i in range(0, len(data), 13)])
    reader = Reader(source, bufsize=64)
    lines = list(reader)
    assert b"".join(lines) == data
    assert len(reader._buf) == 64
    # Every receive but the final (EOF) one got at least a quarter of the buffer to fill.
    assert min(source.sizes[:-1]) >= 64 // 4


@pytest.mark.parametrize("bufsize", [0, 1, 2, 3])
def test_tiny_buffer(bufsize: int) -> None:
    """A buffer too small to hold a quarter of itself must still grow (bufsize < 4 used to
    pass an empty view to recv_into, whose 0 was then taken for EOF)."""
    reader = Reader(FakeSource([b"abcdefgh\n", b"xyz\n"]), bufsize=bufsize)
    assert reader.readline() == b"abcdefgh\n"
    assert reader.readline() == b"xyz\n"


def test_read_sizes() -> None:
    reader = Reader(FakeSource([b"012", b"345", b"6789"]), bufsize=4)
    assert reader.read(0) == b""
    assert reader.read(2) == b"01"
    assert reader.read(5) == b"23456"
    assert reader.read(-1) == b"789"
    assert reader.read(10) == b""


def test_readinto_memoryview_of_other_formats() -> None:
    import array

    reader = Reader(FakeSource([b"\x01\x00\x02\x00\x03"]))
    target = array.array("H", [0, 0])
    assert reader.readinto(target) == 4
    assert target.tobytes() == b"\x01\x00\x02\x00"
    assert reader.read() == b"\x03"


# -- peek_lines / consume ----------------------------------------------------------------------


def test_peek_lines_and_consume() -> None:
    reader = Reader(FakeSource([b"a\r\nb", b"c\r\nd\r\n", b"tail"]), bufsize=64)
    deadline = reader.deadline()
    assert reader.peek_lines(100, deadline) == b"a\r\n"
    assert reader.peek_lines(100, deadline) == b"a\r\n"  # not consumed
    reader.consume(3)
    assert reader.peek_lines(100, deadline) == b"bc\r\nd\r\n"
    reader.consume(4)
    assert reader.peek_lines(100, deadline) == b"d\r\n"
    reader.consume(3)
    with pytest.raises(ConnectionClosed) as info:
        reader.peek_lines(100, deadline)
    assert info.value.partial == b"tail"


def test_peek_lines_most() -> None:
    """``most`` caps a peek at the complete lines within that many bytes, or the first line."""
    reader = Reader(FakeSource([b"a\nbb\nccc\ndddddddd\ne\n"]), bufsize=64)
    deadline = reader.deadline()
    assert reader.peek_lines(100, deadline, 5) == b"a\nbb\n"
    reader.consume(5)
    assert reader.peek_lines(100, deadline, 2) == b"ccc\n"
    reader.consume(4)
    assert reader.peek_lines(100, deadline, 3) == b"dddddddd\n"
    reader.consume(9)
    assert reader.peek_lines(100, deadline) == b"e\n"




@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    st.lists(st.integers(0, 400), max_size=12),
    st.sampled_from([1, 3, 8, 64, 1 << 16]),
    st.sampled_from([16, 64, 4096]),
)
def test_peek_lines_returns_the_most_complete_lines(
    lines: list[bytes], cuts: list[int], most: int, bufsize: int
) -> None:
    """Whatever the chunking, each peek is a prefix of what is left, made of complete lines:
    every complete line buffered within ``most`` bytes, or else just the first line. A long
    partial line is scanned only once across receives, so this also checks that a rescan
    starts in the right place."""
    data = b"".join(line + b"\n" for line in lines) + b"partial"
    reader = Reader(FakeSource(split_at(data, [c % (len(data) + 1) for c in cuts])), bufsize)
    pos = 0
    while True:
        try:
            got = reader.peek_lines(1 << 20, None, most)
        except ConnectionClosed as closed:
            assert closed.partial == b"partial"
            break
        buffered = reader.buffered()
        assert got == data[pos : pos + len(got)]
        assert got.endswith(b"\n")
        if len(got) > most:
            assert got.index(b"\n") == len(got) - 1  # one line, longer than most
        else:
            assert b"\n" not in data[pos + len(got) : pos + min(buffered, most)]
        reader.consume(len(got))
        pos += len(got)
    assert pos == len(data) - len(b"partial")


def test_peek_lines_line_too_long() -> None:
    """A partial line already past the limit fails at once; one exactly at it waits, as
    readline(maxline + 1) would (a complete over-long line is the parser's to reject)."""
    reader = Reader(FakeSource([b"12345", b"678", b"9", b"never read\n"]), bufsize=4)
    with pytest.raises(LineTooLong) as info:
        reader.peek_lines(8, reader.deadline())
    assert info.value.limit == 8
    assert reader.buffered() == 9
    # A line of exactly maxline bytes, LF included, is fine.
    reader = Reader(FakeSource([b"1234567", b"\n"]), bufsize=4)
    assert reader.peek_lines(8, reader.deadline()) == b"1234567\n"


def test_peek_lines_empty_eof() -> None:
    reader = Reader(FakeSource([]))
    with pytest.raises(ConnectionClosed) as info:
        reader.peek_lines(10, reader.deadline())
    assert info.value.partial == b""


# -- bounded reads -----------------------------------------------------------------------------


def test_read_bounded_limits() -> None:
    reader = Reader(FakeSource([b"0123456789"]))
    assert reader.readline(2) == b"01"
    with pytest.raises(LimitExceeded) as info:
        reader.read_bounded(9, 8, "message")
    assert (info.value.what, info.value.limit) == ("message", 8)
    assert str(info.value) == "message larger than 8 bytes"
    assert reader.buffered() == 8  # nothing consumed
    assert reader.read_bounded(3, 3) == b"234"
    assert reader.read_bounded(100, 100) == b"56789"  # fewer only at EOF
    assert reader.read_bounded(0, 0) == b""


def test_read_bounded_default_name() -> None:
    with pytest.raises(LimitExceeded, match=r"^literal larger than 1 bytes$"):
        Reader(FakeSource([])).read_bounded(2, 1)


@pytest.mark.parametrize("how", ["read_bounded", "read"])
def test_announced_size_is_never_allocated(how: str) -> None:
    announced = 1 << 30
    sent = b"y" * 100_000
    reader = Reader(FakeSource([sent[i : i + 1000] for i in range(0, len(sent), 1000)]), 4096)
    tracemalloc.start()
    try:
        got = reader.read(announced) if how == "read" else reader.read_bounded(announced, 1 << 31)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == sent
    assert peak < 2_000_000, peak  # a few copies of what arrived at most; far below 1 GiB


def test_announced_size_over_a_socket_is_never_allocated(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    b.sendall(b"z" * 5000)
    b.shutdown(socket.SHUT_WR)
    a.settimeout(5)
    reader = Reader(SocketSource(a), 4096)
    tracemalloc.start()
    try:
        got = reader.read_bounded(1 << 30, 1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == b"z" * 5000
    assert peak < 1_000_000, peak


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=6000),
    st.integers(0, 200),
    st.lists(st.integers(1, 700), min_size=1, max_size=40),
    st.sampled_from([2, 3, 16]),
    st.booleans(),
)
def test_read_bounded_buffer_follows_arrivals(
    data: bytes, prefix: int, sizes: list[int], growth: int, cut_short: bool
) -> None:
    # Small figures so that one read passes through many buffers (each takes over with a copy).
    first = 16
    sent = data[: len(data) // 2] if cut_short else data
    prefix = min(prefix, len(sent))
    chunks: list[Chunk] = [b"x\n" + sent[:prefix]]
    at = prefix
    for size in sizes * (len(sent) // sum(sizes) + 1):
        chunks.append(sent[at : at + size])
        at += size
    source = FakeSource(chunks)
    reader = Reader(source, bufsize=4096)
    assert reader.readline() == b"x\n"  # the prefix is now buffered
    receives: list[tuple[int, int]] = []  # (room offered, bytes received)
    recv_into = source.recv_into

    def recording(view: memoryview, remaining: Optional[float]) -> int:
        got = recv_into(view, remaining)
        receives.append((len(view), got))
        return got

    source.recv_into = recording  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transport, "FIRST_LITERAL_STEP", first)
        patch.setattr(transport, "LITERAL_GROWTH", growth)
        got = reader.read_bounded(len(data), len(data))
    assert got == sent
    assert type(got) is bytes
    # Each receive is offered room that ends at most `growth` times past what had arrived.
    arrived = prefix
    for offered, count in receives:
        assert arrived + offered <= max(first, growth * arrived), (arrived, offered)
        arrived += count
    assert arrived == len(sent)


def test_literal_buffer_sizes_end_at_the_announced_size() -> None:
    size = 100 * 1024 * 1024
    caps = [transport._literal_buffer_size(size, 16 * 16 * 1024)]
    while caps[-1] < size:
        caps.append(transport._literal_buffer_size(size, 16 * caps[-1]))
    assert caps == [25600, 409600, 6553600, size]
    assert sum(caps[:-1]) < size // 15  # what the copies add up to


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_resident_memory_follows_arrivals_not_the_announcement(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    # tracemalloc sees allocations; this sees pages in use, prefaulting included.
    a, b = socketpair
    sent = os.urandom(1 << 20) * 3

    def send() -> None:
        b.sendall(sent)
        b.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    a.settimeout(10)
    reader = Reader(SocketSource(a))
    before = _rss_kib()
    got = reader.read_bounded(1 << 30, 1 << 30)
    grown = _rss_kib() - before
    sender.join()
    assert got == sent
    limit = (len(sent) + transport.PREFAULT_STEP) // 1024 + 4096
    assert grown < limit, (grown, limit)  # not 1 GiB


def test_prefault_leaves_contents_and_saves_page_faults() -> None:
    import resource

    size = 16 * 1024 * 1024
    source = b"\xff" * (size - 1)
    out = io.BytesIO(bytes(size))
    view = out.getbuffer()
    try:
        done = transport._prefault(view[1:])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        view[1:] = source
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    finally:
        view.release()
    assert out.getvalue() == b"\0" + b"\xff" * (size - 1)
    if done:  # Linux 5.14+ with ctypes; elsewhere it is a no-op, which the rest must survive
        assert faults < size // 4096 // 4, faults  # not one per page


def test_prefault_failure_stops_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    calls: list[tuple[int, int, int]] = []

    def failing(address: int, length: int, advice: int) -> int:
        calls.append((address, length, advice))
        return -1  # e.g. EINVAL from a kernel before 5.14

    monkeypatch.setattr(transport, "_madvise", (ctypes, failing))
    buffer = bytearray(3 * 4096)
    assert transport._prefault(memoryview(buffer)) is False
    assert len(calls) == 1 and calls[0][2] == 23 and calls[0][0] % 4096 == 0
    assert transport._madvise is False
    assert transport._prefault(memoryview(buffer)) is False
    assert len(calls) == 1


def test_read_bounded_without_prefault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "_madvise", False)
    monkeypatch.setattr(transport, "PREFAULT_BUFFER", 1)
    data = os.urandom(300_000)
    reader = Reader(FakeSource([data[i : i + 7000] for i in range(0, len(data), 7000)]))
    assert reader.read_bounded(len(data), len(data)) == data
    assert transport._madvise is False


# -- deadlines ---------------------------------------------------------------------------------


def test_deadline_without_timeout(clock: FakeClock) -> None:
    deadline = Deadline(None, 10)
    clock.now += 1e9
    assert deadline.remaining() is None
    deadline.progress(100)


def test_deadline_expires(clock: FakeClock) -> None:
    deadline = Deadline(2.0)
    assert deadline.remaining() == pytest.approx(2.0)
    clock.now += 1.5
    assert deadline.remaining() == pytest.approx(0.5)
    deadline.progress(10**9)  # no quantum: progress never extends the deadline
    clock.now += 0.5
    with pytest.raises(socket.timeout, match="timed out"):
        deadline.remaining()


def test_deadline_quantum_restarts_the_window(clock: FakeClock) -> None:
    deadline = Deadline(1.0, quantum=100)
    clock.now += 0.9
    deadline.progress(60)
    assert deadline.remaining() == pytest.approx(0.1)
    deadline.progress(40)  # a whole quantum arrived in this window
    assert deadline.remaining() == pytest.approx(1.0)
    clock.now += 1.0
    with pytest.raises(socket.timeout):
        deadline.remaining()


def test_readline_deadline_covers_the_whole_line(clock: FakeClock) -> None:
    """Each receive succeeds quickly, but the line as a whole takes longer than the timeout."""
    clock.step = 0.1
    source = FakeSource([b"x"] * 100 + [b"\n"], timeout=0.35, clock=clock)
    reader = Reader(source)
    with pytest.raises(socket.timeout):
        reader.readline()
    assert len(source.budgets) == 4
    budgets = [b for b in source.budgets if b is not None]
    assert budgets == sorted(budgets, reverse=True)
    assert budgets[0] == pytest.approx(0.35)
    # Bytes received so far stay buffered.
    assert reader.buffered() == 4


def test_readline_fresh_deadline_per_line(clock: FakeClock) -> None:
    clock.step = 0.1
    source = FakeSource([b"ab\n", b"cd\n", b"ef\n", b"gh\n"], timeout=0.15, clock=clock)
    reader = Reader(source)
    assert list(reader) == [b"ab\n", b"cd\n", b"ef\n", b"gh\n"]


def pending_count(reader: Reader) -> int:
    """How many bytes ``pending()`` leaves buffered (receiving once if there were none)."""
    _, _, start, end = reader.pending()
    return end - start


def test_one_deadline_spans_pending_receive_and_readline(clock: FakeClock) -> None:
    """Block parsers receive with pending()/receive() and may then leave the line to
    readline(): the bytes at the front are waited for under one deadline, whoever receives
    them."""
    clock.step = 0.1
    source = FakeSource([b"x"] * 100 + [b"\n"], timeout=0.35, clock=clock)
    reader = Reader(source, bufsize=64)
    assert pending_count(reader) == 1
    assert reader.receive(10) == 1
    with pytest.raises(socket.timeout):
        reader.readline()
    budgets = [b for b in source.budgets if b is not None]
    assert budgets[0] == pytest.approx(0.35)
    assert budgets == sorted(budgets, reverse=True)
    assert len(source.budgets) == 4


def test_handing_out_bytes_starts_a_fresh_deadline(clock: FakeClock) -> None:
    clock.step = 0.1
    source = FakeSource([b"ab\ncd", b"\n", b"ef", b"\n"], timeout=0.15, clock=clock)
    reader = Reader(source)
    assert pending_count(reader) == 5
    assert reader.readline() == b"ab\n"
    assert reader.readline() == b"cd\n"  # one receive after "ab" was handed out
    assert pending_count(reader) == 2
    reader.consume(2)
    assert pending_count(reader) == 1
    assert source.budgets == [pytest.approx(0.15)] * 4


def test_a_timeout_does_not_shorten_the_next_wait(clock: FakeClock) -> None:
    """IDLE waits again after a timeout with a partial line buffered: that wait has the whole
    timeout, not what was left of the one that ran out."""
    source = FakeSource(
        [b"* 1 EXI", socket.timeout("timed out"), b"STS\r\n"], timeout=0.5, clock=clock
    )
    reader = Reader(source)
    clock.step = 0.2
    with pytest.raises(socket.timeout):
        reader.readline()
    assert reader.readline() == b"* 1 EXISTS\r\n"
    assert source.budgets[-1] == pytest.approx(0.5)


def test_pending_without_timeout_has_no_budget() -> None:
    source = FakeSource([b"abc", b""])
    reader = Reader(source)
    assert pending_count(reader) == 3
    assert pending_count(reader) == 3  # bytes are buffered: nothing is received
    reader.consume(3)
    assert pending_count(reader) == 0
    assert pending_count(reader) == 0  # EOF is remembered
    assert source.budgets == [None, None]


def test_bulk_read_progress_quantum(clock: FakeClock) -> None:
    """A slow but working link keeps a bulk read alive; a trickle does not."""
    quantum = transport.PROGRESS_QUANTUM
    # A link delivering a quantum every 0.2 s, whatever the size of each receive: the whole
    # read takes 0.8 s, far beyond the 0.3 s timeout, yet every window makes progress.
    clock.per_byte = 0.2 / quantum
    steady = FakeSource([b"q" * quantum] * 4, timeout=0.3, clock=clock)
    assert len(Reader(steady).read_bounded(4 * quantum, 4 * quantum)) == 4 * quantum
    assert clock.now - 1000.0 == pytest.approx(0.8)
    clock.per_byte = 0.0
    clock.step = 0.2
    trickle = FakeSource([b"q"] * 10, timeout=0.3, clock=clock)
    with pytest.raises(socket.timeout):
        Reader(trickle).read_bounded(10, 10)


def test_block_receive_progress_quantum(clock: FakeClock) -> None:
    """A block parser gathering a large response with receive() is held to the same rule as
    read_bounded: each window must bring a quantum, not the whole response."""
    quantum = transport.PROGRESS_QUANTUM
    total = 4 * quantum
    clock.per_byte = 0.2 / quantum
    steady = FakeSource([b"q" * quantum] * 4, timeout=0.3, clock=clock)
    reader = Reader(steady)
    reader.pending()
    while reader.buffered() < total:
        assert reader.receive(total) > 0
    assert clock.now - 1000.0 == pytest.approx(0.8)
    clock.per_byte = 0.0
    clock.step = 0.2
    trickle = Reader(FakeSource([b"q"] * 10, timeout=0.3, clock=clock))
    trickle.pending()
    with pytest.raises(socket.timeout):
        while True:
            trickle.receive(100)


def test_source_timeout_is_propagated_and_data_kept() -> None:
    source = FakeSource([b"par", socket.timeout("timed out"), b"tial\n"], timeout=5.0)
    reader = Reader(source)
    with pytest.raises(socket.timeout):
        reader.readline()
    assert reader.buffered() == 3
    assert reader.readline() == b"partial\n"


def test_no_timeout_means_no_budget() -> None:
    source = FakeSource([b"a", b"b\n"])
    assert Reader(source).readline() == b"ab\n"
    assert source.budgets == [None, None]


class Trickler:
    """A peer thread sending one byte every ``interval`` seconds until stopped."""

    def __init__(self, sock: socket.socket, interval: float = 0.05, count: int = 100) -> None:
        self.sock = sock
        self.interval = interval
        self.count = count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for _ in range(self.count):
                self.sock.sendall(b"x")
                if self.stop.wait(self.interval):
                    return
        except OSError:
            pass

    def __enter__(self) -> Trickler:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_trickling_peer_cannot_hold_readline(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    a.settimeout(0.3)
    reader = Reader(SocketSource(a))
    with Trickler(b):
        started = time.monotonic()
        with pytest.raises(socket.timeout):
            reader.readline()
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert elapsed >= 0.25
    assert reader.buffered() > 0
    assert a.gettimeout() == 0.3  # the socket's own timeout is put back


def test_socket_timeout_longer_than_budget_is_shortened_and_restored(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    a.settimeout(10.0)
    source = SocketSource(a)
    buf = bytearray(10)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        source.recv_into(memoryview(buf), 0.05)
    assert time.monotonic() - started < 2
    assert a.gettimeout() == 10.0
    b.sendall(b"hi")
    assert source.recv_into(memoryview(buf), 5.0) == 2
    assert source.timeout() == 10.0


def test_blocking_socket_reads_without_budget(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    assert a.gettimeout() is None
    b.sendall(b"line\n")
    reader = Reader(SocketSource(a))
    assert reader.readline() == b"line\n"
    assert a.gettimeout() is None


def test_pipe_source() -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"one\ntw")
        reader = Reader(PipeSource(r, timeout=0.05))
        assert reader.readline() == b"one\n"
        with pytest.raises(socket.timeout):
            reader.readline()
        os.write(w, b"o\n")
        assert reader.readline() == b"two\n"
        os.close(w)
        w = -1
        assert reader.readline() == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


# -- make_reader, shutdown_and_close -----------------------------------------------------------


def test_make_reader(socketpair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = socketpair
    assert isinstance(transport.make_reader(a), Reader)

    class StandIn:
        def makefile(self, mode: str) -> Any:
            assert mode == "rb"
            return "the stand-in's file"

    assert transport.make_reader(StandIn()) == "the stand-in's file"


def test_shutdown_and_close_tolerates_a_gone_peer(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    b.close()
    transport.shutdown_and_close(a)
    assert a.fileno() == -1


# -- start_tls plaintext guard -----------------------------------------------------------------


def wait_readable(sock: socket.socket) -> None:
    ready, _, _ = select.select([sock], [], [], 5)
    assert ready


def test_start_tls_refuses_buffered_plaintext(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    a.settimeout(5)
    b.sendall(b"+OK Begin TLS\r\nINJECTED\r\n")
    reader = Reader(SocketSource(a))
    wait_readable(a)
    assert reader.readline() == b"+OK Begin TLS\r\n"
    assert reader.buffered() == 10
    context = transport.default_context()
    with pytest.raises(PlaintextInjection) as info:
        transport.start_tls(a, reader, context, "localhost")
    assert info.value.count == 10
    assert "10 byte(s) of plaintext" in str(info.value)
    assert a.gettimeout() == 5  # untouched, still a plain socket
    assert not hasattr(a, "cipher")


def test_start_tls_refuses_plaintext_waiting_in_the_kernel(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    a.settimeout(5)
    b.sendall(b"+OK\r\n")
    reader = Reader(SocketSource(a))
    assert reader.readline() == b"+OK\r\n"
    assert reader.buffered() == 0
    b.sendall(b"X")
    wait_readable(a)
    with pytest.raises(PlaintextInjection) as info:
        transport.start_tls(a, reader, transport.default_context(), "localhost")
    assert info.value.count == 1
    assert a.recv(10) == b"X"  # only peeked at, never consumed


def test_start_tls_checks_the_kernel_for_other_files(
    socketpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socketpair
    b.sendall(b"X")
    wait_readable(a)
    with pytest.raises(PlaintextInjection):
        transport.start_tls(a, object(), transport.default_context(), None)


def test_start_tls_with_nothing_pending_wraps(
    socketpair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = socketpair
    calls = []

    def fake_wrap(sock: socket.socket, context: Any, server_hostname: Optional[str]) -> Any:
        calls.append((sock, context, server_hostname))
        return sock

    monkeypatch.setattr(transport, "wrap_tls", fake_wrap)
    context = transport.default_context()
    sock, reader = transport.start_tls(a, Reader(SocketSource(a)), context, "mail.example")
    assert sock is a
    assert isinstance(reader, Reader)
    assert calls == [(a, context, "mail.example")]
