"""Threaded loopback TCP server machinery shared by the embedded POP3 (and later IMAP) servers.

:class:`ThreadedServer` listens on a loopback address and runs :meth:`ThreadedServer.handle` in
one daemon thread per client. :meth:`ThreadedServer.stop` closes the listener, shuts down every
client socket (which wakes a thread blocked in ``recv``, a TLS handshake or ``sendall``) and
joins the threads within a time limit.

:class:`Connection` is what a handler talks to: a buffered line reader with a length limit,
``write``, ``read_exact`` for IMAP literals, and ``start_tls`` for STLS/STARTTLS, which discards
any plaintext the client sent after the command instead of reading it as if it came over TLS.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import ssl
import threading
import time

__all__ = ["Connection", "LineTooLongError", "ThreadedServer"]


class LineTooLongError(Exception):
    """The client sent a line longer than the connection's limit."""


class Connection:
    """One client connection, as the protocol handler sees it."""

    def __init__(self, sock: socket.socket, max_line: int) -> None:
        self.sock = sock
        #: The longest line accepted, line ending included.
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0
        self._lock = threading.Lock()
        self._aborted = False

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return isinstance(self.sock, ssl.SSLSocket)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self._buffer += data
        return True

    def readline(self) -> bytes | None:
        """Return the next line without its CRLF (or bare LF); None at end of input.

        A line longer than :attr:`max_line` raises :class:`LineTooLongError`. A last line cut
        off by the end of input is dropped.
        """
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                if end + 1 > self.max_line:
                    raise LineTooLongError
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                self._scanned = 0
                return line[:-1] if line.endswith(b"\r") else line
            self._scanned = len(self._buffer)
            if self._scanned >= self.max_line:
                raise LineTooLongError
            if not self._fill():
                return None

    def read_exact(self, size: int) -> bytes | None:
        """Return exactly *size* bytes (an IMAP literal); None if the input ends first."""
        while len(self._buffer) < size:
            if not self._fill():
                return None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._scanned = 0
        return data

    @property
    def buffered(self) -> int:
        """How many bytes were received but not read yet (pipelined commands)."""
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        """Send *data* entirely."""
        self.sock.sendall(data)

    def start_tls(self, context: ssl.SSLContext) -> int:
        """Make the connection a TLS server connection and return the count of bytes discarded.

        Plaintext received after the STLS/STARTTLS command but before the handshake is thrown
        away: it cannot be trusted as coming from the TLS peer.
        """
        discarded = len(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        with self._lock:
            if self._aborted:
                raise ConnectionAbortedError("server stopping")
            # No handshake yet: abort() must always find the socket that owns the descriptor.
            self.sock = context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False
            )
        assert isinstance(self.sock, ssl.SSLSocket)
        self.sock.do_handshake()
        return discarded

    def abort(self) -> None:
        """Shut the socket down from another thread, waking any blocked read or write."""
        with self._lock:
            self._aborted = True
            # The plain socket's shutdown: SSLSocket.shutdown would drop the TLS state under
            # the feet of the thread using it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        self.sock.close()


def _loopback_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    for family, _, _, _, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICSERV
    ):
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0])
            if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
                raise ValueError(
                    f"the embedded test server listens on loopback only, not {host!r}"
                )
            return family, (address, port)
    raise ValueError(f"cannot listen on {host!r}")


def check_server_tls(tls_context: ssl.SSLContext | None, implicit_tls: bool) -> None:
    """Refuse a client-side context, and implicit TLS without a context, at construction."""
    if tls_context is not None and (
        tls_context.protocol == ssl.PROTOCOL_TLS_CLIENT or tls_context.check_hostname
    ):
        raise ValueError(
            "tls_context must be a server-side context (PROTOCOL_TLS_SERVER, no "
            "check_hostname); clients use mailwire.testing.test_ssl_context()"
        )
    if implicit_tls and tls_context is None:
        raise ValueError("implicit_tls needs a tls_context")


class ThreadedServer:
    """A loopback TCP server running :meth:`handle` in one daemon thread per connection.

    *host* must be a loopback address or name (``127.0.0.1``, ``::1``, ``localhost``); *port* 0
    picks a free port. With *tls_context*, every connection starts with a TLS handshake (implicit
    TLS, as POP3S and IMAPS). *max_line* bounds the length of an input line and *idle_timeout*
    the seconds a client may stay silent. Subclasses implement :meth:`handle`.
    """

    #: Used in thread names.
    protocol = "tcp"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_context: ssl.SSLContext | None = None,
        max_line: int = 8192,
        idle_timeout: float = 600.0,
    ) -> None:
        self._family, self._bind_address = _loopback_address(host, port)
        self.implicit_tls_context = tls_context
        self.max_line = max_line
        self.idle_timeout = idle_timeout
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: dict[Connection, threading.Thread] = {}
        self._stopping = threading.Event()
        self._address: tuple[str, int] | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on (the port is known once started)."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    @property
    def host(self) -> str:
        """The listening IP address (``127.0.0.1`` or ``::1``)."""
        return self.address[0]

    @property
    def port(self) -> int:
        """The listening port."""
        return self.address[1]

    @property
    def running(self) -> bool:
        """Whether the server accepts connections."""
        return self._accept_thread is not None and not self._stopping.is_set()

    def start(self) -> None:
        """Bind, listen and start accepting connections in a background thread."""
        if self._accept_thread is not None:
            raise RuntimeError("the server was started already")
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self._bind_address)
            listener.listen(64)
            listener.setblocking(False)  # select() says when; a vanished client cannot block us
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        sockname = listener.getsockname()
        self._address = (str(sockname[0]), int(sockname[1]))
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            name=f"mailwire-{self.protocol}-accept-{self.port}",
            daemon=True,
        )
        self._accept_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, disconnect every client and join all threads (within *timeout*).

        Calling it again, or on a server never started, does nothing.
        """
        if self._accept_thread is None or self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        assert self._wake_w is not None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            connection.abort()
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle(self, connection: Connection) -> None:
        """Serve one client; runs in the connection's own thread. Subclasses implement it."""
        raise NotImplementedError

    # -- internals ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._wake_r is not None
        listener = self._listener
        # selectors, not select.select: a busy test process can have descriptors past 1024.
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                events = selector.select()
                if self._stopping.is_set():
                    return
                if any(key.fileobj is listener for key, _ in events):
                    self._accept(listener)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return  # the client gave up already, or we are out of descriptors for a moment
        sock.settimeout(self.idle_timeout)
        connection = Connection(sock, self.max_line)
        thread = threading.Thread(
            target=self._serve,
            args=(connection,),
            name=f"mailwire-{self.protocol}-{self.port}-client",
            daemon=True,
        )
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            self._connections[connection] = thread
        thread.start()

    def _serve(self, connection: Connection) -> None:
        try:
            if self.implicit_tls_context is not None:
                connection.start_tls(self.implicit_tls_context)
            self.handle(connection)
        except OSError:
            pass  # the client went away, timed out, failed TLS, or the server is stopping
        except Exception:
            if not self._stopping.is_set():
                raise  # a server bug: let threading.excepthook report it
        finally:
            connection.close()
            with self._lock:
                self._connections.pop(connection, None)
