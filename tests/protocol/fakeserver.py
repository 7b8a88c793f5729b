"""A scripted fake POP3 server for protocol tests.

One thread on a free loopback port accepts one connection and plays a script: a list of
``(expect, reply)`` steps. ``expect`` is a regular expression the client's next line (without its
CRLF) must match in full, or ``None`` to reply without reading (the greeting). ``reply`` is bytes
to send or an action, or a list of them:

- :class:`Pause` waits, :class:`Trickle` sends bytes one at a time with a pause between them;
- :class:`Close` closes the connection at once (in mid-reply, if the bytes before it said so);
- :class:`StartTLS` performs the server side of a TLS handshake on the connection.

Everything the client sends is recorded (:attr:`ScriptedPOP3Server.wire`, and line by line in
:attr:`ScriptedPOP3Server.lines`), including lines after the script ran out, until the client
closes. A line that does not match is recorded in :attr:`ScriptedPOP3Server.errors` and ends the
session. Every wait is bounded and :meth:`ScriptedPOP3Server.stop` joins the thread.

:class:`TLSFiles` holds the test CA, leaf certificate and key that the ``tls_files`` fixture makes,
and builds the server and client contexts from them.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

__all__ = [
    "Close",
    "Pause",
    "ScriptedPOP3Server",
    "StartServer",
    "StartTLS",
    "Step",
    "TLSFiles",
    "Trickle",
]

#: How often blocking waits look at the stop flag.
POLL = 0.02


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Trickle:
    data: bytes
    interval: float = 0.05


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class StartTLS:
    context: ssl.SSLContext
    #: The client may legitimately refuse to go on (a failed handshake is then no error).
    may_fail: bool = False


Action = Union[bytes, Pause, Trickle, Close, StartTLS]
Step = tuple[Union[str, bytes, None], Union[Action, Sequence[Action]]]


class _ClientGone(Exception):
    pass


class ScriptedPOP3Server:
    def __init__(
        self,
        script: Sequence[Step],
        *,
        tls_context: Optional[ssl.SSLContext] = None,
        timeout: float = 5.0,
    ) -> None:
        self.script = list(script)
        self.tls_context = tls_context
        self.timeout = timeout
        #: Raw bytes received from the client (plaintext and decrypted TLS alike).
        self.wire = b""
        #: Lines received, CRLF (or a lone LF) removed, with whether they came over TLS.
        self.received: list[tuple[bytes, bool]] = []
        #: Unexpected events: a line not matching the script, a timeout, a failed handshake.
        self.errors: list[str] = []
        #: How many steps were played in full.
        self.played = 0
        self.client_gone = False
        self.tls_failed = False
        self._stop = threading.Event()
        self._buffer = b""
        self._tls = False
        #: The connection in use: the accepted socket, then the TLS one after a handshake.
        self._conn: Any = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._run, name="fake-pop3", daemon=True)

    # -- control ------------------------------------------------------------------------------

    @property
    def lines(self) -> list[bytes]:
        return [line for line, _ in self.received]

    @property
    def complete(self) -> bool:
        return self.played == len(self.script)

    def start(self) -> ScriptedPOP3Server:
        self._thread.start()
        return self

    def join(self, timeout: float = 5.0) -> None:
        """Wait until the session is over (the client closed); fails after ``timeout``."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "fake POP3 server still busy"

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # RuntimeError: never started
            self._thread.join(self.timeout + 5)
        self._listener.close()
        assert not self._thread.is_alive(), "fake POP3 server thread did not stop"

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._accept()
        if conn is None:
            return
        self._conn = conn
        try:
            if self.tls_context is not None:
                conn = self._handshake(conn, StartTLS(self.tls_context))
            conn = self._play(conn)
            if conn is not None:
                while self._readline(conn) is not None:
                    pass
        except _ClientGone:
            self.client_gone = True
        except Exception as exc:  # recorded, so that the test sees it
            self.errors.append(f"server error: {exc!r}")
        finally:
            # Not the local ``conn``: a StartTLS step in the script replaces the connection
            # inside _play, and an exception (the client left) skips handing the TLS socket back.
            self._conn.close()

    def _accept(self) -> Optional[socket.socket]:
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                if time.monotonic() > deadline:
                    self.errors.append("no client connected")
                    return None
                continue
            conn.settimeout(POLL)
            return conn
        return None

    def _play(self, conn: Any) -> Any:
        for expect, reply in self.script:
            if expect is not None:
                line = self._readline(conn)
                if line is None:
                    return conn  # the client left (or never sent the command)
                pattern = expect.encode() if isinstance(expect, str) else expect
                if not re.fullmatch(pattern, line, re.DOTALL):
                    self.errors.append(f"step {self.played}: expected {expect!r}, got {line!r}")
                    return conn
            single = isinstance(reply, (bytes, Pause, Trickle, Close, StartTLS))
            actions = [reply] if single else reply
            for action in actions:
                conn = self._act(conn, action)
                if conn is None:
                    self.played += 1
                    return None
            self.played += 1
        return conn

    def _act(self, conn: Any, action: Action) -> Any:
        if isinstance(action, bytes):
            self._send(conn, action)
        elif isinstance(action, Pause):
            self._stop.wait(action.seconds)
        elif isinstance(action, Trickle):
            for i in range(len(action.data)):
                if self._stop.is_set():
                    break
                self._send(conn, action.data[i : i + 1])
                self._stop.wait(action.interval)
        elif isinstance(action, Close):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return None
        elif isinstance(action, StartTLS):
            return self._handshake(conn, action)
        return conn

    def _send(self, conn: Any, data: bytes) -> None:
        try:
            conn.sendall(data)
        except OSError as exc:  # BrokenPipe, ConnectionReset, SSL EOF
            raise _ClientGone from exc

    def _handshake(self, conn: Any, action: StartTLS) -> Any:
        if self._buffer:
            self.errors.append(f"client sent {self._buffer!r} before the TLS handshake")
        conn.settimeout(self.timeout)
        try:
            tls = action.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self.tls_failed = True
            if not action.may_fail:
                self.errors.append(f"TLS handshake failed: {exc!r}")
            raise _ClientGone from exc
        self._conn = tls
        tls.settimeout(POLL)
        self._tls = True
        return tls

    def _readline(self, conn: Any) -> Optional[bytes]:
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buffer:
            if self._stop.is_set():
                return None
            try:
                data = conn.recv(4096)
            except socket.timeout:
                if time.monotonic() > deadline:
                    self.errors.append("timed out waiting for the client")
                    return None
                continue
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                if self._buffer:
                    self.received.append((self._buffer, self._tls))
                    self.wire += self._buffer
                    self._buffer = b""
                return None
            self._buffer += data
        raw, _, self._buffer = self._buffer.partition(b"\n")
        raw += b"\n"
        self.wire += raw
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        self.received.append((line, self._tls))
        return line


StartServer = Callable[..., ScriptedPOP3Server]


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the leaf against the test CA, host name included."""
        return ssl.create_default_context(cafile=str(self.ca))
