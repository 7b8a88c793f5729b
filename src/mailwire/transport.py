"""Everything in mailwire that performs I/O: connecting, TLS, STARTTLS, subprocess streams, and
the buffered reader both protocols read from.

The protocol modules and the sans-IO parsers never touch ``socket``, ``ssl``, ``select`` or
``subprocess`` themselves; they call the functions here. That keeps the hardening rules (line
limits, deadlines, the STARTTLS plaintext guard) in one place.

The :class:`Reader` is file-like (``readline``, ``read``, ``close``) so that it can stand where
the stdlib keeps ``sock.makefile('rb')``; its extra methods (:meth:`Reader.peek_lines`,
:meth:`Reader.read_bounded`) serve the fast paths.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
import time

from ._compat import find_spec
from ._errors import ConnectionClosed, LimitExceeded, LineTooLong, PlaintextInjection

# typing, subprocess and selectors are imported only where needed: a mail script that only
# fetches should not pay for them in start-up time and memory.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl as _ssl_mod
    from typing import IO, Any, Callable, Optional, Protocol, Union


def _ssl_present() -> bool:
    # ssl is loaded on first use: importing it maps OpenSSL and costs about 6 MiB, more than
    # all of mailwire, which a plaintext or subprocess connection never needs.
    if sys.modules.get("ssl") is not None:
        return True
    present = "_ssl" in sys.builtin_module_names or find_spec("_ssl") is not None
    return present and find_spec("ssl") is not None


#: Whether this Python can speak TLS (without loading ``ssl`` to find out).
HAVE_SSL = _ssl_present()

__all__ = [
    "BLOCK_SIZE",
    "HAVE_SSL",
    "PROGRESS_QUANTUM",
    "VERIFY_BY_DEFAULT",
    "Deadline",
    "PipeSource",
    "ProcessStream",
    "Reader",
    "SocketSource",
    "SocketTimeout",
    "Source",
    "Timeout",
    "connect",
    "default_context",
    "legacy_context",
    "make_reader",
    "shutdown_and_close",
    "start_tls",
    "wrap_tls",
]

#: Largest size of the reader's receive buffer. Large blocks keep the number of system calls
#: and Python-level iterations low on bulk transfers: on a bulk FETCH of 10 KiB messages,
#: 512 KiB took 20 % less CPU than 128 KiB (1 MiB gained little more). A connection that
#: has made a bulk transfer keeps a buffer of this size.
BLOCK_SIZE = 512 * 1024

#: Size the receive buffer starts at; it doubles (up to BLOCK_SIZE) only while receives keep
#: filling it, so a connection that exchanges small responses stays small.
INITIAL_BUFFER = 16 * 1024

#: Most bytes handed out at once by :meth:`Reader.peek_lines`: large enough that per-block
#: costs vanish, small enough that the copies made while splitting a block stay in cache and
#: add little to peak memory.
PEEK_SIZE = 64 * 1024

#: A large literal's buffer starts at most this big (or this many times what is already
#: buffered) and is replaced by one at most LITERAL_GROWTH times what has arrived whenever it
#: fills: memory follows what the server sends, never the size it announces.
FIRST_LITERAL_STEP = 64 * 1024
LITERAL_GROWTH = 16

#: A literal buffer at least this big has its pages faulted in ahead of the receives, at most
#: PREFAULT_STEP bytes past what has arrived (Linux only; see _prefault).
PREFAULT_BUFFER = 1024 * 1024
PREFAULT_STEP = 8 * 1024 * 1024
_PAGE = 4096
_MADV_POPULATE_WRITE = 23  # Linux 5.14+, the same number on every architecture

#: On a bulk read, each timeout window must deliver this many bytes (or finish the read), so a
#: slow but working link keeps going while a trickling peer is cut off.
PROGRESS_QUANTUM = 64 * 1024

#: When ``None`` (the default) the ``MAILWIRE_VERIFY_TLS`` environment variable decides whether
#: contexts mailwire creates for you verify certificates; ``True``/``False`` override it. The
#: stdlib does not verify, and the drop-in promise keeps that default.
VERIFY_BY_DEFAULT: Optional[bool] = None

_GLOBAL_DEFAULT_TIMEOUT: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]

_monotonic = time.monotonic

if sys.version_info >= (3, 10):
    #: The exception a read raises when its time is up: ``socket.timeout``, which is
    #: ``TimeoutError`` from 3.10 on.
    Timeout = socket.timeout
else:

    class Timeout(socket.timeout, TimeoutError):  # type: ignore[no-redef]
        """A read's time is up. On 3.9 ``socket.timeout`` is not a ``TimeoutError``; this is
        both, so ``except socket.timeout`` and ``except TimeoutError`` both catch it."""


#: Every timeout a read can raise, ours or a plain socket's (an overridden ``read`` may use
#: the socket directly): the base class to catch.
SocketTimeout = socket.timeout


def _timed_out() -> socket.timeout:
    return Timeout("timed out")


class Deadline:
    """The time left to finish one read.

    Without a quantum the whole read must finish within ``timeout``. With one, the window starts
    again whenever ``quantum`` bytes have arrived in it.
    """

    __slots__ = ("expires", "got", "quantum", "timeout")

    def __init__(self, timeout: Optional[float], quantum: int = 0) -> None:
        # A zero timeout is a non-blocking socket (setblocking(False), as imapclient's and
        # imap_tools' IDLE loops use): there is no wait to bound, and a receive with nothing
        # to read raises BlockingIOError, leaving what was buffered in place.
        if timeout == 0:
            timeout = None
        self.timeout = timeout
        self.quantum = quantum
        self.got = 0
        self.expires = None if timeout is None else _monotonic() + timeout

    def remaining(self) -> Optional[float]:
        if self.expires is None:
            return None
        left = self.expires - _monotonic()
        if left <= 0:
            raise _timed_out()
        return left

    def progress(self, count: int) -> None:
        if self.quantum and self.timeout is not None:
            self.got += count
            if self.got >= self.quantum:
                self.got = 0
                self.expires = _monotonic() + self.timeout


def _readable(fileobj: Any, timeout: float) -> bool:
    # selectors, not select.select(): the latter fails for descriptors above FD_SETSIZE.
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(fileobj, selectors.EVENT_READ)
        return bool(selector.select(timeout))


if TYPE_CHECKING:

    class Source(Protocol):
        """Where a :class:`Reader` gets its bytes from."""

        def recv_into(self, view: memoryview, remaining: Optional[float]) -> int:
            """Receive into ``view``, waiting at most ``remaining`` seconds (None: the
            source's own timeout); 0 at EOF."""

        def receive(self, view: memoryview) -> int:
            """``recv_into(view, None)``."""

        def timeout(self) -> Optional[float]:
            """The source's timeout: None waits for ever, 0 never waits."""


class SocketSource:
    """Receives from a (possibly TLS) socket, honouring a per-read time budget."""

    __slots__ = ("receive", "sock", "timeout")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # The socket's own methods: on the per-reply path a Python wrapper is a frame more.
        #: The socket's timeout, as sock.gettimeout() says now.
        self.timeout: Callable[[], Optional[float]] = sock.gettimeout
        #: Receive with no time budget beyond the socket's own (see Source).
        self.receive: Callable[[memoryview], int] = sock.recv_into

    def recv_into(self, view: memoryview, remaining: Optional[float]) -> int:
        sock = self.sock
        try:
            if remaining is None:
                return sock.recv_into(view)
            configured = sock.gettimeout()
            if configured is not None and configured <= remaining:
                return sock.recv_into(view)
            # Only shorten the socket's own timeout, and put it back: callers read
            # sock.gettimeout() and expect the value they set.
            sock.settimeout(remaining)
            try:
                return sock.recv_into(view)
            finally:
                sock.settimeout(configured)
        except socket.timeout as exc:
            if Timeout is socket.timeout:
                raise
            raise Timeout(*exc.args) from None


class PipeSource:
    """Receives from a pipe (a subprocess's stdout), with an optional timeout."""

    __slots__ = ("_timeout", "fd")

    def __init__(self, fd: int, timeout: Optional[float] = None) -> None:
        self.fd = fd
        self._timeout = timeout

    def timeout(self) -> Optional[float]:
        return self._timeout

    def receive(self, view: memoryview) -> int:
        return self.recv_into(view, None)

    def recv_into(self, view: memoryview, remaining: Optional[float]) -> int:
        if remaining is None:
            remaining = self._timeout
        if remaining is not None and not _readable(self.fd, remaining):
            raise _timed_out()
        return os.readv(self.fd, [view])


_madvise: Any = None  # resolved on first use: (ctypes, madvise), or False


def _find_madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        madvise = ctypes.CDLL(None).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
    except Exception:  # no ctypes, no libffi, no such symbol: prefaulting is optional
        return False
    return ctypes, madvise


def _prefault(view: memoryview) -> bool:
    """Fault in the pages of ``view`` (part of a buffer not yet written to) with one
    ``madvise(MADV_POPULATE_WRITE)``, so that the receives into it do not take one page fault
    per 4 KiB: on a 100 MiB literal that cut the client's CPU time by 10-20 %. The pages
    read as zeros either way, so the contents cannot change. Returns False, and is never
    tried again, where that is not available (not Linux, no ctypes, a kernel before 5.14) or
    fails."""
    global _madvise
    if _madvise is None:
        _madvise = _find_madvise()
    if not _madvise:
        return False
    ctypes, madvise = _madvise
    start = ctypes.addressof(ctypes.c_char.from_buffer(view))
    first = -(-start // _PAGE) * _PAGE
    last = (start + len(view)) // _PAGE * _PAGE
    if last > first and madvise(first, last - first, _MADV_POPULATE_WRITE) != 0:
        # EINVAL before Linux 5.14, EPERM under a seccomp filter...: not worth asking again.
        _madvise = False
        return False
    return True


def _literal_buffer_size(size: int, most: int) -> int:
    """The largest of ``size``, ``size / LITERAL_GROWTH``, ``size / LITERAL_GROWTH**2``...
    that is at most ``most`` (the smallest of them when none is)."""
    cap = size
    while cap > most and cap > FIRST_LITERAL_STEP:
        cap = -(-cap // LITERAL_GROWTH)
    return cap


class Reader:
    """A buffered, file-like reader with line limits and whole-line deadlines.

    Data is received straight into one reusable buffer; lines are cut out of it with
    ``bytearray.find``. Memory grows only with bytes actually received.
    """

    def __init__(self, source: Source, bufsize: int = BLOCK_SIZE) -> None:
        self._source = source
        self._max = max(bufsize, 64)
        self._buf = bytearray(min(INITIAL_BUFFER, self._max))
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._eof = False
        self._filled = False
        #: The time budget of the bytes waiting at the front of the buffer (see
        #: _front_deadline); dropped whenever bytes are handed out.
        self._front: Optional[Deadline] = None
        self.closed = False

    # -- file-like surface ------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def deadline(self, quantum: int = 0) -> Optional[Deadline]:
        """A fresh time budget based on the source's current timeout; None when there is no
        time limit (what every method that takes a deadline accepts)."""
        timeout = self._source.timeout()
        return Deadline(timeout, quantum) if timeout else None

    def buffered(self) -> int:
        """How many received bytes have not been handed out yet."""
        return self._end - self._start

    @property
    def at_eof(self) -> bool:
        return self._eof and self._start == self._end

    def readline(self, limit: Optional[int] = -1) -> bytes:
        """Return one line including its LF, at most ``limit`` bytes, or less at EOF.

        The socket's timeout bounds the wait for the whole line, not each receive.
        """
        if limit is None:
            limit = -1
        start = self._start
        found = self._buf.find(b"\n", start, self._end)
        if found >= 0 and (limit < 0 or found - start < limit):
            self._start = found + 1
            self._front = None
            return self._view[start : found + 1].tobytes()
        return self._readline_slow(limit)

    def _readline_slow(self, limit: int) -> bytes:
        deadline: Optional[Deadline] = None
        scanned = 0  # bytes after _start already known to hold no LF
        while True:
            start, end = self._start, self._end
            found = self._buf.find(b"\n", start + scanned, end)
            if found >= 0:
                stop = found + 1
                if 0 <= limit < stop - start:
                    stop = start + limit
                return self._take(stop)
            if 0 <= limit <= end - start:
                return self._take(start + limit)
            scanned = end - start
            if deadline is None:
                deadline = self._front_deadline()
            if not self._fill(deadline):
                return self._take(self._end)

    def read(self, size: Optional[int] = -1) -> bytes:
        """Return ``size`` bytes (fewer only at EOF); everything up to EOF when negative."""
        if size is None or size < 0:
            return self._read_to_eof()
        start = self._start
        if size <= self._end - start:
            self._start = start + size
            self._front = None
            return self._view[start : start + size].tobytes()
        return self.read_bounded(size, size)

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def __iter__(self) -> Reader:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # -- bulk reads -------------------------------------------------------------------------

    def read_bounded(self, size: int, limit: int, what: str = "literal") -> bytes:
        """Read exactly ``size`` bytes (fewer only at EOF) if ``size <= limit``.

        The bytes are received straight into the buffer of the ``bytes`` object that is
        returned. That buffer is never more than :data:`LITERAL_GROWTH` times what has
        arrived: when it fills, a bigger one takes over (one copy of what is in it). The sizes
        are chosen backwards from ``size`` so that the copies add up to about a fifteenth of
        it, and the last buffer is exactly ``size`` long.
        """
        if size > limit:
            raise LimitExceeded(what, limit)
        self._front = None
        start = self._start
        have = min(self._end - start, size)
        if have == size:
            self._start = start + size
            return self._view[start : start + size].tobytes()
        # A BytesIO made from a bytes object it alone references exports that object's own
        # memory, writable, and getvalue() returns that very object: receiving into it makes
        # the result without a final copy. bytes(n) comes from calloc, so the pages the peer
        # never fills are never touched (no zero-filling pass in Python). The bytes already
        # buffered are the first "buffer": the loop replaces it before receiving anything.
        target = self._view[start : start + have]
        self._start = self._end = 0  # the reader's buffer is not written to until we return
        # A literal that filled the last receive is no reason to grow the buffer for the
        # lines after it. Growing then put a long-lived block above the freed literals in
        # the heap, where it kept their memory from being reused (decisions/literal-buffers).
        self._filled = False
        out = io.BytesIO()
        filled = cap = ready = have  # pages are faulted in ahead of the receives up to `ready`
        try:
            deadline = Deadline(self._source.timeout(), PROGRESS_QUANTUM)
            recv_into = self._source.recv_into
            while filled < size:
                if filled == cap:
                    cap = _literal_buffer_size(
                        size, max(FIRST_LITERAL_STEP, LITERAL_GROWTH * filled)
                    )
                    bigger = io.BytesIO(bytes(cap))
                    view = bigger.getbuffer()
                    view[:filled] = target[:filled]
                    target.release()
                    out, target = bigger, view
                    ready = filled if cap >= PREFAULT_BUFFER else cap
                if ready < cap and ready - filled < PREFAULT_STEP // 2:
                    end = min(cap, filled + PREFAULT_STEP)
                    begin = max(ready, filled)
                    ready = end if _prefault(target[begin:end]) else cap
                got = recv_into(target[filled:cap], deadline.remaining())
                if not got:
                    self._eof = True
                    break
                deadline.progress(got)
                filled += got
        finally:
            target.release()
        if filled < cap:
            out.truncate(filled)
        return out.getvalue()

    def _read_to_eof(self) -> bytes:
        self._front = None
        out = io.BytesIO()
        deadline = Deadline(self._source.timeout(), PROGRESS_QUANTUM)
        while True:
            if self._end > self._start:
                out.write(self._view[self._start : self._end])
                self._start = self._end
            if not self._fill(deadline):
                return out.getvalue()

    def peek_lines(
        self, maxline: int, deadline: Optional[Deadline], most: int = PEEK_SIZE
    ) -> bytes:
        """Return the complete lines buffered, up to about ``most`` bytes (receiving until
        there is one), unconsumed.

        Raises :class:`LineTooLong` when a line passes ``maxline`` bytes without its LF and
        :class:`ConnectionClosed` at EOF. Call :meth:`consume` with what was used.
        """
        scanned = 0  # bytes after _start already known to hold no LF
        while True:
            start, end = self._start, self._end
            cap = start + most
            last = -1
            if scanned < most:
                last = self._buf.rfind(b"\n", start + scanned, min(end, cap))
            if last < 0 and end > cap:
                # Past `most`, only the first LF matters; never rescan what an earlier
                # receive already showed to hold none (a long line would cost quadratic time).
                last = self._buf.find(b"\n", max(cap, start + scanned), end)
            if last >= 0:
                return self._view[start : last + 1].tobytes()
            # Like readline(maxline + 1): only a line already past the limit is too long; one
            # exactly at it may still end at EOF, which is a different error.
            if end - start > maxline:
                raise LineTooLong(maxline)
            scanned = end - start
            if not self._fill(deadline):
                raise ConnectionClosed(self._view[start:end].tobytes())

    def consume(self, count: int) -> None:
        self._start += count
        self._front = None

    def receive(self, want: int) -> int:
        """Receive once more, first making room for ``want`` bytes in all (up to the largest
        buffer size); return how many bytes arrived (0 at EOF)."""
        # Callers are block parsers in the middle of a bulk transfer: take the full buffer
        # size at once, and move the partial response to the front so the receive is large.
        pending = self._end - self._start
        if len(self._buf) < self._max:
            self._grow(self._max)
        elif self._start and len(self._buf) - self._end < max(want - pending, len(self._buf) // 2):
            self._compact()
        deadline = self._front_deadline()
        if deadline is not None and not deadline.quantum:
            # A block parser gathering a large response (a literal, up to the buffer's size)
            # is held to what read_bounded asks of a literal: 64 KiB per window, not the
            # whole response within one. A trickled line still gets no more than one window.
            deadline.quantum = PROGRESS_QUANTUM
        return self._fill(deadline)

    def pending(self) -> tuple[bytearray, memoryview, int, int]:
        """The buffer, a memoryview of it and the bounds of the bytes received but not handed
        out, after receiving once if there were none (the buffer grows only while receives
        fill it; at EOF the bounds stay empty). For block parsers that scan in place and
        follow with :meth:`consume`; neither stays valid after the next receive."""
        if self._start == self._end and not self._eof:
            self._fill(self._front_deadline() if self._source.timeout() else None)
        return self._buf, self._view, self._start, self._end

    # -- internals --------------------------------------------------------------------------

    def _front_deadline(self) -> Optional[Deadline]:
        """The deadline of the line or response being assembled at the front of the buffer.

        It starts with the first receive after bytes were last handed out and holds across
        every receive until some are handed out again, whichever method receives (a block
        parser's, then ``readline``'s): a peer trickling a response cannot restart the clock.
        None when the source has no timeout.
        """
        timeout = self._source.timeout()
        front = self._front
        if front is None or front.timeout != (timeout or None):
            front = self._front = Deadline(timeout) if timeout else None
        return front

    def _take(self, stop: int) -> bytes:
        start = self._start
        self._front = None
        self._start = stop
        return self._view[start:stop].tobytes()

    def _fill(self, deadline: Optional[Deadline]) -> int:
        """Receive once into the free space; 0 means EOF. No deadline: no time limit."""
        if self._eof:
            return 0
        start, end = self._start, self._end
        size = len(self._buf)
        if start == end:
            self._start = self._end = start = end = 0
            if self._filled and size < self._max:
                self._grow(min(size * 2, self._max))
        elif size - end < size // 4:
            pending = end - start
            if pending > size // 2:
                self._grow(size * 2)
            else:
                self._compact()
            end = self._end
        room = self._view[end:]
        if deadline is None:
            got = self._source.receive(room)
        else:
            try:
                got = self._source.recv_into(room, deadline.remaining())
            except socket.timeout:
                if deadline is self._front:
                    self._front = None  # a caller that goes on waiting (IDLE) starts afresh
                raise
            deadline.progress(got)
        self._filled = got == len(room)
        if got:
            self._end = end + got
        else:
            self._eof = True
        return got

    def _compact(self) -> None:
        """Move the pending bytes to the front of the buffer (memoryview assignment copies
        with memmove, so the overlap is safe)."""
        pending = self._end - self._start
        self._view[:pending] = self._view[self._start : self._end]
        self._start, self._end = 0, pending

    def _grow(self, size: int) -> None:
        pending = self._end - self._start
        buf = bytearray(size)
        buf[:pending] = self._view[self._start : self._end]
        self._view.release()
        self._buf = buf
        self._view = memoryview(buf)
        self._start, self._end = 0, pending


def make_reader(sock: Any) -> Any:
    """Our :class:`Reader` for a real socket; the stdlib's ``makefile('rb')`` for anything else.

    Subclasses sometimes return stand-in socket objects from ``_create_socket``; those keep
    working exactly as with the stdlib.
    """
    if isinstance(sock, socket.socket):
        return Reader(SocketSource(sock))
    return sock.makefile("rb")


def connect(
    host: str,
    port: int,
    timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
    source_address: Optional[tuple[str, int]] = None,
) -> socket.socket:
    """Open a TCP connection; ``timeout=None`` blocks, the default uses the global default."""
    return socket.create_connection((host, port), timeout, source_address)


def _env_verifies() -> bool:
    if VERIFY_BY_DEFAULT is not None:
        return VERIFY_BY_DEFAULT
    return os.environ.get("MAILWIRE_VERIFY_TLS", "").lower() in ("1", "true", "yes", "on")


def default_context(
    certfile: Optional[str] = None, keyfile: Optional[str] = None
) -> _ssl_mod.SSLContext:
    """The context used when the caller gives none.

    Like the stdlib it does not verify certificates, unless verification was switched on with
    :data:`VERIFY_BY_DEFAULT` or ``MAILWIRE_VERIFY_TLS=1``.
    """
    import ssl

    if _env_verifies():
        context = ssl.create_default_context()
        if certfile or keyfile:
            context.load_cert_chain(certfile, keyfile)  # type: ignore[arg-type]
        return context
    return ssl._create_stdlib_context(certfile=certfile, keyfile=keyfile)  # type: ignore[attr-defined, no-any-return]


def legacy_context(
    context: Any, keyfile: Optional[str], certfile: Optional[str], name: str
) -> _ssl_mod.SSLContext:
    """The context of an implicit-TLS client given the legacy ``keyfile``/``certfile`` too,
    with the stdlib's checks, warning and messages (``name`` is the context parameter's)."""
    if context is not None and keyfile is not None:
        raise ValueError("%s and keyfile arguments are mutually exclusive" % name)
    if context is not None and certfile is not None:
        raise ValueError("%s and certfile arguments are mutually exclusive" % name)
    if keyfile is not None or certfile is not None:
        import warnings

        # stacklevel 3: the line that constructed the client, as the stdlib reports it.
        warnings.warn(
            "keyfile and certfile are deprecated, use a custom %s instead" % name,
            DeprecationWarning,
            3,
        )
    if context is None:
        context = default_context(certfile=certfile, keyfile=keyfile)
    return context  # type: ignore[no-any-return]


def wrap_tls(
    sock: socket.socket, context: _ssl_mod.SSLContext, server_hostname: Optional[str]
) -> _ssl_mod.SSLSocket:
    """Wrap ``sock``; SNI and hostname checks follow the context, as in the stdlib."""
    return context.wrap_socket(sock, server_hostname=server_hostname or None)


def _pending_plaintext(sock: Any, reader: Any) -> int:
    count = reader.buffered() if isinstance(reader, Reader) else 0
    if isinstance(sock, socket.socket) and sock.fileno() >= 0:
        # A socket with a timeout waits for readability inside recv() even with MSG_DONTWAIT,
        # so ask select() first, without waiting.
        try:
            if _readable(sock, 0):
                count += len(sock.recv(1, socket.MSG_PEEK))
        except OSError:
            pass
    return count


def start_tls(
    sock: socket.socket,
    reader: Any,
    context: _ssl_mod.SSLContext,
    server_hostname: Optional[str],
) -> tuple[_ssl_mod.SSLSocket, Any]:
    """Upgrade a plaintext connection after the server agreed to STARTTLS/STLS.

    A server speaks nothing between its OK and the TLS handshake; any byte already received is
    plaintext injected by whoever is in the path, and reading it later as if it came over TLS is
    the classic STARTTLS response injection. So this refuses to go on.
    """
    pending = _pending_plaintext(sock, reader)
    if pending:
        raise PlaintextInjection(pending)
    tls_sock = wrap_tls(sock, context, server_hostname)
    return tls_sock, make_reader(tls_sock)


def shutdown_and_close(sock: Any) -> None:
    """Shut a socket down both ways and close it, tolerating a peer that already left and a
    socket that is already closed (a failed TLS handshake closes the one it wrapped)."""
    try:
        # Only a real socket is asked for its descriptor: a stand-in object returned by an
        # overridden _create_socket (a test double, say) need not have one, and the stdlib
        # never asks.
        if not isinstance(sock, socket.socket) or sock.fileno() >= 0:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        # The peer may be gone already; Windows reports that as WSAEINVAL (10022).
        if exc.errno not in (errno.ENOTCONN, errno.EBADF) and getattr(exc, "winerror", 0) != 10022:
            raise
    finally:
        sock.close()


class ProcessStream:
    """A command run through the shell, spoken to over its stdin and stdout."""

    def __init__(self, command: Union[str, list[str]], timeout: Optional[float] = None) -> None:
        import subprocess

        self.process = subprocess.Popen(
            command,
            bufsize=0,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            shell=isinstance(command, str),
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writefile: IO[bytes] = self.process.stdin
        self.readfile: IO[bytes] = self.process.stdout
        self.reader = Reader(PipeSource(self.readfile.fileno(), timeout))

    def write(self, data: bytes) -> None:
        self.writefile.write(data)
        self.writefile.flush()

    def close(self) -> None:
        self.reader.close()
        try:
            self.readfile.close()
            self.writefile.close()
        finally:
            self.process.wait()
