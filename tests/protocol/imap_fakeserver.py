"""A threaded fake IMAP4rev1 server for protocol tests.

:class:`FakeIMAPServer` listens on a free loopback port, accepts one connection, sends a
greeting and then reads commands, one at a time, the way a real server does: a command line
ending in a synchronising literal (``{N}`` or ``~{N}``) gets a ``+`` continuation before the
literal is read, and only then (the server checks that the client really waited: any byte that
arrives before the ``+`` is recorded as an error). Non-synchronising literals (``{N+}``) are
read straight away.

Every command is recorded as a :class:`Command` (tag, upper-cased name, the raw bytes after the
tag, the arguments as wire tokens and as parsed values) in :attr:`FakeIMAPServer.commands`, and
every byte received in :attr:`FakeIMAPServer.wire`.

A test says what the server answers per command name, with ``handlers``:

- a callable ``handler(session, command)``: it can send anything (``session.send``,
  ``session.packets`` for delayed packets, ``session.pause``, ``session.close`` in mid-response,
  ``session.start_tls``), read further client lines (``session.readline``, for AUTHENTICATE or
  IDLE) and check that the client stays silent (``session.silent``);
- or a list of actions: bytes (``{tag}`` is replaced by the command's tag), :class:`Pause`,
  :class:`Packets`, :class:`Close`, :class:`StartTLS`, :class:`ReadLine`.

``UID`` commands look up ``'UID FETCH'`` (say) first, then ``'UID'``. Commands without a
handler get a default answer: CAPABILITY lists :attr:`FakeIMAPServer.capabilities`, LOGOUT says
BYE and closes, SELECT/EXAMINE report two messages, IDLE waits for DONE, STARTTLS starts TLS
with ``starttls_context``, and anything else is ``<tag> OK <NAME> completed``.

The greeting is bytes or a list of actions, optionally after ``greeting_delay`` seconds (during
which the client must not send anything). ``tls_context`` makes it an implicit-TLS server.

Unexpected events (a client that sends a literal early, a timeout in the middle of a command, a
failed handshake, a handler that raised) go to :attr:`FakeIMAPServer.errors`. Every wait is
bounded and polls a stop flag; :meth:`FakeIMAPServer.stop` closes everything and joins the
thread.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_GREETING",
    "Close",
    "Command",
    "FakeIMAPServer",
    "Packets",
    "Pause",
    "ReadLine",
    "Session",
    "StartTLS",
    "parse_values",
    "split_tokens",
]

#: How often blocking waits look at the stop flag.
POLL = 0.02

DEFAULT_GREETING = b"* OK fake IMAP4rev1 server ready\r\n"
DEFAULT_CAPABILITIES = "IMAP4rev1 IDLE ENABLE UTF8=ACCEPT NAMESPACE AUTH=PLAIN AUTH=CRAM-MD5"


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Packets:
    """Each chunk in its own ``send``, ``interval`` seconds apart (TCP_NODELAY is on)."""

    chunks: Sequence[bytes]
    interval: float = 0.0


@dataclass(frozen=True)
class Close:
    """Close the connection at once (whatever the client is waiting for)."""


@dataclass(frozen=True)
class StartTLS:
    context: ssl.SSLContext
    #: The client may legitimately give up (a failed handshake then ends the session quietly).
    may_fail: bool = False


@dataclass(frozen=True)
class ReadLine:
    """Read one client line; with ``expect``, it must equal that (else an error is recorded)."""

    expect: Optional[bytes] = None


Action = Union[bytes, Pause, Packets, Close, StartTLS, ReadLine]
Handler = Union[Callable[["Session", "Command"], Any], Sequence[Action]]


class _Closed(Exception):
    """The session is over (the client left, the server closed, or the server is stopping)."""


# -- parsing the client's commands ------------------------------------------------------------

_LITERAL_START = re.compile(rb"~?\{(\d+)\+?\}\r\n")
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)(\+?)\}\Z")


def _text(data: Union[bytes, bytearray]) -> str:
    return bytes(data).decode("utf-8", "surrogateescape")


def split_tokens(raw: bytes) -> list[Union[str, bytes]]:
    """The wire tokens of ``raw`` (a command after its tag, literals inline).

    Tokens are separated by spaces outside quoted strings, parentheses and brackets. Atoms,
    quoted strings (quotes kept) and parenthesized groups come back as ``str``; a literal
    marker ends the token it is in (``'{4}'``, ``'(~{25}'``) and its data follows as ``bytes``.
    """
    tokens: list[Union[str, bytes]] = []
    current = bytearray()
    depth = 0
    i, n = 0, len(raw)
    while i < n:
        c = raw[i : i + 1]
        if c == b'"':
            j = i + 1
            while j < n and raw[j : j + 1] != b'"':
                j += 2 if raw[j : j + 1] == b"\\" else 1
            current += raw[i : j + 1]
            i = j + 1
            continue
        if c in (b"{", b"~"):
            match = _LITERAL_START.match(raw, i)
            if match is not None:
                current += raw[i : match.end() - 2]
                tokens.append(_text(current))
                current = bytearray()
                size = int(match.group(1))
                tokens.append(raw[match.end() : match.end() + size])
                i = match.end() + size
                continue
        if c in (b"(", b"["):
            depth += 1
        elif c in (b")", b"]"):
            depth = max(0, depth - 1)
        if c == b" " and depth == 0:
            if current:
                tokens.append(_text(current))
                current = bytearray()
        else:
            current += c
        i += 1
    if current:
        tokens.append(_text(current))
    return tokens


def parse_values(raw: bytes) -> list[Any]:
    """``raw`` parsed like a server would: atoms as ``str`` (``BODY[HEADER.FIELDS (A B)]`` is
    one atom), quoted strings unescaped as ``str``, literals as ``bytes``, parenthesized lists
    as ``list``. Malformed input raises ``ValueError``."""
    pos = 0
    n = len(raw)

    def parse_sequence(closing: Optional[bytes]) -> list[Any]:
        nonlocal pos
        items: list[Any] = []
        while True:
            while pos < n and raw[pos : pos + 1] == b" ":
                pos += 1
            if pos >= n:
                if closing is not None:
                    raise ValueError("unclosed parenthesis")
                return items
            c = raw[pos : pos + 1]
            if c == b")":
                if closing != b")":
                    raise ValueError("unbalanced ')'")
                pos += 1
                return items
            if c == b"(":
                pos += 1
                items.append(parse_sequence(b")"))
            elif c == b'"':
                pos += 1
                out = bytearray()
                while True:
                    if pos >= n:
                        raise ValueError("unterminated quoted string")
                    ch = raw[pos : pos + 1]
                    if ch == b"\\":
                        out += raw[pos + 1 : pos + 2]
                        pos += 2
                        continue
                    pos += 1
                    if ch == b'"':
                        break
                    out += ch
                items.append(_text(out))
            else:
                match = _LITERAL_START.match(raw, pos)
                if match is not None:
                    size = int(match.group(1))
                    items.append(raw[match.end() : match.end() + size])
                    pos = match.end() + size
                    continue
                start = pos
                brackets = 0
                while pos < n:
                    ch = raw[pos : pos + 1]
                    if ch == b"[":
                        brackets += 1
                    elif ch == b"]":
                        brackets = max(0, brackets - 1)
                    elif brackets == 0 and ch in (b" ", b"(", b")", b'"'):
                        break
                    pos += 1
                items.append(_text(raw[start:pos]))

    return parse_sequence(None)


@dataclass
class Command:
    """One client command as the server received it."""

    tag: bytes
    #: The command name, upper-cased (``'UID'`` for UID commands: see :attr:`uid_name`).
    name: str
    #: Everything after ``tag SP``: literal data and the CRLFs around it included, the final
    #: CRLF excluded. For a command without literals, the command line as sent.
    raw: bytes
    #: Arguments as wire tokens (see :func:`split_tokens`).
    args: list[Union[str, bytes]]
    #: The data of each literal, in order.
    literals: list[bytes] = field(default_factory=list)
    #: Whether it came over TLS.
    tls: bool = False
    #: The client's synchronising literal was refused (a tagged reply instead of ``+``).
    refused: bool = False

    @property
    def uid_name(self) -> str:
        """``'UID FETCH'`` for a UID command, else the name."""
        if self.name == "UID" and self.args and isinstance(self.args[0], str):
            return "UID " + self.args[0].upper()
        return self.name

    @property
    def line(self) -> bytes:
        """The raw command without its tag (alias of :attr:`raw`)."""
        return self.raw

    def values(self) -> list[Any]:
        """The arguments parsed (see :func:`parse_values`)."""
        return parse_values(self.raw)[1:]


# -- one connection ------------------------------------------------------------------------------


class Session:
    """The server side of the connection, as handlers see it."""

    def __init__(self, server: FakeIMAPServer, conn: socket.socket) -> None:
        self.server = server
        self.conn: Any = conn
        self.buffer = bytearray()
        self.tls = False
        self.closed = False
        #: Free for handlers to keep state in across commands.
        self.state: dict[str, Any] = {}

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            raise _Closed
        self.conn.settimeout(self.server.timeout)
        try:
            self.conn.sendall(data)
        except (OSError, ValueError) as exc:  # the client left (reset, broken pipe, TLS EOF)
            # _close(), not just the flag: the flag makes every later _close() a no-op, and the
            # socket would be left to the garbage collector (the server and its session refer
            # to each other), which then warns about it in whichever test happens to be running.
            self._close()
            raise _Closed from exc
        finally:
            if not self.closed:
                self.conn.settimeout(POLL)

    def tagged(self, command: Command, status: str = "OK", text: Optional[str] = None) -> None:
        """``<tag> <status> <text>``; the text defaults to ``<NAME> completed``."""
        if text is None:
            text = command.uid_name + " completed"
        self.send(command.tag + b" " + status.encode() + b" " + text.encode() + b"\r\n")

    def continuation(self, text: bytes = b"") -> None:
        self.send(b"+ " + text + b"\r\n" if text else b"+\r\n")

    def packets(self, chunks: Sequence[bytes], interval: float = 0.0) -> None:
        for i, chunk in enumerate(chunks):
            if i and interval:
                self.pause(interval)
            self.send(chunk)

    def pause(self, seconds: float) -> None:
        if self.server._stop.wait(seconds):
            raise _Closed

    def close(self) -> None:
        """Close the connection now; the handler does not go on."""
        self._close()
        raise _Closed

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def start_tls(self, context: ssl.SSLContext, may_fail: bool = False) -> None:
        if self.buffer:
            self.server.errors.append(
                f"client sent {bytes(self.buffer)!r} in plaintext before the TLS handshake"
            )
        self.conn.settimeout(self.server.timeout)
        try:
            self.conn = context.wrap_socket(self.conn, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self.server.tls_failed = True
            if not may_fail:
                self.server.errors.append(f"TLS handshake failed: {exc!r}")
            self._close()
            raise _Closed from exc
        self.conn.settimeout(POLL)
        self.tls = True

    # -- receiving -------------------------------------------------------------------------

    def _pending(self) -> bool:
        if self.buffer:
            return True
        if isinstance(self.conn, ssl.SSLSocket) and self.conn.pending():
            return True
        try:
            readable, _, _ = select.select([self.conn], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def _fill(self, deadline: Optional[float]) -> None:
        """Receive more bytes into the buffer. _Closed on EOF, stop, or passing ``deadline``."""
        while True:
            if self.closed or self.server._stop.is_set():
                raise _Closed
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                if deadline is not None and time.monotonic() > deadline:
                    self.server.errors.append(
                        f"timed out waiting for the client (have {bytes(self.buffer)!r})"
                    )
                    raise _Closed from None
                continue
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.server.client_gone = True
                self._close()
                raise _Closed
            self.buffer += data
            self.server.wire += data
            return

    def readline(self, timeout: Optional[float] = -1.0) -> bytes:
        """The next client line without its CRLF (a lone LF also ends a line).

        ``timeout`` bounds the wait (default: the server's timeout; None: until the client
        leaves or the server stops). Raises the internal _Closed when the session ends, which
        unwinds the handler.
        """
        if timeout == -1.0:
            timeout = self.server.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                raw = bytes(self.buffer[: index + 1])
                del self.buffer[: index + 1]
                return raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            self._fill(deadline)

    def read_exact(self, size: int) -> bytes:
        deadline = time.monotonic() + self.server.timeout
        while len(self.buffer) < size:
            self._fill(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def silent(self, seconds: float) -> bool:
        """Whether the client sends nothing for ``seconds`` (nothing already buffered either)."""
        deadline = time.monotonic() + seconds
        while True:
            if self._pending():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self.server._stop.wait(min(POLL, left)):
                return True

    def read_command(self) -> Optional[Command]:
        """Read one whole command, serving synchronising literals; None when the client left."""
        try:
            line = self.readline(timeout=None)
        except _Closed:
            return None
        tag, _, rest = line.partition(b" ")
        raw = rest
        literals: list[bytes] = []
        refused = False
        while True:
            match = _LITERAL_AT_END.search(raw)
            if match is None:
                break
            size = int(match.group(1))
            if not match.group(2):  # synchronising: the client must wait for "+"
                if not self.silent(self.server.early_window):
                    self.server.errors.append(
                        f"client sent {bytes(self.buffer) or 'data'!r} before the continuation "
                        f"for {raw!r}"
                    )
                reply = self.server.literal_reply
                if callable(reply):
                    reply = reply(tag, raw, size)
                reply = reply.replace(b"{tag}", tag)
                self.send(reply)
                if not reply.startswith(b"+"):
                    refused = True
                    break
            try:
                data = self.read_exact(size)
                more = self.readline()
            except _Closed:
                self.server.errors.append(f"client left in the middle of {raw!r}")
                return None
            literals.append(data)
            raw += b"\r\n" + data + more
        tokens = split_tokens(raw)
        name = tokens[0].upper() if tokens and isinstance(tokens[0], str) else ""
        return Command(tag, name, raw, tokens[1:], literals, self.tls, refused)

    # -- actions -----------------------------------------------------------------------------

    def act(self, actions: Union[Action, Sequence[Action]], command: Optional[Command]) -> None:
        if isinstance(actions, (bytes, Pause, Packets, Close, StartTLS, ReadLine)):
            actions = [actions]
        tag = command.tag if command is not None else b"*"
        for action in actions:
            if isinstance(action, bytes):
                self.send(action.replace(b"{tag}", tag))
            elif isinstance(action, Pause):
                self.pause(action.seconds)
            elif isinstance(action, Packets):
                self.packets([c.replace(b"{tag}", tag) for c in action.chunks], action.interval)
            elif isinstance(action, Close):
                self.close()
            elif isinstance(action, StartTLS):
                self.start_tls(action.context, action.may_fail)
            elif isinstance(action, ReadLine):
                line = self.readline()
                if action.expect is not None and line != action.expect:
                    self.server.errors.append(f"expected {action.expect!r}, got {line!r}")
            else:  # pragma: no cover - a mistake in a test
                raise TypeError(f"unknown action {action!r}")


# -- default answers -----------------------------------------------------------------------------


def _default_capability(session: Session, command: Command) -> None:
    caps = session.server.capabilities
    session.send(b"* CAPABILITY " + caps.encode() + b"\r\n")
    session.tagged(command)


def _default_logout(session: Session, command: Command) -> None:
    session.send(b"* BYE IMAP4ref1 Server logging out\r\n")
    session.tagged(command)
    session.close()


def _default_select(session: Session, command: Command) -> None:
    session.send(b"* 2 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen)\r\n")
    code = "READ-ONLY" if command.name == "EXAMINE" else "READ-WRITE"
    session.tagged(command, "OK", f"[{code}] {command.name} completed")


def _default_idle(session: Session, command: Command) -> None:
    session.continuation(b"idling")
    line = session.readline(timeout=None)
    if line != b"DONE":
        session.server.errors.append(f"expected DONE, got {line!r}")
    session.tagged(command, "OK", "IDLE terminated")


def _default_starttls(session: Session, command: Command) -> None:
    context = session.server.starttls_context
    if context is None:
        session.tagged(command, "BAD", "no TLS here")
        return
    session.tagged(command, "OK", "Begin TLS negotiation now")
    session.start_tls(context)


def _default_authenticate(session: Session, command: Command) -> None:
    session.continuation()
    answer = session.readline()
    if answer == b"*":
        session.tagged(command, "BAD", "AUTHENTICATE aborted")
    else:
        session.tagged(command)


DEFAULT_HANDLERS: dict[str, Callable[[Session, Command], Any]] = {
    "CAPABILITY": _default_capability,
    "LOGOUT": _default_logout,
    "SELECT": _default_select,
    "EXAMINE": _default_select,
    "IDLE": _default_idle,
    "STARTTLS": _default_starttls,
    "AUTHENTICATE": _default_authenticate,
}


# -- the server ----------------------------------------------------------------------------------


class FakeIMAPServer:
    """One scripted IMAP connection on ``127.0.0.1``; see the module docstring."""

    def __init__(
        self,
        handlers: Optional[dict[str, Handler]] = None,
        *,
        greeting: Union[bytes, Sequence[Action]] = DEFAULT_GREETING,
        greeting_delay: float = 0.0,
        capabilities: str = DEFAULT_CAPABILITIES,
        tls_context: Optional[ssl.SSLContext] = None,
        starttls_context: Optional[ssl.SSLContext] = None,
        literal_reply: Union[bytes, Callable[[bytes, bytes, int], bytes]] = (
            b"+ Ready for literal data\r\n"
        ),
        early_window: float = 0.05,
        timeout: float = 10.0,
    ) -> None:
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.greeting = greeting
        self.greeting_delay = greeting_delay
        self.capabilities = capabilities
        self.tls_context = tls_context
        self.starttls_context = starttls_context
        self.literal_reply = literal_reply
        self.early_window = early_window
        self.timeout = timeout
        #: Commands received, in order.
        self.commands: list[Command] = []
        #: Every byte received from the client (decrypted when over TLS).
        self.wire = bytearray()
        #: Unexpected events; the test fixture fails the test when this is not empty.
        self.errors: list[str] = []
        self.client_gone = False
        self.tls_failed = False
        self.connected = threading.Event()
        self.finished = threading.Event()
        self.session: Optional[Session] = None
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._run, name="fake-imap", daemon=True)

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def names(self) -> list[str]:
        """The names of the commands received (``'UID FETCH'`` style for UID commands)."""
        return [c.uid_name for c in self.commands]

    def last(self, name: str) -> Command:
        """The last command received under ``name`` (``'UID FETCH'`` style allowed)."""
        for command in reversed(self.commands):
            if name in (command.name, command.uid_name):
                return command
        raise AssertionError(f"no {name} command received; got {self.names}")

    # -- control ---------------------------------------------------------------------------

    def start(self) -> FakeIMAPServer:
        self._thread.start()
        return self

    def join(self, timeout: float = 5.0) -> None:
        """Wait until the session is over (the client closed or the server closed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "fake IMAP server still busy"

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(self.timeout + 5)
        self._listener.close()
        assert not self._thread.is_alive(), "fake IMAP server thread did not stop"

    def __enter__(self) -> FakeIMAPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        session: Optional[Session] = None
        try:
            conn = self._accept()
            if conn is None:
                return
            session = self.session = Session(self, conn)
            self.connected.set()
            if self.tls_context is not None:
                session.start_tls(self.tls_context, may_fail=False)
            if self.greeting_delay:
                session.pause(self.greeting_delay)
                if session._pending():
                    self.errors.append("client sent data before the greeting")
            session.act(self.greeting, None)
            while True:
                command = session.read_command()
                if command is None:
                    return
                self.commands.append(command)
                if command.refused:
                    continue
                handler = (
                    self.handlers.get(command.uid_name)
                    or self.handlers.get(command.name)
                    or DEFAULT_HANDLERS.get(command.name)
                )
                if handler is None:
                    session.tagged(command)
                elif callable(handler):
                    handler(session, command)
                else:
                    session.act(handler, command)
        except _Closed:
            pass
        except Exception as exc:  # recorded, so that the test sees it
            self.errors.append(f"server error: {exc!r}")
        finally:
            if session is not None:
                session._close()
            self.finished.set()

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
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(POLL)
            return conn
        return None
